package vdsmc;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.ovirt.engine.core.common.businessentities.VDS;
import org.ovirt.engine.core.common.businessentities.VM;
import org.ovirt.engine.core.common.businessentities.VMStatus;
import org.ovirt.engine.core.common.businessentities.Cluster;
import org.ovirt.engine.core.common.businessentities.OriginType;
import org.ovirt.engine.core.common.businessentities.VmDynamic;
import org.ovirt.engine.core.common.businessentities.VmStatic;
import org.ovirt.engine.core.common.businessentities.network.VmNetworkInterface;
import org.ovirt.engine.core.common.businessentities.network.VmNetworkStatistics;
import org.ovirt.engine.core.common.businessentities.storage.DiskImageDynamic;
import org.ovirt.engine.core.common.scheduling.VmOverheadCalculator;
import org.ovirt.engine.core.compat.Guid;
import org.ovirt.engine.core.compat.Version;
import org.ovirt.engine.core.dao.ClusterDao;
import org.ovirt.engine.core.dal.dbbroker.auditloghandling.AuditLogDirector;
import org.ovirt.engine.core.dao.VdsDynamicDao;
import org.ovirt.engine.core.dao.VmDynamicDao;
import org.ovirt.engine.core.dao.VmStaticDao;
import org.ovirt.engine.core.dao.network.VmNetworkInterfaceDao;
import org.ovirt.engine.core.di.Injector;
import org.ovirt.engine.core.vdsbroker.ResourceManager;
import org.ovirt.engine.core.vdsbroker.VdsManager;
import org.ovirt.engine.core.vdsbroker.VmManager;
import org.ovirt.engine.core.vdsbroker.monitoring.VdsmVm;
import org.ovirt.engine.core.vdsbroker.monitoring.VmAnalyzer;
import org.ovirt.engine.core.vdsbroker.vdsbroker.Resolvers;
import org.ovirt.engine.core.vdsbroker.vdsbroker.VdsBrokerObjectsBuilder;

/**
 * One Engine watching one host, fed with what vdsm sends: Engine's own
 * VdsBrokerObjectsBuilder parses, VmManager.isLatestData orders, and
 * VmAnalyzer.analyze judges each VM against the state Engine's database
 * would hold (kept here: the VmDynamic rows and the VM's NICs, updated with
 * what the analyzer saves, as VmsMonitoring.flush does).
 *
 * The call order mirrors Engine's (master 0111fc63):
 * - poll: VmStatsVdsBrokerCommand.createVdsmVm for each entry of
 *   Host.getAllVmStats, PollVmStatsRefresher.matchVms (DB VMs running here
 *   and not listed are paired with null: VmAnalyzer.proceedDisappearedVm),
 *   then VmsMonitoring.analyzeVms: shouldAnalyzeVm (isLatestData), analyze
 *   with updateStatistics true;
 * - event: EventVmStatsRefresher.convertEvent (removeNotifyTimeFromVmStatus
 *   Event, then updateVMDynamicData over a clone of the DB row), then the
 *   same analysis with updateStatistics false;
 * - caps: GetCapabilitiesVDSCommand's updateVDSDynamicData into a VDS.
 */
final class Monitor {

    private final VdsBrokerObjectsBuilder builder = new VdsBrokerObjectsBuilder();
    private final AuditLogDirector auditLog = new AuditLogDirector();
    private final ResourceManager resourceManager = new ResourceManager();
    private final Map<Guid, VmDynamic> db = new HashMap<>();
    private final Map<Guid, VmStatic> statics = new HashMap<>();
    private final Map<Guid, List<VmNetworkInterface>> nics = new HashMap<>();
    private static final Guid CLUSTER = Guid.newGuid();
    private VDS host;
    private VdsManager vdsManager;

    Monitor() {
        Injector.register(AuditLogDirector.class, auditLog);
        Injector.register(ResourceManager.class, resourceManager);
        Injector.register(VmDynamicDao.class, Daos.proxy(VmDynamicDao.class, (name, args) ->
                "get".equals(name) ? db.get(args[0]) : Daos.NONE));
        Injector.register(VmStaticDao.class, Daos.proxy(VmStaticDao.class, (name, args) ->
                "get".equals(name) ? statics.get(args[0]) : Daos.NONE));
        Injector.register(ClusterDao.class, Daos.proxy(ClusterDao.class, (name, args) ->
                "get".equals(name) ? cluster() : Daos.NONE));
        Injector.register(VmNetworkInterfaceDao.class, Daos.proxy(VmNetworkInterfaceDao.class, (name, args) ->
                "getAllForMonitoredVm".equals(name)
                        ? nics.getOrDefault(args[0], new ArrayList<>()) : Daos.NONE));
        // bll's implementation (scheduling): the VM's memory, no overhead
        Injector.register(VmOverheadCalculator.class, Daos.proxy(VmOverheadCalculator.class,
                (name, args) -> ((VM) args[0]).getMemSizeMb()));
        Daos.registerAll();
        Resolvers.register();
        Injector.injectMembers(builder);
        newEngine(null);
    }

    /** The VMs' cluster, at the newest level Engine supports. */
    private static Cluster cluster() {
        Cluster cluster = new Cluster();
        cluster.setId(CLUSTER);
        cluster.setCompatibilityVersion(Version.getLast());
        return cluster;
    }

    void newEngine(String hostId) {
        db.clear();
        statics.clear();
        nics.clear();
        resourceManager.reset();
        auditLog.drain();
        resourceManager.drainCommands();
        host = new VDS();
        host.setId(hostId == null ? Guid.newGuid() : new Guid(hostId));
        host.setVdsName("host");
        vdsManager = new VdsManager(host);
    }

    /** Engine ran the VM on this host (RunVmCommand: WaitForLaunch). */
    void created(String vmId, Object macs) {
        Guid id = new Guid(vmId);
        VmDynamic vm = new VmDynamic();
        vm.setId(id);
        vm.setStatus(VMStatus.WaitForLaunch);
        vm.setRunOnVds(host.getId());
        db.put(id, vm);
        VmStatic vmStatic = new VmStatic();
        vmStatic.setId(id);
        vmStatic.setName("vm-" + vmId.substring(0, 8));
        vmStatic.setClusterId(CLUSTER);
        vmStatic.setOrigin(OriginType.OVIRT);
        vmStatic.setNumOfSockets(1);
        vmStatic.setCpuPerSocket(1);
        vmStatic.setThreadsPerCpu(1);
        vmStatic.setMemSizeMb(1024);
        statics.put(id, vmStatic);
        resourceManager.addAsyncRunningVm(id);
        List<VmNetworkInterface> list = new ArrayList<>();
        for (Object mac : macs == null ? new Object[0] : (Object[]) macs) {
            VmNetworkInterface nic = new VmNetworkInterface();
            nic.setId(Guid.newGuid());
            nic.setVmId(id);
            nic.setMacAddress((String) mac);
            nic.setSpeed(1000);
            nic.setStatistics(new VmNetworkStatistics());
            nic.getStatistics().setId(nic.getId());
            list.add(nic);
        }
        nics.put(id, list);
    }

    /** VM.destroy succeeded: Engine's row is Down, on no host. */
    void destroyed(String vmId) {
        VmDynamic vm = db.get(new Guid(vmId));
        if (vm != null) {
            resourceManager.internalSetVmStatus(vm, VMStatus.Down);
        }
    }

    List<Object> poll(Object[] stats) throws Exception {
        List<Object> out = new ArrayList<>();
        Set<Guid> listed = new LinkedHashSet<>();
        for (Object o : stats) {
            Map<String, Object> struct = map(o);
            // VmStatsVdsBrokerCommand.createVdsmVm
            VmDynamic dynamic = builder.buildVMDynamicData(struct, host);
            VdsmVm vdsmVm = new VdsmVm(builder.getVdsmCallTimestamp(struct))
                    .setVmDynamic(dynamic)
                    .setDevicesHash(builder.getVmDevicesHash(struct))
                    .setTpmDataHash(builder.getTpmDataHash(struct))
                    .setNvramDataHash(builder.getNvramDataHash(struct))
                    .setVmStatistics(builder.buildVMStatisticsData(struct))
                    .setVmJobs(builder.buildVmJobsData(struct))
                    .setInterfaceStatistics(builder.buildInterfaceStatisticsData(struct))
                    .setVmBalloonInfo(builder.buildVmBalloonInfo(struct))
                    .setVmGuestAgentInterfaces(builder.buildVmGuestAgentInterfacesData(dynamic.getId(), struct))
                    .setLunsMap(builder.buildVmLunDisksData(struct))
                    .setDiskStatistics(builder.buildVmDiskStatistics(struct));
            listed.add(dynamic.getId());
            out.add(analyze(db.get(dynamic.getId()), vdsmVm, true));
        }
        for (VmDynamic vm : new ArrayList<>(db.values())) {
            if (host.getId().equals(vm.getRunOnVds()) && !listed.contains(vm.getId())) {
                out.add(analyze(vm, null, true));
            }
        }
        return out;
    }

    List<Object> event(Map<String, Object> params) throws Exception {
        Double notifyTime = builder.removeNotifyTimeFromVmStatusEvent(params);
        List<Object> out = new ArrayList<>();
        for (Map.Entry<String, Object> e : params.entrySet()) {
            Guid vmId = new Guid(e.getKey());
            VmDynamic dbVm = db.get(vmId);
            VmDynamic clone;
            if (dbVm == null) {
                clone = new VmDynamic();
                clone.setId(vmId);
            } else {
                clone = new VmDynamic(dbVm);
            }
            builder.updateVMDynamicData(clone, map(e.getValue()), vdsManager.getCopyVds());
            VdsmVm vdsmVm = new VdsmVm(notifyTime).setVmDynamic(clone)
                    .setDevicesHash(builder.getVmDevicesHash(map(e.getValue())));
            out.add(analyze(dbVm, vdsmVm, false));
        }
        return out;
    }

    Map<String, Object> caps(Map<String, Object> struct) {
        VDS vds = new VDS();
        vds.setId(host.getId());
        builder.updateVDSDynamicData(vds, new HashMap<>(), struct);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("additionalFeatures", new ArrayList<>(vds.getAdditionalFeatures()));
        out.put("supportedClusterLevels", vds.getSupportedClusterLevels());
        out.put("kvmEnabled", vds.getKvmEnabled());
        return out;
    }

    /** VmsMonitoring.analyzeVms for one pair, then its flush of the row. */
    private Map<String, Object> analyze(VmDynamic dbVm, VdsmVm vdsmVm, boolean statistics) throws Exception {
        Guid vmId = vdsmVm != null ? vdsmVm.getVmDynamic().getId() : dbVm.getId();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("vmId", vmId.toString());
        if (vdsmVm != null) {
            describe(r, vdsmVm);
        } else {
            r.put("listed", false);
        }
        VmManager manager = resourceManager.getVmManager(vmId);
        boolean latest = manager.isLatestData(vdsmVm, host.getId());
        r.put("latest", latest);
        if (latest) {
            VmAnalyzer analyzer = new VmAnalyzer(dbVm, vdsmVm, statistics, vdsManager, auditLog,
                    resourceManager, Daos.proxy(VdsDynamicDao.class, (n, a) -> Daos.NONE),
                    Injector.get(VmNetworkInterfaceDao.class));
            Method analyze = VmAnalyzer.class.getDeclaredMethod("analyze");
            analyze.setAccessible(true);
            try {
                analyze.invoke(analyzer);
            } catch (InvocationTargetException e) {
                // VmsMonitoring.analyzeVms: logged, this VM's data lost
                r.put("error", String.valueOf(e.getCause()));
                r.put("audit", names(auditLog.drain()));
                r.put("commands", resourceManager.drainCommands());
                return r;
            }
            VmDynamic saved = analyzer.getVmDynamicToSave();
            if (saved != null) {
                db.put(saved.getId(), saved);
            }
            r.put("movedToDown", analyzer.isMovedToDown());
            r.put("succeededToRun", analyzer.isSuccededToRun());
            r.put("rerun", analyzer.isRerun());
            if (dbVm != null && statistics && vdsmVm != null) {
                r.put("engineNics", engineNics(vmId));
            }
        }
        r.put("audit", names(auditLog.drain()));
        r.put("commands", resourceManager.drainCommands());
        VmDynamic row = db.get(vmId);
        r.put("dbStatus", row == null ? null : row.getStatus().name());
        return r;
    }

    private static void describe(Map<String, Object> r, VdsmVm vdsmVm) {
        VmDynamic d = vdsmVm.getVmDynamic();
        r.put("listed", true);
        r.put("timestamp", vdsmVm.getTimestamp());
        r.put("status", d.getStatus() == null ? null : d.getStatus().name());
        r.put("exitStatus", d.getExitStatus() == null ? null : d.getExitStatus().name());
        r.put("exitReason", d.getExitReason() == null ? null : d.getExitReason().name());
        r.put("exitMessage", d.getExitMessage());
        r.put("acpiEnable", d.getAcpiEnable());
        r.put("utcDiff", d.getUtcDiff());
        r.put("session", d.getSession() == null ? null : d.getSession().name());
        r.put("pauseStatus", d.getPauseStatus() == null ? null : d.getPauseStatus().name());
        r.put("clientIp", d.getClientIp());
        if (vdsmVm.getVmStatistics() != null) {
            r.put("elapsedTime", vdsmVm.getVmStatistics().getElapsedTime());
            r.put("cpuUser", vdsmVm.getVmStatistics().getCpuUser());
            r.put("cpuSys", vdsmVm.getVmStatistics().getCpuSys());
            r.put("usageMemPercent", vdsmVm.getVmStatistics().getUsageMemPercent());
            r.put("guestMemoryFree", vdsmVm.getVmStatistics().getGuestMemoryFree());
        }
        if (vdsmVm.getInterfaceStatistics() != null) {
            List<Object> nics = new ArrayList<>();
            for (VmNetworkInterface nic : vdsmVm.getInterfaceStatistics()) {
                nics.add(nic(nic));
            }
            r.put("nics", nics);
        }
        if (vdsmVm.getDiskStatistics() != null) {
            List<Object> disks = new ArrayList<>();
            for (DiskImageDynamic disk : vdsmVm.getDiskStatistics()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("imageId", String.valueOf(disk.getId()));
                m.put("readRate", disk.getReadRate());
                m.put("writeRate", disk.getWriteRate());
                m.put("readOps", disk.getReadOps());
                m.put("writeOps", disk.getWriteOps());
                m.put("actualSize", disk.getActualSize());
                disks.add(m);
            }
            r.put("disks", disks);
        }
    }

    private List<Object> engineNics(Guid vmId) {
        List<Object> out = new ArrayList<>();
        for (VmNetworkInterface nic : nics.getOrDefault(vmId, new ArrayList<>())) {
            out.add(nic(nic));
        }
        return out;
    }

    private static Map<String, Object> nic(VmNetworkInterface nic) {
        Map<String, Object> m = new LinkedHashMap<>();
        VmNetworkStatistics s = nic.getStatistics();
        m.put("mac", nic.getMacAddress());
        m.put("speed", nic.getSpeed());
        m.put("rx", s.getReceivedBytes() == null ? null : s.getReceivedBytes().toString());
        m.put("tx", s.getTransmittedBytes() == null ? null : s.getTransmittedBytes().toString());
        m.put("rxRate", s.getReceiveRate());
        m.put("txRate", s.getTransmitRate());
        m.put("sampleTime", s.getSampleTime());
        return m;
    }

    private static List<String> names(List<?> values) {
        List<String> out = new ArrayList<>();
        for (Object v : values) {
            out.add(String.valueOf(v));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }
}

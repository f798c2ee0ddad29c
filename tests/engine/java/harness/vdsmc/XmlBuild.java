package vdsmc;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.ovirt.engine.core.common.businessentities.ArchitectureType;
import org.ovirt.engine.core.common.businessentities.BiosType;
import org.ovirt.engine.core.common.businessentities.Cluster;
import org.ovirt.engine.core.common.businessentities.VM;
import org.ovirt.engine.core.common.businessentities.VdsDynamic;
import org.ovirt.engine.core.common.businessentities.VmDevice;
import org.ovirt.engine.core.common.businessentities.VmDeviceGeneralType;
import org.ovirt.engine.core.common.businessentities.VmDeviceId;
import org.ovirt.engine.core.common.businessentities.network.Network;
import org.ovirt.engine.core.common.businessentities.network.VmInterfaceType;
import org.ovirt.engine.core.common.businessentities.network.VmNetworkInterface;
import org.ovirt.engine.core.common.businessentities.network.VnicProfile;
import org.ovirt.engine.core.common.businessentities.qos.StorageQos;
import org.ovirt.engine.core.common.businessentities.storage.DiskImage;
import org.ovirt.engine.core.common.businessentities.storage.DiskInterface;
import org.ovirt.engine.core.common.businessentities.storage.DiskVmElement;
import org.ovirt.engine.core.common.businessentities.storage.StorageType;
import org.ovirt.engine.core.common.businessentities.storage.VolumeFormat;
import org.ovirt.engine.core.common.businessentities.storage.VolumeType;
import org.ovirt.engine.core.common.osinfo.OsRepository;
import org.ovirt.engine.core.common.utils.SimpleDependencyInjector;
import org.ovirt.engine.core.common.utils.customprop.ValidationError;
import org.ovirt.engine.core.common.utils.customprop.VmPropertiesUtils;
import org.ovirt.engine.core.compat.Guid;
import org.ovirt.engine.core.compat.Version;
import org.ovirt.engine.core.dal.dbbroker.auditloghandling.AuditLogDirector;
import org.ovirt.engine.core.utils.OsRepositoryImpl;
import org.ovirt.engine.core.utils.osinfo.OsInfoPreferencesLoader;
import org.ovirt.engine.core.vdsbroker.builder.vminfo.BuildUtils;
import org.ovirt.engine.core.vdsbroker.builder.vminfo.LibvirtVmXmlBuilder;

/**
 * The VM.create domain XML as Engine writes it: Engine's own
 * LibvirtVmXmlBuilder.buildCreateVm(), called as CreateBrokerVDSCommand
 * .generateDomainXml does (no payload, 2 host CPU threads, not volatile, no
 * passthrough NICs), over a VM entity built as Engine's database holds it
 * (vm_static, its disks, NICs and vm_device rows) from a description:
 *
 * {"id", "name", "memMb", "sockets", "cpuShares", "clusterVersion",
 *  "customProperties": "name=value;..." (vm_static's string, first
 *  validated by VmPropertiesUtils.validateVmProperties against Config's
 *  UserDefinedVMProperties, as AddVm/UpdateVm do; the errors are returned
 *  and no XML is built if there are any),
 *  "serialConsole": bool, "acpi": bool (default true), "poolId",
 *  "disks": [{"id", "imageId", "domainId", "block": bool, "boot",
 *             "readOnly", "shareable", "alias", "iotune": the disk
 *             profile's StorageQos {"maxThroughput" (MB/s), ...}}],
 *  "nics": [{"id", "name", "mac", "network" (null: no profile),
 *            "linked" (default true), "mtu" (the network's; 0: default)}],
 *  "cdrom": the empty CD-ROM every new VM has (default true)}
 *
 * Disks are VirtIO-SCSI (Engine's default for new disks), with the
 * virtio-scsi controller Engine adds to such a VM; the OS is other_linux
 * (id 5) from Engine's shipped osinfo-defaults.properties.
 */
final class XmlBuild {

    private final AuditLogDirector auditLog = new AuditLogDirector();
    private final OsRepository osRepository;
    private final Guid clusterId = Guid.newGuid();

    XmlBuild() throws Exception {
        Path dir = Files.createTempDirectory("vdsmc-osinfo");
        try (InputStream in = XmlBuild.class.getResourceAsStream("/vdsmc-data/osinfo-defaults.properties")) {
            Files.copy(in, dir.resolve("00-defaults.properties"), StandardCopyOption.REPLACE_EXISTING);
        }
        OsInfoPreferencesLoader.INSTANCE.init(dir);
        OsRepositoryImpl.INSTANCE.init(OsInfoPreferencesLoader.INSTANCE.getPreferences());
        osRepository = OsRepositoryImpl.INSTANCE;
        SimpleDependencyInjector.getInstance().bind(OsRepository.class, osRepository);
    }

    Map<String, Object> build(Map<String, Object> d) throws Exception {
        Version version = new Version(str(d, "clusterVersion", "4.7"));
        Map<String, Object> out = new HashMap<>();
        VmPropertiesUtils props = VmPropertiesUtils.getInstance();
        props.init();       // Backend's start-up, after Config: reads UserDefinedVMProperties
        String custom = str(d, "customProperties", "");
        List<String> errors = new ArrayList<>();
        for (ValidationError e : props.validateVmProperties(version, custom)) {
            errors.add(e.getReason() + ": " + e.getKeyName());
        }
        out.put("errors", errors);
        if (!errors.isEmpty()) {
            return out;
        }
        Db db = new Db();
        VM vm = vm(d, version, custom);
        db.devices.add(device(vm, Guid.newGuid(), VmDeviceGeneralType.CONTROLLER, "virtio-scsi", new HashMap<>()));
        if (!Boolean.FALSE.equals(d.get("cdrom"))) {
            // the empty CD-ROM AddVmCommand gives every new VM
            Map<String, Object> spec = new HashMap<>();
            spec.put("path", "");
            db.devices.add(device(vm, Guid.newGuid(), VmDeviceGeneralType.DISK, "cdrom", spec));
        }
        for (Object o : list(d, "disks")) {
            addDisk(vm, db, Monitor.map(o));
        }
        for (Object o : list(d, "nics")) {
            addNic(vm, db, Monitor.map(o));
        }
        if (Boolean.TRUE.equals(d.get("serialConsole"))) {
            Map<String, Object> spec = new HashMap<>();
            spec.put("consoleType", "serial");
            spec.put("enableSocket", true);
            db.devices.add(device(vm, Guid.newGuid(), VmDeviceGeneralType.CONSOLE, "console", spec));
        }
        db.cluster.setId(clusterId);
        db.cluster.setCompatibilityVersion(version);
        db.cluster.setArchitecture(ArchitectureType.x86_64);
        LibvirtVmXmlBuilder builder = new LibvirtVmXmlBuilder(vm, db.host.getId(), null, 2, false,
                Collections.emptyMap(), BuildUtils.create(db, auditLog, osRepository));
        out.put("xml", builder.buildCreateVm());
        out.put("daoCalls", db.calls);
        return out;
    }

    private VM vm(Map<String, Object> d, Version version, String custom) {
        VM vm = new VM();
        vm.setId(new Guid(str(d, "id", null)));
        vm.setName(str(d, "name", "vm"));
        int mem = ((Number) d.getOrDefault("memMb", 512)).intValue();
        vm.setVmMemSizeMb(mem);
        vm.setMinAllocatedMem(mem);
        vm.setMaxMemorySizeMb(mem * 4);
        vm.setNumOfSockets(((Number) d.getOrDefault("sockets", 1)).intValue());
        vm.setCpuPerSocket(1);
        vm.setThreadsPerCpu(1);
        vm.setCpuShares(((Number) d.getOrDefault("cpuShares", 0)).intValue());
        vm.setClusterCompatibilityVersion(version);
        vm.setClusterId(clusterId);
        vm.setClusterArch(ArchitectureType.x86_64);
        vm.setBiosType(BiosType.Q35_SEA_BIOS);
        vm.setVmOs(5);      // other_linux
        vm.setStoragePoolId(new Guid(str(d, "poolId", Guid.newGuid().toString())));
        vm.setCustomProperties(custom);
        vm.setAcpiEnable(!Boolean.FALSE.equals(d.get("acpi")));
        // VmDynamic's CPU as RunVmCommand sets it from the cluster's CPU
        vm.setCpuName(str(d, "cpuName", "Skylake-Server"));
        // ... and its emulated machine (the cluster's, Q35 for 4.7)
        vm.setEmulatedMachine(str(d, "emulatedMachine", "pc-q35-rhel8.6.0"));
        return vm;
    }

    private void addDisk(VM vm, Db db, Map<String, Object> m) {
        Guid id = new Guid(str(m, "id", null));
        DiskImage disk = new DiskImage();
        disk.setId(id);
        disk.setImageId(new Guid(str(m, "imageId", null)));
        disk.setActive(true);       // the image's leaf volume (images.active)
        disk.setStorageIds(new ArrayList<>(List.of(new Guid(str(m, "domainId", null)))));
        disk.setStoragePoolId(vm.getStoragePoolId());
        boolean block = Boolean.TRUE.equals(m.get("block"));
        disk.setStorageTypes(new ArrayList<>(List.of(block ? StorageType.ISCSI : StorageType.NFS)));
        disk.setVolumeFormat(VolumeFormat.RAW);
        disk.setVolumeType(block ? VolumeType.Preallocated : VolumeType.Sparse);
        disk.setShareable(Boolean.TRUE.equals(m.get("shareable")));
        disk.setDiskAlias(str(m, "alias", "disk"));
        DiskVmElement dve = new DiskVmElement(id, vm.getId());
        dve.setDiskInterface(DiskInterface.VirtIO_SCSI);
        dve.setBoot(Boolean.TRUE.equals(m.get("boot")));
        dve.setReadOnly(Boolean.TRUE.equals(m.get("readOnly")));
        dve.setPlugged(true);
        disk.setDiskVmElements(new ArrayList<>(List.of(dve)));
        if (m.get("iotune") != null) {
            Guid profile = Guid.newGuid();
            disk.setDiskProfileId(profile);
            db.qos.put(profile, storageQos(Monitor.map(m.get("iotune"))));
        }
        vm.getDiskMap().put(id, disk);
        VmDevice dev = device(vm, id, VmDeviceGeneralType.DISK, "disk", new HashMap<>());
        dev.setReadOnly(dve.isReadOnly());
        db.devices.add(dev);
    }

    private static StorageQos storageQos(Map<String, Object> t) {
        StorageQos qos = new StorageQos();
        qos.setId(Guid.newGuid());
        qos.setMaxThroughput(integer(t.get("maxThroughput")));       // MB/s
        qos.setMaxReadThroughput(integer(t.get("maxReadThroughput")));
        qos.setMaxWriteThroughput(integer(t.get("maxWriteThroughput")));
        qos.setMaxIops(integer(t.get("maxIops")));
        qos.setMaxReadIops(integer(t.get("maxReadIops")));
        qos.setMaxWriteIops(integer(t.get("maxWriteIops")));
        return qos;
    }

    private void addNic(VM vm, Db db, Map<String, Object> m) {
        VmNetworkInterface nic = new VmNetworkInterface();
        nic.setId(new Guid(str(m, "id", null)));
        nic.setVmId(vm.getId());
        nic.setName(str(m, "name", "nic1"));
        nic.setMacAddress(str(m, "mac", null));
        nic.setType(VmInterfaceType.pv.getValue());
        nic.setLinked(!Boolean.FALSE.equals(m.get("linked")));
        nic.setPlugged(true);
        String network = str(m, "network", null);
        if (network != null) {
            Network net = db.networks.computeIfAbsent(network, n -> {
                Network x = new Network();
                x.setId(Guid.newGuid());
                x.setName(n);
                x.setVdsmName(n);   // a name short enough is its own (NetworkUtils)
                x.setVmNetwork(true);
                x.setMtu(m.get("mtu") == null ? 0 : ((Number) m.get("mtu")).intValue());
                return x;
            });
            VnicProfile profile = new VnicProfile();
            profile.setId(Guid.newGuid());
            profile.setName(network);
            profile.setNetworkId(net.getId());
            profile.setCustomProperties(new HashMap<>());
            db.profiles.put(profile.getId(), profile);
            nic.setVnicProfileId(profile.getId());
            nic.setNetworkName(network);
        }
        vm.getInterfaces().add(nic);
        db.devices.add(device(vm, nic.getId(), VmDeviceGeneralType.INTERFACE, "bridge", new HashMap<>()));
    }

    private static VmDevice device(VM vm, Guid id, VmDeviceGeneralType type, String device,
            Map<String, Object> spec) {
        return new VmDevice(new VmDeviceId(id, vm.getId()), type, device, "", spec, true, true, false,
                "", new HashMap<>(), null, null);
    }

    /** Engine's tables for this one VM, answering its DAOs' calls. */
    private static final class Db implements BuildUtils.Daos {
        final List<VmDevice> devices = new ArrayList<>();
        final Map<String, Network> networks = new HashMap<>();
        final Map<Guid, VnicProfile> profiles = new HashMap<>();
        final Map<Guid, StorageQos> qos = new HashMap<>();
        final Cluster cluster = new Cluster();
        final VdsDynamic host = new VdsDynamic();
        final List<String> calls = new ArrayList<>();

        Db() {
            host.setId(Guid.newGuid());
            host.setCpuFlags("");
        }

        @Override
        public <T> T dao(Class<T> type) {
            return Daos.proxy(type, (name, args) -> {
                calls.add(type.getSimpleName() + "." + name);
                return answer(name, args);
            });
        }

        private Object answer(String name, Object[] args) {
            switch (name) {
            case "getVmDeviceByVmId":
                return new ArrayList<>(devices);
            case "getQosByDiskProfileId":
                return qos.get(args[0]);
            default:
            }
            if (args.length == 1 && args[0] instanceof VmDeviceId) {
                for (VmDevice dev : devices) {
                    if (dev.getId().equals(args[0])) {
                        return dev;
                    }
                }
            }
            if (args.length == 1 && args[0] instanceof Guid) {
                Guid id = (Guid) args[0];
                if (profiles.containsKey(id)) {
                    return profiles.get(id);
                }
                for (Network n : networks.values()) {
                    if (n.getId().equals(id)) {
                        return n;
                    }
                }
                if (id.equals(host.getId()) && "get".equals(name)) {
                    return host;
                }
                if (id.equals(cluster.getId())) {
                    return cluster;
                }
            }
            return Daos.NONE;
        }
    }

    private static String str(Map<String, Object> m, String key, String dflt) {
        Object v = m.get(key);
        return v == null ? dflt : v.toString();
    }

    private static Object[] list(Map<String, Object> m, String key) {
        Object v = m.get(key);
        return v == null ? new Object[0] : (Object[]) v;
    }

    private static Integer integer(Object v) {
        return v == null ? null : ((Number) v).intValue();
    }
}

package org.ovirt.engine.core.vdsbroker.builder.vminfo;

import java.lang.reflect.Field;

import javax.inject.Inject;

import org.ovirt.engine.core.common.osinfo.OsRepository;
import org.ovirt.engine.core.dal.dbbroker.auditloghandling.AuditLogDirector;
import org.ovirt.engine.core.dao.ClusterFeatureDao;
import org.ovirt.engine.core.dao.DiskVmElementDao;
import org.ovirt.engine.core.dao.HostDeviceDao;
import org.ovirt.engine.core.dao.StorageDomainStaticDao;
import org.ovirt.engine.core.dao.StorageServerConnectionDao;
import org.ovirt.engine.core.dao.VdsDynamicDao;
import org.ovirt.engine.core.dao.VdsNumaNodeDao;
import org.ovirt.engine.core.dao.VdsStaticDao;
import org.ovirt.engine.core.dao.VdsStatisticsDao;
import org.ovirt.engine.core.dao.VmDao;
import org.ovirt.engine.core.dao.VmDeviceDao;
import org.ovirt.engine.core.dao.VmNumaNodeDao;
import org.ovirt.engine.core.dao.network.NetworkClusterDao;
import org.ovirt.engine.core.dao.network.NetworkDao;
import org.ovirt.engine.core.dao.network.NetworkFilterDao;
import org.ovirt.engine.core.dao.network.NetworkQoSDao;
import org.ovirt.engine.core.dao.network.VmNicFilterParameterDao;
import org.ovirt.engine.core.dao.network.VnicProfileDao;
import org.ovirt.engine.core.dao.qos.StorageQosDao;
import org.ovirt.engine.core.vdsbroker.monitoring.VmDevicesMonitoring;
import org.ovirt.engine.core.vdsbroker.vdsbroker.VmSerialNumberBuilder;

/**
 * Our own helper, in VmInfoBuildUtils' package because its constructor is
 * package-private (CDI builds it in Engine): a VmInfoBuildUtils whose DAOs
 * come from {@code daos} (the harness's proxies over its VM description).
 */
public final class BuildUtils {

    /** Gives the DAO of a type. */
    public interface Daos {
        <T> T dao(Class<T> type);
    }

    private BuildUtils() {
    }

    /** Fills the @Inject DAO fields of {@code o} from {@code d}, as CDI would. */
    static <T> T inject(T o, Daos d) {
        for (Field f : o.getClass().getDeclaredFields()) {
            if (f.isAnnotationPresent(Inject.class) && f.getType().getSimpleName().endsWith("Dao")) {
                try {
                    f.setAccessible(true);
                    f.set(o, d.dao(f.getType()));
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return o;
    }

    public static VmInfoBuildUtils create(Daos d, AuditLogDirector auditLog, OsRepository osRepository) {
        return new VmInfoBuildUtils(
                d.dao(NetworkDao.class),
                d.dao(NetworkFilterDao.class),
                d.dao(NetworkQoSDao.class),
                d.dao(StorageQosDao.class),
                d.dao(VmDeviceDao.class),
                d.dao(VmDao.class),
                d.dao(VnicProfileDao.class),
                d.dao(VmNicFilterParameterDao.class),
                d.dao(NetworkClusterDao.class),
                auditLog,
                d.dao(ClusterFeatureDao.class),
                d.dao(VmNumaNodeDao.class),
                osRepository,
                d.dao(StorageDomainStaticDao.class),
                d.dao(StorageServerConnectionDao.class),
                d.dao(VdsNumaNodeDao.class),
                d.dao(VdsStaticDao.class),
                d.dao(VdsDynamicDao.class),
                d.dao(VdsStatisticsDao.class),
                d.dao(HostDeviceDao.class),
                inject(new VmSerialNumberBuilder(), d),
                d.dao(DiskVmElementDao.class),
                new VmDevicesMonitoring(),
                new MultiQueueUtils());
    }
}

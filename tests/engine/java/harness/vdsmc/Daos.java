package vdsmc;

import java.lang.reflect.Proxy;
import java.util.function.BiFunction;

import org.ovirt.engine.core.dao.VmDeviceDao;
import org.ovirt.engine.core.dao.VmStatisticsDao;
import org.ovirt.engine.core.dao.network.DnsResolverConfigurationDao;
import org.ovirt.engine.core.dao.network.InterfaceDao;
import org.ovirt.engine.core.dao.network.VmNetworkStatisticsDao;
import org.ovirt.engine.core.di.Injector;
import org.ovirt.engine.core.vdsbroker.ResourceManager;

/**
 * Engine's DAOs (the database) as java.lang.reflect.Proxy objects: each
 * call goes to a function of the method's name and arguments; a function
 * answering {@link #NONE} gives the zero value of the return type (null,
 * false, 0, an empty list), as for an empty table.
 */
final class Daos {

    static final Object NONE = new Object();

    private Daos() {
    }

    static <T> T proxy(Class<T> type, BiFunction<String, Object[], Object> answer) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] { type },
                (p, method, args) -> {
                    if (method.getDeclaringClass() == Object.class) {
                        switch (method.getName()) {
                        case "hashCode":
                            return System.identityHashCode(p);
                        case "equals":
                            return p == args[0];
                        default:
                            return type.getSimpleName() + " proxy";
                        }
                    }
                    Object r = answer.apply(method.getName(), args == null ? new Object[0] : args);
                    return r == NONE ? ResourceManager.Defaults.of(method.getReturnType()) : r;
                }));
    }

    /** Empty tables for the DAOs Engine's classes inject and we don't fill. */
    static void registerAll() {
        empty(VmDeviceDao.class);
        empty(VmStatisticsDao.class);
        empty(VmNetworkStatisticsDao.class);
        empty(InterfaceDao.class);
        empty(DnsResolverConfigurationDao.class);
    }

    private static <T> void empty(Class<T> type) {
        Injector.register(type, proxy(type, (n, a) -> NONE));
    }
}

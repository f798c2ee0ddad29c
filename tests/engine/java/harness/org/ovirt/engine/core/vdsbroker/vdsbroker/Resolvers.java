package org.ovirt.engine.core.vdsbroker.vdsbroker;

import java.lang.reflect.Proxy;

import org.ovirt.engine.core.bll.network.cluster.ManagementNetworkUtil;
import org.ovirt.engine.core.di.Injector;

/**
 * Our own helper, in the resolvers' package (they are package-private CDI
 * beans): registers the beans VdsBrokerObjectsBuilder's network parsing
 * asks Injector for (updateNetworkData, for Host.getCapabilities): Engine's
 * own Ipv4/Ipv6BootProtocolResolver, and a ManagementNetworkUtil (bll's)
 * whose management network is ovirtmgmt, Engine's default.
 */
public final class Resolvers {

    private Resolvers() {
    }

    public static void register() {
        Injector.register(Ipv4BootProtocolResolver.class, new Ipv4BootProtocolResolver());
        Injector.register(Ipv6BootProtocolResolver.class, new Ipv6BootProtocolResolver());
        Injector.register(ManagementNetworkUtil.class, (ManagementNetworkUtil) Proxy.newProxyInstance(
                ManagementNetworkUtil.class.getClassLoader(), new Class<?>[] { ManagementNetworkUtil.class },
                (p, method, args) -> {
                    switch (method.getName()) {
                    case "getDefaultManagementNetworkName":
                        return "ovirtmgmt";
                    case "isManagementNetwork":
                        return args[0] instanceof String && "ovirtmgmt".equals(args[0]);
                    default:
                        return null;
                    }
                }));
    }
}

package org.ovirt.engine.core.vdsbroker;

import org.ovirt.engine.core.compat.Guid;
import org.ovirt.engine.core.di.Injector;

/**
 * Our own helper beside the stand-in ResourceManager, in VmManager's
 * package because VmManager's constructor is package-private: a new
 * VmManager injected and initialised as ResourceManager.getVmManager does
 * (Injector.injectMembers, then its @PostConstruct init()).
 */
public final class VmManagers {
    private VmManagers() {
    }

    public static VmManager create(Guid vmId) {
        VmManager manager = Injector.injectMembers(new VmManager(vmId));
        manager.init();
        return manager;
    }
}

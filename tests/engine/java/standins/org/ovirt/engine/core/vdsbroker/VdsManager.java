package org.ovirt.engine.core.vdsbroker;

import org.ovirt.engine.core.common.businessentities.VDS;
import org.ovirt.engine.core.compat.Guid;

/**
 * Stand-in for Engine's vdsbroker.VdsManager (one per host: its JSON-RPC
 * client, refreshers, VDS cache from the database).  VmAnalyzer asks it
 * only for the host's id, name and a copy of its VDS, whether it finished
 * initialising, and to unpin a VM's CPUs (nothing to unpin here).
 */
public class VdsManager {

    private final VDS vds;
    private boolean initialized = true;

    public VdsManager(VDS vds) {
        this.vds = vds;
    }

    public VDS getCopyVds() {
        return vds.clone();
    }

    public String getVdsName() {
        return vds.getName();
    }

    public Guid getVdsId() {
        return vds.getId();
    }

    public Guid getClusterId() {
        return vds.getClusterId();
    }

    public boolean isInitialized() {
        return initialized;
    }

    public void setInitialized(boolean value) {
        initialized = value;
    }

    public void unpinVmCpus(Guid vmId) {
    }

    public void succeededToRunVm(Guid vmId) {
    }

    public void vmsMonitoringInitFinished() {
    }
}

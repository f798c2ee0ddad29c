package org.ovirt.engine.core.vdsbroker.monitoring;

import org.ovirt.engine.core.compat.Guid;

/**
 * Stand-in for Engine's VmDevicesMonitoring, which asks vdsm for a VM's
 * devices (through the JSON-RPC client, and kubevirt's for those hosts)
 * and saves them.  The XML builder reaches it only through
 * VmInfoBuildUtils.refreshVmDevices, for a host device the host lacks; the
 * tests' VMs have none, so there is nothing to refresh.
 */
public class VmDevicesMonitoring {

    public void refreshVmDevices(Guid vmId) {
    }
}

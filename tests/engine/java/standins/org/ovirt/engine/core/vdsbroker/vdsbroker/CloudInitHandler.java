package org.ovirt.engine.core.vdsbroker.vdsbroker;

import java.util.Map;

import org.ovirt.engine.core.common.businessentities.VmInit;

/**
 * Stand-in for Engine's CloudInitHandler (it writes cloud-init's YAML with
 * snakeyaml, not among the jars used here).  It is called only for a VM
 * with a cloud-init payload (VmInfoBuildUtils.buildPayloadCloudInit); the
 * container VMs the tests build have none, so building one says so.
 */
public class CloudInitHandler {

    public CloudInitHandler(VmInit vmInit) {
    }

    public Map<String, byte[]> getFileData() {
        throw new UnsupportedOperationException("no cloud-init payload in the tests' Engine");
    }
}

package org.ovirt.engine.core.vdsbroker.vdsbroker;

import java.util.Map;

import org.ovirt.engine.core.common.businessentities.VmInit;
import org.ovirt.engine.core.compat.Version;

/**
 * Stand-in for Engine's IgnitionHandler (javax.json, not among the jars
 * used here): only for a VM with an Ignition payload, which the tests'
 * container VMs never have.
 */
public class IgnitionHandler {

    public IgnitionHandler(VmInit vmInit, Version ignitionVersion) {
    }

    public Map<String, byte[]> getFileData() {
        throw new UnsupportedOperationException("no Ignition payload in the tests' Engine");
    }
}

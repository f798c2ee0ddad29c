package org.ovirt.engine.core.vdsbroker.jsonrpc;

import java.util.HashMap;

/**
 * Stand-in for Engine's FutureMap, the pending answer of a vdsm JSON-RPC
 * call (built on vdsm-jsonrpc-java, not packaged in Debian).  The classes
 * the tests run reach it only by type (irsbroker.StatusReturn asks whether
 * a status map is one); no call is ever made, so it is an answered map.
 */
public class FutureMap extends HashMap<String, Object> {

    private static final long serialVersionUID = 1L;

    public boolean isDone() {
        return true;
    }

    public boolean isRequestCompleted() {
        return true;
    }
}

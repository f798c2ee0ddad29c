package org.ovirt.engine.core.vdsbroker;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.ovirt.engine.core.common.action.ActionReturnValue;
import org.ovirt.engine.core.common.businessentities.IVdsEventListener;
import org.ovirt.engine.core.common.businessentities.VMStatus;
import org.ovirt.engine.core.common.businessentities.VmDynamic;
import org.ovirt.engine.core.common.businessentities.VmExitReason;
import org.ovirt.engine.core.common.businessentities.VmExitStatus;
import org.ovirt.engine.core.common.businessentities.VmPauseStatus;
import org.ovirt.engine.core.common.vdscommands.VDSCommandType;
import org.ovirt.engine.core.common.vdscommands.VDSParametersBase;
import org.ovirt.engine.core.common.vdscommands.VDSReturnValue;
import org.ovirt.engine.core.compat.Guid;

/**
 * Stand-in for Engine's vdsbroker.ResourceManager (a CDI singleton that
 * owns the VdsManagers, the JSON-RPC clients and the VmManagers).  Only
 * what VmAnalyzer and VmManager call: VDS commands are recorded, not sent
 * (VmAnalyzer.destroyVm's Destroy is the one the tests look for); the VM
 * status is set on the VmDynamic as ResourceManager.internalSetVmStatus
 * does for the fields VmAnalyzer reads back; the async-running list is a
 * set; the event listener (bll's) accepts every call, does nothing and
 * answers success.
 */
public class ResourceManager {

    private final Map<Guid, VmManager> vmManagers = new ConcurrentHashMap<>();
    private final Set<Guid> asyncRunningVms = ConcurrentHashMap.newKeySet();
    private final List<String> commands = new ArrayList<>();
    private final IVdsEventListener eventListener = (IVdsEventListener) Proxy.newProxyInstance(
            IVdsEventListener.class.getClassLoader(), new Class<?>[] { IVdsEventListener.class },
            (proxy, method, args) -> {
                if (method.getReturnType() == ActionReturnValue.class) {
                    // bll's answer to saveExternalData and the like: done
                    ActionReturnValue done = new ActionReturnValue();
                    done.setSucceeded(true);
                    return done;
                }
                return Defaults.of(method.getReturnType());
            });

    public VmManager getVmManager(Guid vmId) {
        return getVmManager(vmId, true);
    }

    public VmManager getVmManager(Guid vmId, boolean createIfAbsent) {
        if (createIfAbsent) {
            vmManagers.computeIfAbsent(vmId, VmManagers::create);
        }
        return vmManagers.get(vmId);
    }

    public IVdsEventListener getEventListener() {
        return eventListener;
    }

    public boolean addAsyncRunningVm(Guid vmId) {
        return asyncRunningVms.add(vmId);
    }

    public void removeAsyncRunningVm(Guid vmId) {
        asyncRunningVms.remove(vmId);
    }

    public boolean isVmInAsyncRunningList(Guid vmId) {
        return asyncRunningVms.contains(vmId);
    }

    public void removeVmFromDownVms(Guid vdsId, Guid vmId) {
    }

    public void rerunFailedCommand(Guid vmId, Guid vdsId) {
        asyncRunningVms.remove(vmId);
    }

    public void refreshIsoCache(Guid storagePoolId) {
    }

    public void internalSetVmStatus(VmDynamic vm, VMStatus status) {
        internalSetVmStatus(vm, status, VmExitStatus.Normal, "", VmExitReason.Unknown);
    }

    public void internalSetVmStatus(VmDynamic vm, VMStatus status, VmExitStatus exitStatus) {
        internalSetVmStatus(vm, status, exitStatus, "", VmExitReason.Unknown);
    }

    public void internalSetVmStatus(VmDynamic vm, VMStatus status, VmExitStatus exitStatus,
            String exitMessage, VmExitReason exitReason) {
        vm.setStatus(status);
        vm.setExitStatus(exitStatus);
        vm.setExitMessage(exitMessage);
        vm.setExitReason(exitReason);
        if (status.isNotRunning()) {
            vm.setRunOnVds(null);
            vm.setPauseStatus(VmPauseStatus.NONE);
        }
    }

    public <P extends VDSParametersBase> VDSReturnValue runVdsCommand(VDSCommandType commandType, P parameters) {
        synchronized (commands) {
            commands.add(commandType.name());
        }
        VDSReturnValue ret = new VDSReturnValue();
        ret.setSucceeded(true);
        return ret;
    }

    /** The VDS commands run since the last call (harness only). */
    public List<String> drainCommands() {
        synchronized (commands) {
            List<String> out = new ArrayList<>(commands);
            commands.clear();
            return out;
        }
    }

    /** Forget the VmManagers (harness only: a new Engine). */
    public void reset() {
        vmManagers.clear();
        asyncRunningVms.clear();
    }

    /** Zero values for proxies: what a no-op returns. */
    public static final class Defaults {
        public static Object of(Class<?> type) {
            if (type == boolean.class) {
                return false;
            }
            if (type == int.class || type == long.class || type == short.class || type == byte.class) {
                return type == long.class ? (Object) 0L : (Object) 0;
            }
            if (type == double.class || type == float.class) {
                return type == double.class ? (Object) 0.0 : (Object) 0.0f;
            }
            if (type == List.class) {
                return new ArrayList<>();
            }
            if (type == Map.class) {
                return new java.util.HashMap<>();
            }
            if (type == Set.class) {
                return new java.util.HashSet<>();
            }
            return null;
        }
    }
}

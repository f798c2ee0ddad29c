"""Which of vdsm's VM verbs a container serves, and how it refuses the rest.

Every method that lib/vdsm/API.py (class ``VM``) calls on a Vm object is
either implemented by ``Container`` or listed in ``REFUSED`` with a vdsm
error whose text, as Engine shows it, tells what happened.  Engine maps a
vdsm code to a name (ovirt-engine common/errors/EngineError.java
``forValue``; BrokerCommandBase.getReturnValueFromStatus turns a code it
doesn't know into ``unexpected``) and the name to its text (dal's
bundles/VdsmErrors.properties).  So a refusal answers the error a VM gets
when that operation fails only where Engine knows its code and its text
doesn't send the user elsewhere (41 is FAILED_CHANGE_CD_IS_MOUNTED, "log in
to the VM and unmount the CD"); otherwise vdsm's UnsupportedOperation (75,
UnsupportedOperationErr).  tests/test_refusal_texts.py checks each against
EngineError.java.  Refusals happen before anything is touched, so a refused
verb never changes the host.  No verb falls through to vdsm's code 100.

The names are those API.py calls (oVirt/vdsm master fd4b0df20), e.g.
``VM.hotplugDisk`` -> ``vm.hotplugDisk(params)``,
``VM.getMigrationStatus`` -> ``vm.migrateStatus()``.
"""

from __future__ import annotations

import logging

from vdsm_container import errors
from vdsm_container import transitions
from vdsm_container.spec import qospolicy

log = logging.getLogger("vdsm_container.verbs")

# API.py verbs served by Container itself (or answered with an empty result).
SERVED = (
    "destroy", "getStats", "status", "shutdown", "reset", "pause", "cont",
    "io_tune_values", "io_tune_policy", "io_tune_policy_values",
    "getExternalData", "updateVmPolicy",
)

# lib/vdsm/virt/externaldata.py ExternalDataKind values: the kinds API.py's
# VM.getExternalData takes.
EXTERNAL_DATA_KINDS = ("tpm", "nvram")


def get_external_data(self, kind, last_hash=None, force_update=True):
    """``Vm.getExternalData`` for a VM whose device holds no data yet.

    Engine asks for a UEFI or TPM VM's data when it goes Down
    (SaveVmExternalDataCommand.executeCommand): any answer but data, noVM
    or methodNotFound is retried and then ends in the VM's destroy.  vdsm
    answers a VM created without initial data (``Vm._init_external_data``:
    engine_hash '') with ``{'hash': ''}`` and no ``_X_data``, which Engine
    takes as "finished, nothing to store": a container has no firmware
    variables or TPM state, so that is its answer.  An unknown kind is
    refused as vdsm refuses it.
    """
    if kind not in EXTERNAL_DATA_KINDS:
        raise errors.ExternalDataFailed("Unsupported data kind", kind=kind,
                                        vmId=self.id)
    return {"status": {"code": 0, "message": "Done"}, "data": {"hash": ""}}

_NO_MIGRATION = "containers cannot be migrated"
_NO_HOTPLUG = "containers have no hot-pluggable devices"
_NO_CHECKPOINTS = "containers have no checkpoints"

# Suspend: Engine's HibernateVDSCommand sends VM.hibernate, which API.py
# (VM.hibernate) runs as ``migrate({'mode': 'file', ...})``.
HIBERNATE = (errors.UnsupportedOperation,
             "containers can't be suspended to disk")

# method name -> (vdsm error class, reason)
REFUSED = {
    "migrate": (errors.MigrationError, _NO_MIGRATION),
    "migrateStatus": (errors.UnsupportedOperation, _NO_MIGRATION),
    # vdsm's own answer when no migration runs (virt/vm.py migrateCancel:
    # errCode['migCancelErr']); Engine's MIGRATION_CANCEL_ERROR.
    "migrateCancel": (errors.MigrationCancelationFailed, _NO_MIGRATION),
    "migrateChangeParams": (errors.UnsupportedOperation, _NO_MIGRATION),
    "waitForMigrationDestinationPrepare": (errors.MigrationError,
                                           _NO_MIGRATION),
    "changeCD": (errors.UnsupportedOperation, "containers have no CD-ROM"),
    "changeFloppy": (errors.UnsupportedOperation,
                     "containers have no floppy"),
    "hotplugNic": (errors.HotplugNicFailed, _NO_HOTPLUG),
    "hotunplugNic": (errors.HotunplugNicFailed, _NO_HOTPLUG),
    "hotplugDisk": (errors.HotplugDiskFailed, _NO_HOTPLUG),
    "hotunplugDisk": (errors.HotunplugDiskFailed, _NO_HOTPLUG),
    "hotplugHostdev": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotunplugHostdev": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotplugLease": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotunplugLease": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotplugMemory": (errors.HotplugMemFailed, _NO_HOTPLUG),
    "hotunplugMemory": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "setNumberOfCpus": (errors.SetNumberOfCpusFailed, _NO_HOTPLUG),
    "updateDevice": (errors.UpdateDeviceFailed,
                     "containers can't update devices"),
    "setCpuTuneQuota": (errors.UnsupportedOperation,
                        "container sizing is fixed at create"),
    "setCpuTunePeriod": (errors.UnsupportedOperation,
                         "container sizing is fixed at create"),
    "setIoTune": (errors.UnsupportedOperation,
                  "container sizing is fixed at create"),
    "setBalloonTarget": (errors.BalloonError, "containers have no balloon"),
    "diskReplicateStart": (errors.ReplicaError, "containers can't replicate"),
    "diskReplicateFinish": (errors.ReplicaError, "containers can't replicate"),
    "diskSizeExtend": (errors.UnsupportedOperation, "containers can't resize"),
    "merge": (errors.MergeFailed, "container volumes have no snapshots"),
    "snapshot": (errors.SnapshotFailed, "containers can't be snapshotted"),
    "freeze": (errors.FreezeGuestFSFailed, "containers have no guest agent"),
    "thaw": (errors.ThawGuestFSFailed, "containers have no guest agent"),
    "setTicket": (errors.SpiceTicketError, "containers have no display"),
    "screenshot": (errors.UnsupportedOperation, "containers have no display"),
    "getDiskAlignment": (errors.UnsupportedOperation, "not for containers"),
    "refresh_disk": (errors.UnsupportedOperation, "not for containers"),
    "set_destroy_on_reboot": (errors.UnsupportedOperation,
                              "not for containers"),
    "start_backup": (errors.UnsupportedOperation,
                     "containers can't be backed up"),
    "stop_backup": (errors.UnsupportedOperation,
                    "containers can't be backed up"),
    "backup_info": (errors.UnsupportedOperation,
                    "containers can't be backed up"),
    "delete_checkpoints": (errors.UnsupportedOperation, _NO_CHECKPOINTS),
    "redefine_checkpoints": (errors.UnsupportedOperation, _NO_CHECKPOINTS),
    "list_checkpoints": (errors.UnsupportedOperation, _NO_CHECKPOINTS),
    "dump_checkpoint": (errors.UnsupportedOperation, _NO_CHECKPOINTS),
}


def _refusal(name, error, reason):
    def refuse(self, *args, **kwargs):
        raise error(reason, vmId=self.id)
    refuse.__name__ = name
    refuse.__doc__ = "Refused: %s (vdsm %s)." % (reason, error.__name__)
    return refuse


def _migrate_refusal(migrate):
    def refuse_migrate(self, params=None, *args, **kwargs):
        if isinstance(params, dict) and params.get("mode") == "file":
            error, reason = HIBERNATE
            raise error(reason, vmId=self.id)
        return migrate(self, params, *args, **kwargs)
    refuse_migrate.__name__ = "migrate"
    refuse_migrate.__doc__ = migrate.__doc__
    return refuse_migrate


def update_vm_policy(self, params):
    """``Vm.updateVmPolicy`` for ``Container`` (added by ``add_refusals``):
    Engine's QoS checked (``spec.qospolicy``), applied by the root side
    (``host.qos``)."""
    policy = qospolicy.parse(self.spec, params)
    with self._verb_lock:       # a start under way ends first
        if self.lastStatus not in transitions.RUNNING_STATES:
            raise errors.UnsupportedOperation(
                "container is %s" % self.lastStatus, vmId=self.id)
        result = self.backend.update_policy(self.id, policy)
    if result["refused"]:
        raise errors.UnsupportedOperation("; ".join(result["refused"]),
                                          vmId=self.id)
    log.info("Container %s: policy applied: cpu %s, io %s", self.id,
             result["cpu"], result["io"])
    return {"status": {"code": 0, "message": "Done"}}


def add_refusals(cls):
    """Class decorator: define each ``REFUSED`` verb on ``cls``, and the
    served verbs kept out of ``container`` (``get_external_data``,
    ``update_vm_policy``)."""
    if "getExternalData" not in cls.__dict__:
        cls.getExternalData = get_external_data
    if "updateVmPolicy" not in cls.__dict__:
        cls.updateVmPolicy = update_vm_policy
    for name, (error, reason) in REFUSED.items():
        if name not in cls.__dict__:
            refusal = _refusal(name, error, reason)
            if name == "migrate":
                refusal = _migrate_refusal(refusal)
            setattr(cls, name, refusal)
    return cls


class NoGuestAgent:
    """``Vm.guestAgent`` for API.py's desktop* verbs: there is no agent."""

    def isResponsive(self):
        return False

    def _refuse(self, *args, **kwargs):
        raise errors.NonResponsiveGuestAgent("containers have no guest agent")

    desktopLock = desktopLogin = desktopLogoff = desktopSendHcCommand = \
        _refuse

    def stop(self):
        pass

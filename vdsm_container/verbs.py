"""Which of vdsm's VM verbs a container serves, and how it refuses the rest.

Every method that lib/vdsm/API.py (class ``VM``) calls on a Vm object is
either implemented by ``Container`` or listed in ``REFUSED`` with the vdsm
error a user would expect for it: the error a VM gets when that operation
fails.  Refusals happen before anything is touched, so a refused verb never
changes the host.  No verb falls through to vdsm's code 100.

The names are those API.py calls (oVirt/vdsm master fd4b0df20), e.g.
``VM.hotplugDisk`` -> ``vm.hotplugDisk(params)``,
``VM.getMigrationStatus`` -> ``vm.migrateStatus()``.
"""

from __future__ import annotations

from vdsm_container import errors

# API.py verbs served by Container itself (or answered with an empty result).
SERVED = (
    "destroy", "getStats", "status", "shutdown", "reset", "pause", "cont",
    "io_tune_values", "io_tune_policy", "io_tune_policy_values",
    "getExternalData",
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

# method name -> (vdsm error class, reason)
REFUSED = {
    "migrate": (errors.MigrationError, _NO_MIGRATION),
    "migrateStatus": (errors.MigrationNotInProgress, _NO_MIGRATION),
    "migrateCancel": (errors.MigrationNotInProgress, _NO_MIGRATION),
    "migrateChangeParams": (errors.MigrationNotInProgress, _NO_MIGRATION),
    "waitForMigrationDestinationPrepare": (errors.MigrationError,
                                           _NO_MIGRATION),
    "changeCD": (errors.ChangeDiskFailed, "containers have no CD-ROM"),
    "changeFloppy": (errors.ChangeDiskFailed, "containers have no floppy"),
    "hotplugNic": (errors.HotplugNicFailed, _NO_HOTPLUG),
    "hotunplugNic": (errors.HotunplugNicFailed, _NO_HOTPLUG),
    "hotplugDisk": (errors.HotplugDiskFailed, _NO_HOTPLUG),
    "hotunplugDisk": (errors.HotunplugDiskFailed, _NO_HOTPLUG),
    "hotplugHostdev": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotunplugHostdev": (errors.UnsupportedOperation, _NO_HOTPLUG),
    "hotplugLease": (errors.HotplugLeaseFailed, _NO_HOTPLUG),
    "hotunplugLease": (errors.HotunplugLeaseFailed, _NO_HOTPLUG),
    "hotplugMemory": (errors.HotplugMemFailed, _NO_HOTPLUG),
    "hotunplugMemory": (errors.HotunplugMemFailed, _NO_HOTPLUG),
    "setNumberOfCpus": (errors.SetNumberOfCpusFailed, _NO_HOTPLUG),
    "updateDevice": (errors.UpdateDeviceFailed,
                     "containers can't update devices"),
    "updateVmPolicy": (errors.UpdateVMPolicyFailed,
                       "container sizing is fixed at create"),
    "setCpuTuneQuota": (errors.CpuTuneError,
                        "container sizing is fixed at create"),
    "setCpuTunePeriod": (errors.CpuTuneError,
                         "container sizing is fixed at create"),
    "setIoTune": (errors.UpdateIOTuneError,
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
    "start_backup": (errors.BackupError, "containers can't be backed up"),
    "stop_backup": (errors.BackupError, "containers can't be backed up"),
    "backup_info": (errors.BackupError, "containers can't be backed up"),
    "delete_checkpoints": (errors.CheckpointError, "containers have no "
                           "checkpoints"),
    "redefine_checkpoints": (errors.CheckpointError, "containers have no "
                             "checkpoints"),
    "list_checkpoints": (errors.CheckpointError, "containers have no "
                         "checkpoints"),
    "dump_checkpoint": (errors.CheckpointError, "containers have no "
                        "checkpoints"),
}


def _refusal(name, error, reason):
    def refuse(self, *args, **kwargs):
        raise error(reason, vmId=self.id)
    refuse.__name__ = name
    refuse.__doc__ = "Refused: %s (vdsm %s)." % (reason, error.__name__)
    return refuse


def add_refusals(cls):
    """Class decorator: define each ``REFUSED`` verb on ``cls``, and the
    served verbs that only answer (``get_external_data``)."""
    if "getExternalData" not in cls.__dict__:
        cls.getExternalData = get_external_data
    for name, (error, reason) in REFUSED.items():
        if name not in cls.__dict__:
            setattr(cls, name, _refusal(name, error, reason))
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

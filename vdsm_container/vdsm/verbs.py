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
)

_NO_MIGRATION = "containers cannot be migrated"
_NO_HOTPLUG = "containers have no hot-pluggable devices"

# method name -> (vdsm error class name, reason)
REFUSED = {
    "migrate": ("MigrationError", _NO_MIGRATION),
    "migrateStatus": ("MigrationNotInProgress", _NO_MIGRATION),
    "migrateCancel": ("MigrationNotInProgress", _NO_MIGRATION),
    "migrateChangeParams": ("MigrationNotInProgress", _NO_MIGRATION),
    "waitForMigrationDestinationPrepare": ("MigrationError", _NO_MIGRATION),
    "changeCD": ("ChangeDiskFailed", "containers have no CD-ROM"),
    "changeFloppy": ("ChangeDiskFailed", "containers have no floppy"),
    "hotplugNic": ("HotplugNicFailed", _NO_HOTPLUG),
    "hotunplugNic": ("HotunplugNicFailed", _NO_HOTPLUG),
    "hotplugDisk": ("HotplugDiskFailed", _NO_HOTPLUG),
    "hotunplugDisk": ("HotunplugDiskFailed", _NO_HOTPLUG),
    "hotplugHostdev": ("UnsupportedOperation", _NO_HOTPLUG),
    "hotunplugHostdev": ("UnsupportedOperation", _NO_HOTPLUG),
    "hotplugLease": ("HotplugLeaseFailed", _NO_HOTPLUG),
    "hotunplugLease": ("HotunplugLeaseFailed", _NO_HOTPLUG),
    "hotplugMemory": ("HotplugMemFailed", _NO_HOTPLUG),
    "hotunplugMemory": ("HotunplugMemFailed", _NO_HOTPLUG),
    "setNumberOfCpus": ("SetNumberOfCpusFailed", _NO_HOTPLUG),
    "updateDevice": ("UpdateDeviceFailed", "containers can't update devices"),
    "updateVmPolicy": ("UpdateVMPolicyFailed",
                       "container sizing is fixed at create"),
    "setCpuTuneQuota": ("CpuTuneError", "container sizing is fixed at create"),
    "setCpuTunePeriod": ("CpuTuneError",
                         "container sizing is fixed at create"),
    "setIoTune": ("UpdateIOTuneError", "container sizing is fixed at create"),
    "setBalloonTarget": ("BalloonError", "containers have no balloon"),
    "diskReplicateStart": ("ReplicaError", "containers can't replicate"),
    "diskReplicateFinish": ("ReplicaError", "containers can't replicate"),
    "diskSizeExtend": ("UnsupportedOperation", "containers can't resize"),
    "merge": ("MergeFailed", "container volumes have no snapshots"),
    "snapshot": ("SnapshotFailed", "containers can't be snapshotted"),
    "freeze": ("FreezeGuestFSFailed", "containers have no guest agent"),
    "thaw": ("ThawGuestFSFailed", "containers have no guest agent"),
    "setTicket": ("SpiceTicketError", "containers have no display"),
    "screenshot": ("UnsupportedOperation", "containers have no display"),
    "getDiskAlignment": ("UnsupportedOperation", "not for containers"),
    "getExternalData": ("ExternalDataFailed", "containers have no TPM or "
                        "NVRAM"),
    "refresh_disk": ("UnsupportedOperation", "not for containers"),
    "set_destroy_on_reboot": ("UnsupportedOperation", "not for containers"),
    "start_backup": ("BackupError", "containers can't be backed up"),
    "stop_backup": ("BackupError", "containers can't be backed up"),
    "backup_info": ("BackupError", "containers can't be backed up"),
    "delete_checkpoints": ("CheckpointError", "containers have no "
                           "checkpoints"),
    "redefine_checkpoints": ("CheckpointError", "containers have no "
                             "checkpoints"),
    "list_checkpoints": ("CheckpointError", "containers have no "
                         "checkpoints"),
    "dump_checkpoint": ("CheckpointError", "containers have no "
                        "checkpoints"),
}


def _refusal(name, cls_name, reason):
    def refuse(self, *args, **kwargs):
        raise errors.error(getattr(errors, cls_name), reason, vmId=self.id)
    refuse.__name__ = name
    refuse.__doc__ = "Refused: %s (vdsm %s)." % (reason, cls_name)
    return refuse


def add_refusals(cls):
    """Class decorator: define each ``REFUSED`` verb on ``cls``."""
    for name, (cls_name, reason) in REFUSED.items():
        if name not in cls.__dict__:
            setattr(cls, name, _refusal(name, cls_name, reason))
    return cls

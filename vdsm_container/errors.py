"""Errors in vdsm's own shape: a numeric ``code`` and a ``message``.

vdsm's RPC layer (lib/vdsm/common/api.py ``method``) turns any
``VdsmException`` into ``{'status': {'code': ..., 'message': ...}}`` and
anything else into code 100 "General Exception".  Each class below has the
name, code and message of its counterpart in lib/vdsm/common/exception.py
(oVirt/vdsm master fd4b0df20); when vdsm is importable it *is* a subclass
of that counterpart, so vdsm code that catches ``exception.NoSuchVM``
catches ours, and without vdsm (the ``vdsm-container`` command, unit tests)
it derives from a local mirror of ``VdsmException``.

Every class takes ``(reason, **context)`` and prints "<message>: <reason>"
or "<message>: {context}", whatever its vdsm counterpart's constructor.

``expected``: api.py logs an expected error at INFO without a traceback
and anything else with one.  Only caller errors are expected here: a bad
or missing parameter, a refused verb, no such VM.  A runtime that fails to
start a container, or a process that survives SIGKILL, is not.
"""

try:  # pragma: no cover - depends on the host
    from vdsm.common import exception as _vdsm
except ImportError:
    _vdsm = None


class _LocalVdsmException(Exception):
    """lib/vdsm/common/exception.py ``VdsmException``, without vdsm."""

    code = 0
    message = "Vdsm Exception"
    expected = False

    def __str__(self):
        return self.msg

    def info(self):
        return {"code": self.code, "message": str(self)}

    def response(self):
        return {"status": self.info()}

    @property
    def msg(self):
        return self.message

    @msg.setter
    def msg(self, message):
        self.message = message


VdsmException = _vdsm.VdsmException if _vdsm else _LocalVdsmException


def _vdsm_class(name):
    """vdsm's class ``name`` when vdsm is importable, else our base."""
    return getattr(_vdsm, name, VdsmException) if _vdsm else VdsmException


class _Detailed:
    """One constructor for every error: ``(reason=None, **context)``."""

    def __init__(self, reason=None, **context):
        self.context = dict(context)
        if reason is not None:
            self.context["reason"] = reason

    def __str__(self):
        if not self.context:
            return self.msg
        if list(self.context) == ["reason"]:
            return "%s: %s" % (self.msg, self.context["reason"])
        return "%s: %s" % (self.msg, self.context)


class NoSuchVM(_Detailed, _vdsm_class("NoSuchVM")):
    code = 1
    message = "Virtual machine does not exist"
    expected = True


class VMExists(_Detailed, _vdsm_class("VMExists")):
    code = 4
    message = "Virtual machine already exists"
    expected = True


class VMIsDown(_Detailed, _vdsm_class("VMIsDown")):
    code = 6
    message = "Virtual machine is down"
    expected = True


class CannotCreateVM(_Detailed, _vdsm_class("CannotCreateVM")):
    code = 9
    message = "Error creating the requested VM"
    expected = False


class MissingParameter(_Detailed, _vdsm_class("MissingParameter")):
    code = 11
    message = "Missing required parameter"
    expected = True


class MigrationError(_Detailed, _vdsm_class("MigrationError")):
    code = 12
    message = "Fatal error during migration"
    expected = True


class MigrationCancelationFailed(_Detailed,
                                 _vdsm_class("MigrationCancelationFailed")):
    code = 47
    message = "Migration not in progress"
    expected = True


class ImageFileNotFound(_Detailed, _vdsm_class("ImageFileNotFound")):
    code = 13
    message = "Drive image file could not be found"
    expected = True


class UnsupportedImageFormat(_Detailed, _vdsm_class("UnsupportedImageFormat")):
    code = 17
    message = "Unsupported image format"
    expected = True


class SpiceTicketError(_Detailed, _vdsm_class("SpiceTicketError")):
    code = 18
    message = "Error while setting spice ticket"
    expected = True


class NonResponsiveGuestAgent(_Detailed,
                              _vdsm_class("NonResponsiveGuestAgent")):
    code = 19
    message = "Guest agent non-responsive"
    expected = True


class ChangeDiskFailed(_Detailed, _vdsm_class("ChangeDiskFailed")):
    code = 41
    message = "Failed to change disk image"
    expected = True


class VMDestroyFailed(_Detailed, _vdsm_class("VMDestroyFailed")):
    code = 42
    message = "Virtual machine destroy error"
    expected = False


class HotplugDiskFailed(_Detailed, _vdsm_class("HotplugDiskFailed")):
    code = 45
    message = "Failed to hotplug disk"
    expected = True


class HotunplugDiskFailed(_Detailed, _vdsm_class("HotunplugDiskFailed")):
    code = 46
    message = "Failed to hotunplug disk"
    expected = True


class SnapshotFailed(_Detailed, _vdsm_class("SnapshotFailed")):
    code = 48
    message = "Snapshot failed"
    expected = True


class HotplugNicFailed(_Detailed, _vdsm_class("HotplugNicFailed")):
    code = 49
    message = "Failed to hotplug NIC"
    expected = True


class HotunplugNicFailed(_Detailed, _vdsm_class("HotunplugNicFailed")):
    code = 50
    message = "Failed to hotunplug NIC"
    expected = True


class MergeFailed(_Detailed, _vdsm_class("MergeFailed")):
    code = 52
    message = "Merge failed"
    expected = True


class BalloonError(_Detailed, _vdsm_class("BalloonError")):
    code = 53
    message = "Balloon operation is not available"
    expected = True


class ReplicaError(_Detailed, _vdsm_class("ReplicaError")):
    code = 55
    message = "Drive replication error"
    expected = True


class UpdateDeviceFailed(_Detailed, _vdsm_class("UpdateDeviceFailed")):
    code = 56
    message = "Failed to update device"
    expected = True


class SetNumberOfCpusFailed(_Detailed, _vdsm_class("SetNumberOfCpusFailed")):
    code = 60
    message = "Failed to set the number of cpus"
    expected = True


class CpuTuneError(_Detailed, _vdsm_class("CpuTuneError")):
    code = 62
    message = "CpuTune operation is not available"
    expected = True


class UpdateVMPolicyFailed(_Detailed, _vdsm_class("UpdateVMPolicyFailed")):
    code = 63
    message = "Failed to update VM SLA policy"
    expected = True


class UpdateIOTuneError(_Detailed, _vdsm_class("UpdateIOTuneError")):
    code = 64
    message = "Failed to update ioTune values"
    expected = True


class HotplugMemFailed(_Detailed, _vdsm_class("HotplugMemFailed")):
    code = 70
    message = "Failed to hotplug memory"
    expected = True


class UnsupportedOperation(_Detailed, _vdsm_class("UnsupportedOperation")):
    code = 75
    message = "Operation not supported"
    expected = True


class FreezeGuestFSFailed(_Detailed, _vdsm_class("FreezeGuestFSFailed")):
    code = 76
    message = "Unable to freeze guest filesystems"
    expected = True


class ThawGuestFSFailed(_Detailed, _vdsm_class("ThawGuestFSFailed")):
    code = 77
    message = "Unable to thaw guest filesystems"
    expected = True


class MigrationNotInProgress(_Detailed, _vdsm_class("MigrationNotInProgress")):
    code = 81
    message = "Migration not in progress"
    expected = True


class HotunplugMemFailed(_Detailed, _vdsm_class("HotunplugMemFailed")):
    code = 85
    message = "Failed to hotunplug memory"
    expected = True


class HotplugLeaseFailed(_Detailed, _vdsm_class("HotplugLeaseFailed")):
    code = 86
    message = "Failed to hotplug lease"
    expected = True


class HotunplugLeaseFailed(_Detailed, _vdsm_class("HotunplugLeaseFailed")):
    code = 87
    message = "Failed to hotunplug lease"
    expected = True


class ExternalDataFailed(_Detailed, _vdsm_class("ExternalDataFailed")):
    code = 89
    message = "Failed to handle external VM data"
    expected = True


class ResetFailed(_Detailed, _vdsm_class("ResetFailed")):
    code = 90
    message = "Failed to reset VM."
    expected = False


class InvalidParameter(_Detailed, _vdsm_class("InvalidParameter")):
    code = 91
    message = "Invalid parameter"
    expected = True


class GeneralException(_Detailed, _vdsm_class("GeneralException")):
    code = 100
    message = "General Exception"
    expected = False


class InvalidConfiguration(_Detailed, _vdsm_class("InvalidConfiguration")):
    code = 101
    message = "Invalid configuration value"
    expected = True


class BackupError(_Detailed, _vdsm_class("BackupError")):
    code = 1600
    message = "Backup Error"
    expected = True


class CheckpointError(_Detailed, _vdsm_class("CheckpointError")):
    code = 1610
    message = "Checkpoint Error"
    expected = True


ALL = (
    NoSuchVM, VMExists, VMIsDown, CannotCreateVM, MissingParameter,
    MigrationError, MigrationCancelationFailed, ImageFileNotFound,
    UnsupportedImageFormat, SpiceTicketError, NonResponsiveGuestAgent,
    ChangeDiskFailed, VMDestroyFailed, HotplugDiskFailed, HotunplugDiskFailed,
    SnapshotFailed, HotplugNicFailed, HotunplugNicFailed, MergeFailed,
    BalloonError, ReplicaError, UpdateDeviceFailed, SetNumberOfCpusFailed,
    CpuTuneError, UpdateVMPolicyFailed, UpdateIOTuneError, HotplugMemFailed,
    UnsupportedOperation, FreezeGuestFSFailed, ThawGuestFSFailed,
    MigrationNotInProgress, HotunplugMemFailed, HotplugLeaseFailed,
    HotunplugLeaseFailed, ExternalDataFailed, ResetFailed, InvalidParameter,
    GeneralException, InvalidConfiguration, BackupError, CheckpointError,
)
_BY_CODE = {cls.code: cls for cls in ALL}


def invalid(field, value, reason):
    """InvalidParameter (91) naming the offending field and value."""
    return InvalidParameter(reason, field=field, value=value)


def missing(field, reason="required"):
    """MissingParameter (11) naming the missing field."""
    return MissingParameter(reason, field=field)


def describe(exc):
    """Return ``{'code', 'message'}`` for any exception, vdsm's or not.

    Unknown exceptions become GeneralException (100), the way vdsm's RPC
    layer reports them; used only at a process boundary (supervdsm, the
    command's exit).
    """
    if isinstance(exc, VdsmException):
        return exc.info()
    return {"code": GeneralException.code,
            "message": "%s: %s" % (GeneralException.message, exc)}


def from_info(info):
    """The error that ``describe`` described, to raise again.

    Used where an error crossed a process boundary (supervdsm): the class
    with that code, printing the message that was sent.
    """
    cls = _BY_CODE.get(info["code"], GeneralException)
    err = cls()
    err.context = {}
    err.msg = info["message"]
    return err

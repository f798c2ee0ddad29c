"""Errors in vdsm's own shape: a numeric ``code`` and a ``message``.

vdsm's RPC layer turns any ``VdsmException`` into ``{'status': {'code': ...,
'message': ...}}`` and anything else into code 100 "General Exception".  So
when vdsm is importable we raise vdsm's very classes; when it is not (the
standalone ``vdsm-container`` command, unit tests) we raise local mirrors
with the same names, codes, messages and ``response()``.

Mirrors lib/vdsm/common/exception.py (VdsmException, ContextException and the
subclasses listed in ``_MIRRORED``), oVirt/vdsm master fd4b0df20.
"""

try:  # pragma: no cover - depends on the host
    from vdsm.common import exception as _vdsm_exception
except ImportError:
    _vdsm_exception = None


class _VdsmException(Exception):
    """Local mirror of vdsm.common.exception.VdsmException."""

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


class _ContextException(_VdsmException):
    """Local mirror of vdsm.common.exception.ContextException."""

    context = None

    def __init__(self, reason=None, **kwargs):
        self.context = kwargs
        if reason:
            self.context["reason"] = reason

    def __str__(self):
        if self.context:
            return "%s: %s" % (self.msg, self.context)
        return self.msg


# name: (takes context, code, message) -- as in vdsm's exception.py.
_MIRRORED = {
    "NoSuchVM": (True, 1, "Virtual machine does not exist"),
    "VMExists": (False, 4, "Virtual machine already exists"),
    "VMIsDown": (False, 6, "Virtual machine is down"),
    "CannotCreateVM": (False, 9, "Error creating the requested VM"),
    "MissingParameter": (True, 11, "Missing required parameter"),
    "MigrationError": (False, 12, "Fatal error during migration"),
    "ImageFileNotFound": (True, 13, "Drive image file could not be found"),
    "UnsupportedImageFormat": (False, 17, "Unsupported image format"),
    "SpiceTicketError": (False, 18, "Error while setting spice ticket"),
    "NonResponsiveGuestAgent": (False, 19, "Guest agent non-responsive"),
    "ChangeDiskFailed": (False, 41, "Failed to change disk image"),
    "VMDestroyFailed": (False, 42, "Virtual machine destroy error"),
    "MethodNotImplemented": (False, 44, "Not implemented"),
    "HotplugDiskFailed": (False, 45, "Failed to hotplug disk"),
    "HotunplugDiskFailed": (False, 46, "Failed to hotunplug disk"),
    "MigrationCancelationFailed": (False, 47, "Migration not in progress"),
    "SnapshotFailed": (False, 48, "Snapshot failed"),
    "HotplugNicFailed": (False, 49, "Failed to hotplug NIC"),
    "HotunplugNicFailed": (False, 50, "Failed to hotunplug NIC"),
    "MergeFailed": (True, 52, "Merge failed"),
    "BalloonError": (False, 53, "Balloon operation is not available"),
    "ReplicaError": (False, 55, "Drive replication error"),
    "UpdateDeviceFailed": (False, 56, "Failed to update device"),
    "SetNumberOfCpusFailed": (False, 60, "Failed to set the number of cpus"),
    "CpuTuneError": (False, 62, "CpuTune operation is not available"),
    "UpdateVMPolicyFailed": (False, 63, "Failed to update VM SLA policy"),
    "UpdateIOTuneError": (True, 64, "Failed to update ioTune values"),
    "HotplugMemFailed": (False, 70, "Failed to hotplug memory"),
    "UnsupportedOperation": (True, 75, "Operation not supported"),
    "FreezeGuestFSFailed": (False, 76, "Unable to freeze guest filesystems"),
    "ThawGuestFSFailed": (False, 77, "Unable to thaw guest filesystems"),
    "MigrationNotInProgress": (False, 81, "Migration not in progress"),
    "HotunplugMemFailed": (True, 85, "Failed to hotunplug memory"),
    "HotplugLeaseFailed": (True, 86, "Failed to hotplug lease"),
    "HotunplugLeaseFailed": (True, 87, "Failed to hotunplug lease"),
    "ExternalDataFailed": (True, 89, "Failed to handle external VM data"),
    "ResetFailed": (True, 90, "Failed to reset VM."),
    "InvalidParameter": (True, 91, "Invalid parameter"),
    "GeneralException": (False, 100, "General Exception"),
    "InvalidConfiguration": (True, 101, "Invalid configuration value"),
    "BackupError": (True, 1600, "Backup Error"),
    "CheckpointError": (True, 1610, "Checkpoint Error"),
}


def _resolve(name, spec):
    if _vdsm_exception is not None and hasattr(_vdsm_exception, name):
        return getattr(_vdsm_exception, name)
    takes_context, code, message = spec
    base = _ContextException if takes_context else _VdsmException
    return type(name, (base,), {"code": code, "message": message,
                                "__module__": __name__})


if _vdsm_exception is not None:  # pragma: no cover - depends on the host
    VdsmException = _vdsm_exception.VdsmException
    ContextException = _vdsm_exception.ContextException
else:
    VdsmException = _VdsmException
    ContextException = _ContextException

for _name, _spec in _MIRRORED.items():
    globals()[_name] = _resolve(_name, _spec)
del _name, _spec

# Names that read better in this package; vdsm's API schema calls them so.
CreateError = globals()["CannotCreateVM"]          # "createErr", code 9
MissParam = globals()["MissingParameter"]          # "MissParam", code 11


def error(cls, reason, **context):
    """Build an instance of vdsm error class ``cls`` that says ``reason``.

    vdsm's ContextException subclasses keep ``reason`` and ``context`` and
    print them after the message; the older VdsmException subclasses take no
    arguments, so the detail is appended to the instance's message the same
    way.  Either way ``str(err)`` is "<message>: <detail>" and ``err.code`` is
    vdsm's code.
    """
    if issubclass(cls, ContextException):
        err = cls(reason, **context)
    else:
        err = cls()
        detail = dict(context, reason=reason) if context else reason
        err.msg = "%s: %s" % (cls.message, detail)
    err.expected = True
    return err


def invalid(field, value, reason):
    """InvalidParameter (91) naming the offending field and value."""
    return error(globals()["InvalidParameter"], reason, field=field,
                 value=value)


def missing(field, reason="required"):
    """MissingParameter (11) naming the missing field."""
    return error(MissParam, reason, field=field)


def describe(exc):
    """Return ``{'code', 'message'}`` for any exception, vdsm's or not.

    Unknown exceptions become GeneralException (100), the way vdsm's RPC
    bridge reports them; callers use this only at the process boundary.
    """
    if isinstance(exc, VdsmException):
        return exc.info()
    return {"code": 100, "message": "%s: %s" % ("General Exception", exc)}


def from_info(info):
    """Raise-able vdsm error from ``{'code', 'message'}`` (see describe).

    Used where an error crossed a process boundary (supervdsm): the class
    with that code, its message the one that was sent.
    """
    for name, (_, code, _) in _MIRRORED.items():
        if code == info["code"]:
            cls = globals()[name]
            break
    else:
        cls = globals()["GeneralException"]
    err = cls.__new__(cls)
    if isinstance(err, ContextException):
        err.context = {}
    err.msg = info["message"]
    return err

"""A libvirt-shaped domain in front of a container.

vdsm's Vm code talks to ``self._dom``, a libvirt ``virDomain``.  The feature
page designs the container side to "mimic the libvirt API to cleanly fit in
the existing Vdsm" (convirt's ``Domain``): ``ContainerDomain`` answers the
virDomain methods vdsm calls (state, info, XMLDesc, UUIDString, ID, name,
isActive, isPersistent, destroyFlags, controlInfo, ...) with libvirt's
constants, and every other virDomain method vdsm uses raises
``libvirtError`` with VIR_ERR_OPERATION_UNSUPPORTED, so inherited Vm code
fails the libvirt way (which it handles), never with an AttributeError.

Without libvirt-python (the standalone command) the same constants and error
class are mirrored here, from libvirt's include/libvirt/libvirt-domain.h and
virterror.h.
"""

from __future__ import annotations

from vdsm_container import constants

try:  # pragma: no cover - depends on the host
    import libvirt
    libvirtError = libvirt.libvirtError
except ImportError:
    libvirt = None

    class libvirtError(Exception):
        """Mirror of libvirt.libvirtError's interface vdsm uses."""

        def __init__(self, msg, code):
            super().__init__(msg)
            self._code = code

        def get_error_code(self):
            return self._code

        def get_error_message(self):
            return str(self)


def _const(name, value):
    return getattr(libvirt, name, value) if libvirt else value


VIR_DOMAIN_NOSTATE = _const("VIR_DOMAIN_NOSTATE", 0)
VIR_DOMAIN_RUNNING = _const("VIR_DOMAIN_RUNNING", 1)
VIR_DOMAIN_PAUSED = _const("VIR_DOMAIN_PAUSED", 3)
VIR_DOMAIN_SHUTDOWN = _const("VIR_DOMAIN_SHUTDOWN", 4)
VIR_DOMAIN_SHUTOFF = _const("VIR_DOMAIN_SHUTOFF", 5)
VIR_DOMAIN_RUNNING_BOOTED = _const("VIR_DOMAIN_RUNNING_BOOTED", 1)
VIR_DOMAIN_PAUSED_USER = _const("VIR_DOMAIN_PAUSED_USER", 1)
VIR_DOMAIN_SHUTOFF_SHUTDOWN = _const("VIR_DOMAIN_SHUTOFF_SHUTDOWN", 1)
VIR_DOMAIN_SHUTOFF_CRASHED = _const("VIR_DOMAIN_SHUTOFF_CRASHED", 3)
VIR_DOMAIN_CONTROL_OK = _const("VIR_DOMAIN_CONTROL_OK", 0)
VIR_ERR_OPERATION_UNSUPPORTED = _const("VIR_ERR_OPERATION_UNSUPPORTED", 84)
VIR_ERR_NO_DOMAIN_METADATA = _const("VIR_ERR_NO_DOMAIN_METADATA", 80)

_STATES = {
    constants.WAIT_FOR_LAUNCH: (VIR_DOMAIN_NOSTATE, 0),
    constants.UP: (VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED),
    constants.POWERING_DOWN: (VIR_DOMAIN_SHUTDOWN, 0),
    constants.PAUSED: (VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER),
}

# virDomain methods vdsm's virt code calls on _dom that a container can't
# serve (from ``git grep '_dom\.'`` in lib/vdsm/virt, master fd4b0df20).
UNSUPPORTED = (
    "abortJob", "attachDevice", "attachDeviceFlags", "backupBegin",
    "backupGetXMLDesc", "blockCommit", "blockCopy", "blockInfo",
    "blockIoTune", "blockJobAbort", "blockJobInfo", "blockPull",
    "blockResize", "blockStats", "checkpointCreateXML",
    "checkpointLookupByName", "detachDevice", "detachDeviceFlags",
    "fsFreeze", "fsThaw", "getCPUStats", "getJobStats", "guestInfo",
    "interfaceAddresses", "listAllCheckpoints", "managedSave",
    "memoryStats", "migrateGetMaxSpeed", "migrateSetMaxDowntime",
    "migrateSetMaxSpeed", "migrateStartPostCopy", "migrateToURI3",
    "reset", "resume", "schedulerParameters", "setBlockIoTune",
    "setBlockThreshold", "setMemory", "setMemoryStatsPeriod",
    "setMetadata", "setSchedulerParameters", "setTime", "setVcpusFlags",
    "shutdownFlags", "snapshotCreateXML", "suspend", "updateDeviceFlags",
    "vcpus", "vcpusFlags", "jobInfo", "getTime", "agentCommand",
)


def error(message, code):
    """A libvirtError carrying ``code``, as libvirt itself raises them.

    libvirt-python's libvirtError reads libvirt's last error in its
    constructor; we build one the way it ends up: ``err`` is libvirt's
    (code, domain, message, level, ...) tuple.
    """
    if libvirt is None:
        return libvirtError(message, code)
    err = libvirt.libvirtError.__new__(libvirt.libvirtError)
    Exception.__init__(err, message)
    err.err = (code, getattr(libvirt, "VIR_FROM_DOM", 10), message,
               getattr(libvirt, "VIR_ERR_ERROR", 2), None, None, None, -1,
               -1)
    return err


def _unsupported(name):
    def method(self, *args, **kwargs):
        raise error("virDomain.%s is not supported for containers" % name,
                    VIR_ERR_OPERATION_UNSUPPORTED)
    method.__name__ = name
    return method


class DomainXML:
    """``Vm.domain``: Host.dumpxmls reads ``.xml``."""

    def __init__(self, xml):
        self.xml = xml
        self.devices_hash = None


class ContainerDomain:
    """The virDomain of one container (``Container._dom``)."""

    connected = True

    def __init__(self, container):
        self._ctr = container

    def UUIDString(self):
        return self._ctr.id

    def name(self):
        return self._ctr.name

    def ID(self):
        pid = self._ctr.init_pid
        return pid if self.isActive() and pid else -1

    def state(self, flags=0):
        status = self._ctr.lastStatus
        if status == constants.DOWN:
            code = self._ctr.exit_code or constants.NORMAL
            return [VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SHUTDOWN
                    if code == constants.NORMAL
                    else VIR_DOMAIN_SHUTOFF_CRASHED]
        return list(_STATES.get(status, (VIR_DOMAIN_NOSTATE, 0)))

    def info(self):
        """[state, maxMem KiB, memory KiB, nrVirtCpu, cpuTime ns]."""
        spec = self._ctr.spec
        if spec is None:
            return [self.state()[0], 0, 0, 0, 0]
        last = self._ctr.last_sample
        return [self.state()[0], spec.memory_kib, spec.current_memory_kib,
                spec.vcpus, last.cpu_usage_ns if last else 0]

    def isActive(self):
        return int(self._ctr.lastStatus in (constants.UP, constants.PAUSED,
                                            constants.POWERING_DOWN))

    def isPersistent(self):
        return 0

    def XMLDesc(self, flags=0):
        return self._ctr.xml

    def controlInfo(self, flags=0):
        """[state, details, stateTime]: the monitor always answers."""
        return [VIR_DOMAIN_CONTROL_OK, 0, 0]

    def destroyFlags(self, flags=0):
        self._ctr.destroy(gracefulAttempts=0)
        return 0

    def destroy(self):
        return self.destroyFlags()

    def metadata(self, type_, uri, flags=0):
        raise error("no metadata for containers", VIR_ERR_NO_DOMAIN_METADATA)


for _name in UNSUPPORTED:
    setattr(ContainerDomain, _name, _unsupported(_name))
del _name

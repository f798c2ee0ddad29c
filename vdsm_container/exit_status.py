"""How a container's end reads to Engine: vdsm's exit code, reason, message.

A VM that goes Down carries ``exitCode`` (lib/vdsm/common/define.py),
``exitReason`` (lib/vdsm/virt/vmexitreason.py) and ``exitMessage``; vdsm's
``Vm._onQemuDeath``/``setDownStatus`` choose them from what libvirt says.
Here the runtime says it: an exit status, a signal, an OOM kill, or
nothing at all when its record is gone.  Pure functions of that.
"""

from __future__ import annotations

import signal as signals

from vdsm_container import constants
from vdsm_container.runtimes import base


def signal_name(num):
    try:
        return signals.Signals(num).name
    except ValueError:
        return "signal %d" % num


def of_exit(rs, memory_kib, shutdown_requested=False, forced=False):
    """(exitCode, exitReason, exitMessage) for a container that ended.

    ``rs`` is the runtime's ``RuntimeState``; ``shutdown_requested`` says
    that the VM was asked to shut down, ``forced`` that the shutdown ended
    with SIGKILL (vdsm's ``force``): both end as "Admin shut down".
    """
    if rs.oom_killed:
        return (constants.ERROR, constants.GENERIC_ERROR,
                "The container ran out of memory and was killed "
                "(memory limit %d MiB)" % (memory_kib // 1024))
    if rs.status == base.GONE or rs.exit_code is None:
        return (constants.ERROR, constants.LIBVIRT_DOMAIN_MISSING,
                "The container is gone and its exit status is unknown")
    code = rs.exit_code
    graceful = (0, 128 + signals.SIGTERM)
    if shutdown_requested and (code in graceful or (
            forced and code == 128 + signals.SIGKILL)):
        return (constants.NORMAL, constants.ADMIN_SHUTDOWN,
                constants.EXIT_REASONS[constants.ADMIN_SHUTDOWN])
    if code == 0:
        return (constants.NORMAL, constants.USER_SHUTDOWN,
                "The container's process exited with status 0")
    if code > 128:
        return (constants.ERROR, constants.GENERIC_ERROR,
                "The container's process was killed by %s (exit "
                "status %d)" % (signal_name(code - 128), code))
    return (constants.ERROR, constants.GENERIC_ERROR,
            "The container's process exited with status %d" % code)


def of_interrupted_start():
    """A start whose process died before the container ran."""
    return (constants.ERROR, constants.DESTROYED_ON_STARTUP,
            "The start was interrupted (the process starting the "
            "container died)")


def of_never_started():
    """A container the runtime created but never started: the process
    starting it died between the runtime's create and start, so the
    container's command never ran."""
    return (constants.ERROR, constants.DESTROYED_ON_STARTUP,
            "The start was interrupted: the container was created but "
            "never started (its command never ran)")


def of_failed_start(error):
    return (constants.ERROR, constants.GENERIC_ERROR, str(error))


def of_unreadable_state(reason):
    """A VM whose state file can't be read (recovery)."""
    return (constants.ERROR, constants.GENERIC_ERROR,
            "The container's state can't be read: %s; destroy the VM to "
            "remove what is left of it" % reason)

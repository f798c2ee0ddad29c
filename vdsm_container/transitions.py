"""Where an observation of the host moves a VM's state: pure rules.

vdsm moves a VM's status on libvirt's lifecycle events
(lib/vdsm/virt/vm.py ``onLibvirtLifecycleEvent``, ``_onQemuDeath``); a
container's come from looking at its runtime (``HostBackend.observe``).
``next_state`` is that table, with no I/O: what the runtime says, against
what the VM is recorded as.
"""

from __future__ import annotations

import collections

from vdsm_container import constants
from vdsm_container import exit_status
from vdsm_container.runtimes import base

RUNNING_STATES = (constants.UP, constants.PAUSED, constants.POWERING_DOWN)

# status: the new vdsm status; pid: the container's init (Up from an
# interrupted start); exit: (exitCode, exitReason, exitMessage) when Down.
Move = collections.namedtuple("Move", "status pid exit")


def next_state(status, rs, starting, memory_kib=0, shutdown_requested=False,
               forced=False):
    """The ``Move`` an observation calls for, or None.

    ``status`` is the VM's recorded status, ``rs`` the runtime's
    ``RuntimeState``, ``starting`` whether a start is still under way.
    """
    if status == constants.WAIT_FOR_LAUNCH:
        if starting:
            return None
        # No start under way, yet WaitForLaunch: its process died.
        if rs is not None and rs.status == base.CREATED:
            return Move(constants.DOWN, None, exit_status.of_never_started())
        if rs is not None and rs.status in (base.RUNNING, base.PAUSED) \
                and rs.pid:
            return Move(constants.UP, rs.pid, None)
        return Move(constants.DOWN, None,
                    exit_status.of_interrupted_start())
    if status not in RUNNING_STATES or rs is None:
        return None
    if rs.status == base.CREATED:
        # Recorded Up by a start whose process died before the runtime's
        # start ran: the command never ran.
        return Move(constants.DOWN, None, exit_status.of_never_started())
    if rs.status == base.RUNNING and status == constants.PAUSED:
        return Move(constants.UP, None, None)
    if rs.status == base.PAUSED and status != constants.PAUSED:
        return Move(constants.PAUSED, None, None)
    if rs.status in (base.STOPPED, base.GONE):
        return Move(constants.DOWN, None, exit_status.of_exit(
            rs, memory_kib, shutdown_requested, forced))
    return None

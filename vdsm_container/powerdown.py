"""The end of a shutdown: wait for the container, then force or give up.

Mirrors lib/vdsm/virt/vmpowerdown.py ``VmShutdown``: after the graceful
request (for a container, SIGTERM to its init) the VM has ``timeout``
seconds to end; then ``forceCallback`` kills it when the caller asked for
``force``, and otherwise the shutdown is over, unsuccessful, and the VM is
Up again (vdsm's status returns from Powering down once the power-down
chain ends).
"""

from __future__ import annotations

import logging
import signal as signals
import time

from vdsm_container import constants
from vdsm_container import errors

log = logging.getLogger("vdsm_container.powerdown")

# How often a shutdown in progress looks whether the container ended.
POLL = 0.5
# After a forced shutdown's SIGKILL: how long to wait for the end.
KILL_WAIT = 10.0


def finish(ctr, timeout, force):
    """Wait for ``ctr`` (a Container Powering down) to end."""
    if wait_down(ctr, timeout):
        return
    if force:
        log.info("Container %s did not stop in %ss: killing it", ctr.id,
                 timeout)
        ctr.mark_forced_shutdown()
        try:
            ctr.backend.signal(ctr.id, signals.SIGKILL)
        except errors.NoSuchVM:
            return
        wait_down(ctr, KILL_WAIT)
        return
    log.warning("Container %s did not stop in %ss after SIGTERM", ctr.id,
                timeout)
    ctr.abandon_shutdown()


def wait_down(ctr, timeout):
    """True once ``ctr`` is Down or gone, False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ctr.refresh() == constants.DOWN:
                return True
        except errors.NoSuchVM:
            return True
        if ctr.destroy_requested():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)

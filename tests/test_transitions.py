"""The state table: an observation of the runtime against a VM's status."""

import pytest

from vdsm_container import constants as c
from vdsm_container import transitions
from vdsm_container.runtimes.base import RuntimeState

UP, DOWN, PAUSED, WFL, PD = (c.UP, c.DOWN, c.PAUSED, c.WAIT_FOR_LAUNCH,
                             c.POWERING_DOWN)


def rs(status, pid=None, code=None, oom=False):
    return RuntimeState(status, pid, code, oom)


@pytest.mark.parametrize("status,seen,starting,expected", [
    (WFL, rs("running", 7), True, None),                # start under way
    (WFL, rs("running", 7), False, (UP, 7)),            # its starter died
    (WFL, rs("created", 7), False, (DOWN, None)),       # never started
    (WFL, rs("gone"), False, (DOWN, None)),
    (UP, rs("running", 7), False, None),
    (UP, rs("paused", 7), False, (PAUSED, None)),
    (PAUSED, rs("running", 7), False, (UP, None)),
    (PD, rs("running", 7), False, None),                # still stopping
    (UP, rs("stopped", 7, 0), False, (DOWN, None)),
    (UP, rs("created", 7), False, (DOWN, None)),
    (DOWN, rs("gone"), False, None),                    # Down stays Down
])
def test_next_state(status, seen, starting, expected):
    move = transitions.next_state(status, seen, starting, 65536)
    assert (move and (move.status, move.pid)) == (expected or None)


@pytest.mark.parametrize("seen,shutdown,forced,reason,code", [
    (rs("stopped", 7, 0), False, False, c.USER_SHUTDOWN, c.NORMAL),
    (rs("stopped", 7, 143), True, False, c.ADMIN_SHUTDOWN, c.NORMAL),
    (rs("stopped", 7, 137), True, False, c.GENERIC_ERROR, c.ERROR),
    (rs("stopped", 7, 137), True, True, c.ADMIN_SHUTDOWN, c.NORMAL),
    (rs("stopped", 7, 137, oom=True), False, False, c.GENERIC_ERROR,
     c.ERROR),
    (rs("gone"), False, False, c.LIBVIRT_DOMAIN_MISSING, c.ERROR),
])
def test_exit_reasons(seen, shutdown, forced, reason, code):
    move = transitions.next_state(UP, seen, False, 65536, shutdown, forced)
    assert move.status == DOWN
    assert move.exit[:2] == (code, reason)

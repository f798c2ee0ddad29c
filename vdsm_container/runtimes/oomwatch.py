"""Whether conmon got its watch of the container's memory.events.

On cgroup v2 conmon sets up its OOM watch with an inotify instance of its
own right after it reports the container's pid (conmon src/cgroup.c
``setup_oom_handling_cgroup_v2``).  When root's inotify instances are at
``fs.inotify.max_user_instances``, ``inotify_init`` fails and conmon warns
on its stderr, which is /dev/null once it has daemonized, and runs on: the
container is up and nothing says the watch is missing.  An OOM kill is
still told when the container ends (conmon reads memory.events once more
as it exits; the kernel's log; systemd: ocistate.Status._oom_killed), as
measured in the host-shape VM, but root's other services meet the same
EMFILE from then on.  So the driver looks, once
per start on cgroup v2, at conmon's descriptors (a dozen) and says it in
vdsm.log; ``vdsm-container mark-host`` raises the limit
(vdsm_container/vdsm/hostsysctl.py).
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("vdsm_container.runtimes.oomwatch")

LIMIT = "/proc/sys/fs/inotify/max_user_instances"
# conmon's setup runs beside our ``runc start``: give it this long when the
# first look finds no watch (only then: a watched start pays one look).
WAIT = 1.0


def _has_inotify(pid):
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == "anon_inode:inotify":
                return True
        except OSError:
            pass
    return False


def watching(pid, wait=WAIT):
    """True if conmon ``pid`` holds an inotify instance, or has exited
    (nothing to say then); False if it still holds none after ``wait``."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if _has_inotify(pid):
                return True
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def check(vm_id, conmon_pid, wait=WAIT):
    """Warn if conmon ``conmon_pid`` runs without its OOM watch.

    Returns False then, True otherwise."""
    if not conmon_pid or watching(conmon_pid, wait):
        return True
    try:
        with open(LIMIT) as f:
            limit = f.read().strip()
    except OSError:
        limit = "?"
    log.warning("Container %s: conmon could not watch its memory.events "
                "(root's inotify instances are used up: "
                "fs.inotify.max_user_instances = %s; other root services "
                "meet the same limit).  Raise it: vdsm-container "
                "mark-host, or /etc/sysctl.d/50-vdsm-container.conf",
                vm_id, limit)
    return False

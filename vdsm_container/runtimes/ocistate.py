"""An OCI container's status, read without running the runtime.

conmon's exit file says the container ended, ``/proc/<pid>/cgroup`` that it
still runs (and that the pid was not reused), the freezer that it is paused,
the runtime's exec.fifo that it was created and never started (then
``<runtime> state`` confirms it), and conmon's ``oom`` file (written in its
working directory, the bundle) or the cgroup's OOM kill counter that the
kernel killed it for memory.  ``<runtime> state`` is otherwise used only to
recover.

A mixin of ``oci.OCIDriver``: it uses the driver's ``root``, ``systemd``,
``hierarchy``, ``_args``, ``cgroup_path`` and conmon's files
(``conmon.Supervision``).
"""

from __future__ import annotations

import json
import os
import signal as signals
import time

from vdsm_container.linux import files
from vdsm_container.runtimes import base, proc
from vdsm_container.stats import cgroups

# After a SIGKILL: how long conmon and systemd get to say it was the OOM
# killer (both handle the end asynchronously; under emulation, slowly).
OOM_WAIT = 5.0


def kernel_oom_kill(scope):
    """True if the kernel's log has an OOM kill in cgroup ``scope``.

    The OOM killer logs each kill ("oom-kill:...,oom_memcg=<cgroup>,...")
    in the kernel's ring buffer, which outlives the container's cgroup:
    where systemd removes an emptied scope at once, conmon's and systemd's
    own watches of memory.events can both lose that race, and this record
    still tells.  Reads /dev/kmsg (root) without waiting.
    """
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    # The scope itself, or below it (crun puts the container's processes
    # in a "container" cgroup inside the scope on cgroup v2).
    markers = [("/%s%s" % (scope, end)).encode() for end in (",", "/")]
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BrokenPipeError:
                continue        # overwritten while we read: go on
            except BlockingIOError:
                return False    # the end of the buffer
            if not record:
                return False
            if b"oom-kill:" in record and any(m in record for m in markers):
                return True
    finally:
        os.close(fd)



class Status:
    """``state`` and the looks it is made of."""

    def state(self, bundle):
        pid = bundle.pid()
        code = self._exit_code(bundle)
        if code is None and self._alive(bundle, pid):
            if self._created(bundle):
                return base.RuntimeState(base.CREATED, pid)
            status = base.PAUSED if self._frozen(bundle) else base.RUNNING
            return base.RuntimeState(status, pid)
        if code is None and pid is None and not any(
                os.path.exists(p) for p in self.records(bundle.vm_id)):
            return base.RuntimeState(base.GONE)
        if code is None:
            # Died just now: give conmon a moment to write the exit file.
            deadline = time.monotonic() + 1.0
            while code is None and time.monotonic() < deadline:
                time.sleep(0.01)
                code = self._exit_code(bundle)
        return base.RuntimeState(base.STOPPED, pid, code,
                                 self._oom_killed(bundle, code))

    def _alive(self, bundle, pid):
        """True if ``pid`` still is this container's process."""
        if not pid:
            return False
        try:
            if cgroups.scope_name(bundle.vm_id) not in files.read_text(
                    "/proc/%d/cgroup" % pid):
                return False
            # State field follows the parenthesised command name.
            return files.read_text("/proc/%d/stat" % pid).rsplit(
                ")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def _frozen(self, bundle):
        rel = self.cgroup_path(bundle)
        if self.hierarchy.version == 2:
            path = os.path.join(self.hierarchy.path(rel), "cgroup.freeze")
            frozen = "1"
        else:
            path = os.path.join(self.hierarchy.path(rel, "freezer"),
                                "freezer.state")
            frozen = "FROZEN"
        try:
            return files.read_text(path).strip() == frozen
        except OSError:
            return False

    def _created(self, bundle):
        """True if the container was created and never started: its init
        (the runtime's, not the image's command) waits on exec.fifo, which
        ``start`` removes (runc and crun alike).  The runtime itself is
        asked only then, so the usual look stays a few file reads."""
        if not os.path.exists(os.path.join(self.root, bundle.vm_id,
                                           "exec.fifo")):
            return False
        out = proc.run(self._args() + ["state", bundle.vm_id], timeout=30)
        try:
            return json.loads(out.stdout).get("status") == base.CREATED
        except ValueError:
            return False

    def _oom_killed(self, bundle, code):
        """conmon saw an OOM kill (it watches memory.events on v2 and the
        OOM eventfd on v1), or the cgroup, if still there, counted one.
        Where systemd is PID 1 the scope's cgroup goes away with its last
        process, so conmon's file is the one that tells there; conmon may
        handle the container's exit before the OOM event, so for a SIGKILL
        it is given until it exits to write the file."""
        if os.path.exists(self._oom_file(bundle)):
            return True
        if self.hierarchy.oom_kills(self.cgroup_path(bundle)) > 0:
            return True
        if code != 128 + signals.SIGKILL:
            return False
        # A SIGKILL: the OOM killer's, or anyone's.  conmon and systemd
        # (which watches the scope's memory.events too, and keeps a failed
        # scope with its result until cleanup resets it) each tell, once
        # they have handled the end; either may still be at it.
        deadline = time.monotonic() + OOM_WAIT
        while True:
            if os.path.exists(self._oom_file(bundle)) or \
                    kernel_oom_kill(self._scope(bundle)):
                return True
            unit = self._unit_state(bundle) if self.systemd else {}
            if unit.get("Result") == "oom-kill":
                return True
            settled = not self._conmon_alive(bundle) and unit.get(
                "ActiveState") not in ("active", "activating",
                                       "deactivating")
            if settled or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _scope(self, bundle):
        return cgroups.scope_name(bundle.vm_id)

    def _unit_state(self, bundle):
        """The container scope's Result and ActiveState (systemd)."""
        out = proc.run(["systemctl", "show", "--property=Result,ActiveState",
                        self._scope(bundle)], timeout=30)
        return dict(line.split("=", 1) for line in out.stdout.splitlines()
                    if "=" in line)


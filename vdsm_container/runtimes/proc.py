"""Running a runtime's commands, and what to tell of their output.

One helper for every driver (runc, crun, rkt), so that each command runs the
same way: no stdin, text output captured, a timeout; and one rule for the
line an error message quotes.
"""

from __future__ import annotations

import os
import subprocess

#: Variables of the caller that belong to its own systemd unit (vdsmd's),
#: not to a unit started for a container.
_UNIT_OWN = ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM",
             "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID",
             "WATCHDOG_USEC", "SYSTEMD_EXEC_PID", "MANAGERPID")


def systemd_booted():
    """sd_booted(3): systemd is PID 1."""
    return os.path.isdir("/run/systemd/system")


def run(argv, timeout=60):
    """Run ``argv`` to its end; a CompletedProcess with text output."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


def last_line(text, default="no output"):
    """The last non-blank line of a command's output: where runc, crun,
    conmon and rkt put the reason they failed.  runc logs logfmt lines
    (``level=error msg="..."``): only the message is kept."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return default
    last = lines[-1]
    if 'msg="' in last:
        last = last.split('msg="', 1)[1].rsplit('"', 1)[0]
    return last


def unit_environment(environ=None):
    """``systemd-run --setenv`` arguments that give a unit the caller's
    environment: systemd starts a unit from the manager's, not the
    caller's (systemd-run(1)), so a runtime started as a unit would
    otherwise miss PATH and whatever else the caller set for it."""
    environ = os.environ if environ is None else environ
    return ["--setenv=%s=%s" % (k, v) for k, v in sorted(environ.items())
            if k not in _UNIT_OWN and "\n" not in v]

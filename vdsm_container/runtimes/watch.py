"""Cheap tells that a running container has ended, for the status round.

The status round (every 2 s, ``records.Records.unchanged``) must not
ask the runtime about a thousand containers that still run as the last look
found them; a driver gives, for a container it found running, a watch whose
``ended()`` costs a syscall or two and turns True once the container may
have ended.  Then the round looks fully again (``Driver.state``).  A watch
may say "ended" too early (the round then merely looks), never too late:
the 15-second sampling round looks fully at everything anyway.

- ``ExitFile``: a supervisor writes the container's exit status as it ends
  (conmon, for runc and crun).
- ``Process``: the container's process ends with it (rkt's pod: ``rkt
  status`` reports its pid, and rkt writes no exit file of its own); gone,
  a zombie, or the pid reused by another process (another start time).
"""

from __future__ import annotations

import os

from vdsm_container.linux import pidinfo


class ExitFile:
    """Ended once ``path`` exists."""

    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path

    def ended(self):
        return os.path.exists(self.path)


class Process:
    """Ended once the process ``pid`` (as it runs now) no longer runs."""

    __slots__ = ("identity",)

    def __init__(self, pid):
        self.identity = pidinfo.identity(pid)

    def ended(self):
        return self.identity is None or \
            pidinfo.identity(self.identity[0]) != self.identity

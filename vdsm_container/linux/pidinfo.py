"""What /proc says of a process: whether it still runs, and which one it is.

A process that ended stays in /proc as a zombie until its parent reaps it
(for good where PID 1 does not reap, as on these CI machines), and pids are
reused: so "/proc/<pid> is there" is neither "it runs" nor "it is the one
we saw".  ``running`` reads the state letter; ``identity`` adds the start
time, which a later process with the same pid does not share.  The reads
are plain syscalls (``files.read_text``): a status round makes one per
container whose runtime has no exit file.
"""

from __future__ import annotations

import os

from vdsm_container.linux import files


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (which is in
    parentheses and may hold both spaces and parentheses): [state, ppid,
    ...]; None when there is no such process."""
    try:
        return files.read_text("/proc/%d/stat" % pid).rsplit(
            ")", 1)[1].split()
    except (OSError, IndexError):
        return None


def running(pid):
    """True if ``pid`` is a process that has not ended (not a zombie)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def identity(pid):
    """``(pid, start time)`` of a running process, None when it is gone or
    a zombie: two equal identities are the same process."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return None
    try:
        return (pid, int(fields[19]))     # stat's field 22, starttime
    except (IndexError, ValueError):
        return None


def argvs():
    """``(pid, argv)`` of each process in /proc, its arguments as bytes (a
    zombie's argv is empty)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                yield int(name), f.read().split(b"\0")
        except OSError:
            continue


def commands():
    """``(pid, command line)`` of each process that runs (zombies left
    out), the arguments joined by spaces."""
    for pid, argv in argvs():
        if running(pid):
            yield pid, b" ".join(argv).decode(errors="replace")

"""Small file and process helpers the host side shares.

Every record the plugin keeps (VM state, network state, the OCI config, the
host marker hook) is replaced atomically, so a reader never sees half of
one, even after a crash; every helper process it signals is checked to be
its own first, since pids are reused.  Small files a sampler reads every
round (pid files, /proc, cgroup knobs) are read with plain syscalls.
"""

from __future__ import annotations

import os


def write_atomically(path, text, mode=None, fsync=False):
    """Replace ``path`` with ``text``: write a temporary file beside it,
    then rename (``fsync`` first, for what must survive a power loss)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.rename(tmp, path)


_CHUNK = 65536


def read_text(path):
    """The whole file as text; raises OSError as ``open`` would.

    A sampler reads several small files per container every 2 s; at a
    thousand containers Python's buffered text files (a FileIO, a
    BufferedReader, a TextIOWrapper and a codec for each) cost more than
    the reads themselves.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:
            chunks = [data]
            while True:
                more = os.read(fd, _CHUNK)
                if not more:
                    break
                chunks.append(more)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def read_pid(path):
    """The pid written in ``path``, or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def kill_if_ours(pid, marker, signum):
    """Send ``signum`` to ``pid`` if its command line contains ``marker``
    (a reused pid belongs to someone else); True if it was sent."""
    if not pid:
        return False
    if isinstance(marker, str):
        marker = marker.encode()
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if marker not in f.read():
                return False
        os.kill(pid, signum)
    except (OSError, ProcessLookupError):
        return False
    return True

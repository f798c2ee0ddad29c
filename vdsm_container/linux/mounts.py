"""mount(2) and umount(2), and what /proc/self/mountinfo says is mounted.

Called through libc rather than the mount(8) command: starting a container
mounts its overlay on the hot path, and a syscall costs microseconds where a
command costs milliseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                    use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REC = 16384
MNT_DETACH = 2


def _b(s):
    return s.encode() if isinstance(s, str) else s


def mount(source, target, fstype=None, flags=0, data=None):
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "mount %s on %s: %s" % (source, target,
                                                    os.strerror(err)))


def umount(target):
    """Unmount ``target``; lazily if busy.  Not mounted is not an error."""
    if _libc.umount2(_b(target), 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return      # not a mount point (any more)
    if err == errno.EBUSY and _libc.umount2(_b(target), MNT_DETACH) == 0:
        return
    raise OSError(err, "umount %s: %s" % (target, os.strerror(err)))


def overlay(lower, upper, work, target):
    mount("overlay", target, "overlay", 0,
          "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work))


def _unescape(field):
    return field.replace("\\040", " ").replace("\\011", "\t") \
        .replace("\\012", "\n").replace("\\134", "\\")


def mounted_under(prefix):
    """Mount points at or below ``prefix``, deepest first."""
    prefix = os.path.realpath(prefix)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + os.sep):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def overlay_lowerdirs():
    """Every lowerdir of an overlay mounted on the host: cache entries a
    container being created uses (a running container's overlay is in its
    own mount namespace only: its record names its image)."""
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            _, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3 or fields[0] != "overlay":
                continue
            for opt in fields[2].split(","):
                if opt.startswith("lowerdir="):
                    found.update(_unescape(d) for d in
                                 opt[len("lowerdir="):].split(":"))
    return found

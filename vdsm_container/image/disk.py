"""What a disk path may be: a regular file or a block device, nothing else.

vdsm hands the plugin a path it prepared: a volume file on a file domain,
or a link to a logical volume's block device on a block domain
(lib/vdsm/storage/blockVolume.py ``BlockVolume.getVolumePath``).  Anything
else is refused before it is opened or mounted, with an error naming the
disk: a FIFO would block the open forever, a character device can act on
open (a watchdog, a tape), a directory or socket is no volume.

A block device the host itself uses (mounted outside our own storage,
holding partitions, or held by another device such as dm or md) is refused
too: ``/dev/vda`` is a block device, but it is the host's disk.
"""

from __future__ import annotations

import os
import stat

from vdsm_container import errors

_KIND = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
         stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory",
         stat.S_IFLNK: "a symlink"}


def kind(mode):
    return _KIND.get(stat.S_IFMT(mode), "not a regular file")


def check(path, disk, allow_dir=False, own_mounts=None):
    """Return os.stat(path) if it is an acceptable disk, else raise.

    ``disk`` names the disk in the error; ``own_mounts`` is a directory
    below which a mount of this block device is ours (a volume of another
    container).  Raises ImageFileNotFound (13) when missing,
    InvalidParameter (91) otherwise.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.ImageFileNotFound("%s does not exist" % path,
                                       disk=disk) from None
    except OSError as e:
        raise errors.ImageFileNotFound(str(e), disk=disk) from e
    if stat.S_ISREG(st.st_mode) or allow_dir and stat.S_ISDIR(st.st_mode):
        return st
    if stat.S_ISBLK(st.st_mode):
        busy = host_use(st.st_rdev, own_mounts)
        if busy:
            raise errors.InvalidParameter(
                "%s is a block device the host uses (%s): not a volume "
                "prepared for this VM" % (path, busy), disk=disk, path=path)
        return st
    raise errors.InvalidParameter(
        "%s is %s: a disk must be a regular file or a block device"
        % (path, kind(st.st_mode)), disk=disk, path=path)


def host_use(rdev, own_mounts=None):
    """How the host uses block device ``rdev``, or "" if it does not."""
    major, minor = os.major(rdev), os.minor(rdev)
    sysdir = "/sys/dev/block/%d:%d" % (major, minor)
    try:
        if os.listdir(os.path.join(sysdir, "holders")):
            return "held by " + ", ".join(
                sorted(os.listdir(os.path.join(sysdir, "holders"))))
    except OSError:
        pass
    try:
        name = os.path.basename(os.path.realpath(sysdir))
        parts = [n for n in os.listdir(sysdir) if n.startswith(name)]
        if parts:
            return "has partitions " + ", ".join(sorted(parts))
    except OSError:
        pass
    devs = {"%d:%d" % (major, minor)}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[2] in devs:
                    point = fields[4].replace("\\040", " ")
                    if own_mounts and (point + "/").startswith(
                            own_mounts.rstrip("/") + "/"):
                        continue
                    return "mounted on " + point
    except OSError:
        pass
    try:
        with open("/proc/swaps") as f:
            next(f, None)
            for line in f:
                dev = line.split()[0]
                try:
                    if os.stat(dev).st_rdev == rdev:
                        return "swap"
                except OSError:
                    continue
    except OSError:
        pass
    return ""


def open_image(path):
    """Open an image disk for reading without ever blocking: stat first (a
    character device is never opened), then open O_NONBLOCK and check that
    what was opened is what was checked."""
    st = check(path, "image", allow_dir=True)
    if stat.S_ISDIR(st.st_mode):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY |
                     os.O_CLOEXEC)
    except OSError as e:
        raise errors.ImageFileNotFound(str(e), disk="image") from e
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not (
                stat.S_ISREG(now.st_mode) or stat.S_ISBLK(now.st_mode)):
            raise errors.InvalidParameter(
                "%s changed while it was opened (now %s)"
                % (path, kind(now.st_mode)), disk="image", path=path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise

"""Mount a filesystem image through a loop device, with ioctls.

What ``mount -o loop`` does, without starting mount(8) (which also probes
the image with libblkid): it is on a container's start path
(``bundle.quota``), where a command costs milliseconds.  The device is set
up with autoclear, so the kernel frees it when the filesystem is unmounted
(or when the mount fails and our descriptor closes): nothing to undo but
the unmount.

linux/loop.h: LOOP_CTL_GET_FREE finds a free device; LOOP_CONFIGURE (Linux
5.8) binds the file and sets the flags in one step, LOOP_SET_FD and
LOOP_SET_STATUS64 do it on older kernels (EL8's 4.18).  Another process may
take the same free device first (EBUSY): then the next free one is asked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from vdsm_container.linux import mounts

LOOP_SET_FD = 0x4C00
LOOP_SET_STATUS64 = 0x4C04
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_AUTOCLEAR = 4
LO_NAME_SIZE = 64

# struct loop_info64, and struct loop_config around it.
_INFO = "=5Q4I64s64s32s2Q"
_CONFIG = "=II" + _INFO[1:] + "8Q"

_ATTEMPTS = 32

_SYS_BLOCK = "/sys/block"


def _info(path):
    name = os.fsencode(path)[:LO_NAME_SIZE - 1]
    return (0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR, name, b"", b"", 0, 0)


def _attach(dev_fd, file_fd, path):
    config = struct.pack(_CONFIG, file_fd, 0, *_info(path), *([0] * 8))
    try:
        fcntl.ioctl(dev_fd, LOOP_CONFIGURE, config)
        return
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTTY):
            raise
    fcntl.ioctl(dev_fd, LOOP_SET_FD, file_fd)
    try:
        fcntl.ioctl(dev_fd, LOOP_SET_STATUS64, struct.pack(_INFO,
                                                           *_info(path)))
    except OSError:
        fcntl.ioctl(dev_fd, 0x4C01)     # LOOP_CLR_FD
        raise


def mount(image, target, fstype, flags=0, data=None):
    """Mount the filesystem in file ``image`` on ``target``; return the
    loop device's path."""
    file_fd = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(_ATTEMPTS):
                number = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                device = "/dev/loop%d" % number
                dev_fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
                try:
                    try:
                        _attach(dev_fd, file_fd, image)
                    except OSError as e:
                        if e.errno == errno.EBUSY:
                            continue    # taken meanwhile: ask again
                        raise
                    mounts.mount(device, target, fstype, flags, data)
                    return device
                finally:
                    # With autoclear, our close frees the device unless
                    # the mount holds it.
                    os.close(dev_fd)
            raise OSError(errno.EBUSY, "no free loop device after %d "
                          "attempts" % _ATTEMPTS)
        finally:
            os.close(ctl)
    finally:
        os.close(file_fd)


def backing_file(device):
    """The file loop ``device`` is bound to, or None, by the kernel's own
    record (``/sys/block/loopN/loop/backing_file``, what ``losetup``
    shows): a device a mount in any namespace holds counts.  A file
    removed since it was bound ends in " (deleted)"."""
    try:
        with open(os.path.join(_SYS_BLOCK, os.path.basename(device), "loop",
                               "backing_file")) as f:
            return f.read().rstrip("\n")
    except OSError:
        return None         # no such device, or not bound to a file


def backing_files():
    """``{"/dev/loopN": backing file}`` of every bound loop device."""
    try:
        names = os.listdir(_SYS_BLOCK)
    except FileNotFoundError:
        return {}
    found = {}
    for name in names:
        if name.startswith("loop"):
            backing = backing_file(name)
            if backing is not None:
                found["/dev/" + name] = backing
    return found


def devices_of(image):
    """The loop devices bound to file ``image``."""
    want = os.path.realpath(image)
    return sorted(dev for dev, backing in backing_files().items()
                  if backing == want)

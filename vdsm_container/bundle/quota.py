"""The size limit of a container's writable layer, enforced by the kernel.

The overlay's ``upper`` and ``work`` directories live on an ext4
filesystem of their own: a sparse image file in the container's storage
directory, loop-mounted at ``layer/``.  A write past the limit fails with
ENOSPC inside the container, and ``df /`` there shows the limit (overlayfs
reports its upper filesystem), with no polling and whatever the storage
filesystem is.  Project quota (XFS, ext4 ``prjquota``) would need a
storage filesystem made and mounted for it, which oVirt hosts' /var
usually is not; a loop device works on any of them.

The image is made fresh at every start and removed at teardown (a reset
mounts it again: ``remount``); while the container runs it is mounted in
the container's mount namespace only (``Bundle.release_host_mounts``).  A
container VM starts from its image each run, so the layer needs no journal
(a crash never needs it back) and mkfs writes only the superblock and group
descriptors (``lazy_itable_init``; the file is sparse, so unwritten inode
tables read as zeros and ``noinit_itable`` skips the kernel's background
zeroing).  It is mounted ``discard``: what the container deletes is given
back to the storage filesystem as holes.  Its cost is measured in ``make
bench``.

Images are sparse: the limits of all containers may add up to more than the
storage filesystem holds (as thin provisioning does).  A ``containerDiskSize``
the admin set that is bigger than the whole filesystem is refused; the host's
default never is: it shrinks to the filesystem's size (``default_mib``), so a
host with a small /var runs containers with default settings.  A size of 0
turns the limit off (plain directories on the storage filesystem, as before).
"""

from __future__ import annotations

import os
import subprocess
import time

from vdsm_container import errors
from vdsm_container.linux import loop
from vdsm_container.linux import mounts

IMAGE = "layer.img"
MOUNT_POINT = "layer"

_MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-O",
         "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard"]
_MOUNT_OPTIONS = "discard,noinit_itable"

# How long a reset waits for the last run's layer to be let go.
RELEASE_WAIT = 10


def _run(argv, what, field):
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise errors.CannotCreateVM("%s: %s" % (what, e), field=field) \
            from None
    if proc.returncode != 0:
        raise errors.CannotCreateVM("%s: %s" % (
            what, (proc.stderr or proc.stdout).strip() or
            "exit status %d" % proc.returncode), field=field)


def filesystem_mib(path):
    """The size of the filesystem holding ``path`` (MiB): the most a layer
    image on it could ever be given.  ``path`` need not exist yet (the
    storage directory before the first container): its nearest existing
    parent tells."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize // (1024 * 1024)


def default_mib(storage_dir, configured_mib):
    """The writable layer's size for a VM that sets no containerDiskSize:
    the host's configured default, or the whole storage filesystem where
    that is smaller.  The admin never asked for the default, so it must
    not be the reason a VM is refused (a limit as large as the filesystem
    still stops a container filling it past what it holds).  0 stays 0
    (no limit)."""
    if not configured_mib:
        return 0
    return min(configured_mib, filesystem_mib(storage_dir))


def check_fits(storage_dir, size_mib, field):
    """InvalidParameter when the limit is larger than the whole storage
    filesystem: such a limit would be none."""
    total_mib = filesystem_mib(storage_dir)
    if size_mib > total_mib:
        raise errors.invalid(field, "%d MiB" % size_mib,
                             "larger than the storage filesystem of %s "
                             "(%d MiB)" % (storage_dir, total_mib))


def make(storage_dir, size_mib, field="containerDiskSize"):
    """Make and mount the writable layer's filesystem of ``size_mib`` MiB
    under ``storage_dir``; return where it is mounted.

    With ``size_mib`` 0, a plain directory.  Teardown is the bundle's:
    unmounting ``layer/`` frees the loop device (``linux.loop`` sets
    autoclear) and removing the directory removes the image.
    """
    target = os.path.join(storage_dir, MOUNT_POINT)
    os.makedirs(target, mode=0o700, exist_ok=True)
    if not size_mib:
        return target
    check_fits(storage_dir, size_mib, field)
    image = os.path.join(storage_dir, IMAGE)
    with open(image, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.truncate(size_mib * 1024 * 1024)
    _run(_MKFS + [image], "cannot make the writable layer's filesystem",
         field)
    _mount(image, target, field)
    # ext4's root directory is 0755 root; lost+found is of no use here.
    os.rmdir(os.path.join(target, "lost+found"))
    return target


def remount(storage_dir, field="containerDiskSize", wait=RELEASE_WAIT):
    """Mount the writable layer ``make`` made again, as it was left (a
    reset restarts the container on the same layer).  A plain-directory
    layer needs nothing.

    Once a container runs, its layer is mounted only in the container's
    own mount namespace (``Bundle.release_host_mounts``), which the kernel
    removes as the container's last process exits, freeing the loop
    device.  Until it has, the filesystem is still mounted there: mounting
    the image a second time, through another loop device, would have two
    ext4 instances write one image.  So this waits up to ``wait`` seconds
    for every loop device on the image to go, and refuses if one stays.
    """
    target = os.path.join(storage_dir, MOUNT_POINT)
    image = os.path.join(storage_dir, IMAGE)
    if not os.path.exists(image):
        return target
    deadline = time.monotonic() + wait
    while True:
        devices = loop.devices_of(image)
        if not devices or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if devices:
        raise errors.CannotCreateVM(
            "the writable layer %s is still in use through %s (a process "
            "of the last run still holds the container's mounts)"
            % (image, ", ".join(devices)), field=field)
    _mount(image, target, field)
    return target


def _mount(image, target, field):
    try:
        loop.mount(image, target, "ext4", mounts.MS_NODEV | mounts.MS_NOSUID,
                   _MOUNT_OPTIONS)
    except OSError as e:
        raise errors.CannotCreateVM("cannot mount the writable layer's "
                                    "filesystem: %s" % e, field=field) \
            from None

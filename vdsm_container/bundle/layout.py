"""A container's files on the host: its OCI bundle and its writable layer.

Every file one container owns lives below two directories, so that teardown
is "unmount what is mounted there, remove both":

- ``<run_dir>/vms/<vmId>/`` (tmpfs): state.json (``records.py``), and
  ``bundle/`` with config.json, the runtime's pid file, conmon's pid and exit
  files and FIFOs;
- ``<storage_dir>/vms/<vmId>/`` (disk): the writable layer's filesystem
  (``layer.img``, mounted at ``layer/``: ``bundle.quota``) holding the
  overlayfs ``upper`` and ``work`` directories, the ``rootfs`` mount point,
  and ``container.log``.

The cached image rootfs is the overlay's read-only lower layer, so the
container's writes never reach the cache.  The overlay and the layer's
filesystem are mounted on the host while the runtime creates the
container, then only in the container's own mount namespace
(``release_host_mounts``); teardown's unmount is for a start that failed
before that.

The image decides what the rootfs holds, symlinks included, and the
runtime writes into it before the container's root is pivoted: runc 1.1
creates /dev's nodes and symlinks with plain path joins, so an image whose
``dev`` is a symlink to a host directory (absolute, or ``../../..`` from
the rootfs) would have runc write on the host.  ``confine`` therefore makes
``dev``, ``proc`` and ``sys`` real directories of the container's own layer
(replacing whatever the image put there, as crun and podman do), and
``resolve`` turns every volume target into the path it means inside the
rootfs, with no symlink left for the runtime to follow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.bundle import quota
from vdsm_container.linux import mounts

log = logging.getLogger("vdsm_container.bundle")

# What the runtime mounts and writes into before pivot_root.
_RUNTIME_DIRS = ("dev", "proc", "sys")


def _check_traversable(path):
    """The user namespace's root is no one on the host: it must be able to
    walk down to the rootfs (runc mounts it from inside the namespace)."""
    path = os.path.realpath(path)
    while path != "/":
        if not os.stat(path).st_mode & 0o001:
            raise errors.CannotCreateVM(
                "%s is not traversable by a user-namespace container "
                "(chmod o+x it)" % path)
        path = os.path.dirname(path)


class Bundle:

    def __init__(self, paths, vm_id):
        self.vm_id = vm_id
        self.run_dir = paths.vm_run_dir(vm_id)
        self.storage_dir = paths.vm_storage_dir(vm_id)
        self.dir = os.path.join(self.run_dir, "bundle")
        self.config_path = os.path.join(self.dir, "config.json")
        self.pid_file = os.path.join(self.dir, "container.pid")
        self.conmon_pid_file = os.path.join(self.dir, "conmon.pid")
        self.exit_dir = os.path.join(self.dir, "exits")
        self.socket_dir = os.path.join(self.dir, "sockets")
        self.rootfs = os.path.join(self.storage_dir, "rootfs")
        self.layer = os.path.join(self.storage_dir, quota.MOUNT_POINT)
        self.upper = os.path.join(self.layer, "upper")
        self.work = os.path.join(self.layer, "work")
        self.log_path = os.path.join(self.storage_dir, "container.log")

    def create_dirs(self, owner=None, size_mib=0):
        """Make the directories; ``owner`` is the container root's host uid
        (and gid) when it runs in a user namespace; ``size_mib`` limits the
        writable layer (0: no limit)."""
        for d in (self.dir, self.exit_dir, self.socket_dir, self.rootfs):
            os.makedirs(d, mode=0o700, exist_ok=True)
        quota.make(self.storage_dir, size_mib)
        for d in (self.upper, self.work):
            os.makedirs(d, mode=0o700, exist_ok=True)
        if owner is not None:
            for d in (self.rootfs, self.upper, self.work):
                os.chown(d, owner, owner)
            os.chmod(self.layer, 0o711)
            _check_traversable(self.storage_dir)
        # The rootfs mount point must be traversable by the container's
        # user, which need not be root.
        os.chmod(self.storage_dir, 0o711)
        os.chmod(self.rootfs, 0o755)

    def mount_rootfs(self, lower):
        """Mount the writable overlay of image rootfs ``lower``, then make
        the paths the runtime writes to before pivot_root real directories.

        The overlay's root directory takes its mode and owner from the
        upper directory: it gets the image root's, so that a container
        whose image ``User`` is not root can walk its own /.
        """
        st = os.stat(lower)
        os.chown(self.upper, st.st_uid, st.st_gid)
        os.chmod(self.upper, stat.S_IMODE(st.st_mode))
        mounts.overlay(lower, self.upper, self.work, self.rootfs)
        self.confine(st.st_uid, st.st_gid)

    def remount_rootfs(self, lower):
        """Mount the writable layer and the overlay again as the last run
        left them (a reset: ``release_host_mounts`` took them out of the
        host's mount table while it ran)."""
        quota.remount(self.storage_dir)
        mounts.overlay(lower, self.upper, self.work, self.rootfs)

    def release_host_mounts(self):
        """Take the rootfs overlay and the writable layer out of the host's
        mount table, once the runtime has created the container.

        The runtime gave the container a mount namespace of its own, which
        holds its own mount of the overlay (its ``/``), and the overlay
        holds the writable layer: both live on, there only, until the
        container's last process exits; then the kernel unmounts them and
        frees the loop device.  Left mounted in the host's namespace, two
        mounts per container make every later start slower (runc reads
        /proc/self/mountinfo four times per start and each new mount
        namespace copies the host's table: ``bench/start_growth.py``), and
        they would need unmounting after the container is gone.

        Volumes stay mounted on the host, as before: few containers have
        any, and destroy unmounts them itself before vdsm tears down the
        VM's disks.  A failure here costs only the speed: it is logged,
        never raised (the container runs), and teardown unmounts what is
        left.
        """
        for point in (self.rootfs, self.layer):
            try:
                mounts.umount(point)
            except OSError as e:
                log.warning("Container %s: %s stays mounted on the host: "
                            "%s", self.vm_id, point, e)

    def confine(self, uid=0, gid=0):
        """``dev``, ``proc`` and ``sys`` of the mounted rootfs become real
        directories; a symlink or file the image put there is replaced (in
        the container's writable layer, never in the cache)."""
        for name in _RUNTIME_DIRS:
            path = os.path.join(self.rootfs, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                continue
            if st is not None:
                log.warning("Container %s: the image's /%s is %s; replaced "
                            "by an empty directory", self.vm_id, name,
                            "a symlink to %r" % os.readlink(path)
                            if stat.S_ISLNK(st.st_mode) else "not a "
                            "directory")
                os.unlink(path)
            os.mkdir(path, 0o755)
            os.chown(path, uid, gid)

    def resolve(self, path):
        """The container path ``path`` means, following the image's
        symlinks the way the container will see them (an absolute link is
        relative to the rootfs, ``..`` stops at its root): a path with no
        symlink in it, inside the rootfs.  Raises InvalidParameter naming
        the path if it can't be resolved or is not a directory."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        done = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            host = os.path.join(self.rootfs, *done, part)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                done.append(part)
                done.extend(p for p in parts if p not in ("..",))
                if ".." in parts:
                    raise errors.invalid("containerVolumes", path,
                                         "has '..' below a missing "
                                         "directory") from None
                break
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise errors.invalid("containerVolumes", path,
                                         "too many symlinks in the image")
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/")
                         if p not in ("", ".")] + parts
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise errors.invalid("containerVolumes", path,
                                     "/%s is not a directory in the image"
                                     % "/".join(done + [part]))
            done.append(part)
        resolved = "/" + "/".join(done)
        if resolved == "/" or done[0] in _RUNTIME_DIRS:
            raise errors.invalid("containerVolumes", path,
                                 "resolves to %s in the image, which the "
                                 "runtime owns" % resolved)
        if resolved != path.rstrip("/"):
            log.info("Container %s: volume target %s is %s in the image",
                     self.vm_id, path, resolved)
        return resolved

    def write_config(self, config):
        files.write_atomically(self.config_path,
                               json.dumps(config, indent=1))

    def pid(self):
        """The container's init pid the runtime recorded, or None."""
        try:
            return int(files.read_text(self.pid_file).strip() or 0) or None
        except (OSError, ValueError):
            return None

    def clear_runtime_files(self):
        """Forget the last run's pid and exit files (before a restart)."""
        for path in (self.pid_file, self.conmon_pid_file,
                     os.path.join(self.exit_dir, self.vm_id)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def teardown(self):
        """Unmount and remove everything; safe to call again, and at any
        point of a failed start."""
        for point in mounts.mounted_under(self.storage_dir):
            mounts.umount(point)
        left = mounts.mounted_under(self.storage_dir)
        if left:
            # Never remove files through a mount: it could be a volume.
            raise OSError("still mounted, not removed: %s" % left)
        shutil.rmtree(self.storage_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

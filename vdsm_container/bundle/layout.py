"""A container's files on the host: its OCI bundle and its writable layer.

Every file one container owns lives below two directories, so that teardown
is "unmount what is mounted there, remove both":

- ``<run_dir>/vms/<vmId>/`` (tmpfs): state.json (``state.py``), and
  ``bundle/`` with config.json, the runtime's pid file, conmon's pid and exit
  files and FIFOs;
- ``<storage_dir>/vms/<vmId>/`` (disk): the overlayfs ``upper`` and ``work``
  directories, the ``rootfs`` mount point, and ``container.log``.

The cached image rootfs is the overlay's read-only lower layer, so the
container's writes never reach the cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

from vdsm_container import errors
from vdsm_container import files
from vdsm_container.host import mounts

log = logging.getLogger("vdsm_container.bundle")


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
        self.upper = os.path.join(self.storage_dir, "upper")
        self.work = os.path.join(self.storage_dir, "work")
        self.log_path = os.path.join(self.storage_dir, "container.log")

    def create_dirs(self, owner=None):
        """Make the directories; ``owner`` is the container root's host uid
        (and gid) when it runs in a user namespace."""
        for d in (self.dir, self.exit_dir, self.socket_dir, self.rootfs,
                  self.upper, self.work):
            os.makedirs(d, mode=0o700, exist_ok=True)
        if owner is not None:
            for d in (self.rootfs, self.upper, self.work):
                os.chown(d, owner, owner)
            _check_traversable(self.storage_dir)
        # The rootfs mount point must be traversable by the container's
        # user, which need not be root.
        os.chmod(self.storage_dir, 0o711)
        os.chmod(self.rootfs, 0o755)

    def mount_rootfs(self, lower):
        """Mount the writable overlay of image rootfs ``lower``."""
        mounts.overlay(lower, self.upper, self.work, self.rootfs)

    def write_config(self, config):
        files.write_atomically(self.config_path,
                               json.dumps(config, indent=1))

    def pid(self):
        """The container's init pid the runtime recorded, or None."""
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip() or 0) or None
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

"""Per-VM state on disk: enough to rebuild a Container in a new process.

vdsm rebuilds its VMs after a restart from libvirt (lib/vdsm/virt/recovery.py
``all_domains_running``, ``lookup_external_vms``); a container has no libvirt
domain, so this file plays that part.  Each VM has a directory
``<run_dir>/vms/<vmId>/``; its creation with ``mkdir`` is the atomic claim of
the vmId (two creates of one vmId: the second gets VMExists), an ``flock`` on
it serialises the verbs acting on that VM across processes, and
``state.json`` in it is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil

from vdsm_container import errors

log = logging.getLogger("vdsm_container.state")

STATE_FILE = "state.json"


class StateStore:

    def __init__(self, paths):
        self._paths = paths
        self._root = os.path.join(paths.run_dir, "vms")

    def claim(self, vm_id):
        """Create the VM's directory; VMExists if another create has it."""
        os.makedirs(self._root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self._paths.vm_run_dir(vm_id), 0o700)
        except FileExistsError:
            raise errors.error(errors.VMExists, "VM %s exists" % vm_id,
                               vmId=vm_id)

    @contextlib.contextmanager
    def lock(self, vm_id):
        """Hold the VM's lock; NoSuchVM if the VM is gone (or going)."""
        path = self._paths.vm_run_dir(vm_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise errors.error(errors.NoSuchVM, "no container %s" % vm_id,
                               vmId=vm_id)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Removed while we waited for the lock: it is gone.
            if not os.path.exists(path):
                raise errors.error(errors.NoSuchVM, "no container %s" % vm_id,
                                   vmId=vm_id)
            yield
        finally:
            os.close(fd)

    def write(self, vm_id, state):
        path = os.path.join(self._paths.vm_run_dir(vm_id), STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    def read(self, vm_id):
        """The VM's state dict, or None when it has none (yet, or any more)."""
        path = os.path.join(self._paths.vm_run_dir(vm_id), STATE_FILE)
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError as e:
            log.error("Corrupt state file %s: %s", path, e)
            return None

    def vm_ids(self):
        try:
            return sorted(os.listdir(self._root))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return []
            raise

    def release(self, vm_id):
        """Remove the VM's directory: the last step of destroy."""
        shutil.rmtree(self._paths.vm_run_dir(vm_id), ignore_errors=True)

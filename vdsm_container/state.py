"""Per-VM state on disk: enough to rebuild a Container in a new process.

vdsm rebuilds its VMs after a restart from libvirt (lib/vdsm/virt/recovery.py
``all_domains_running``, ``lookup_external_vms``); a container has no libvirt
domain, so this file plays that part.  Each VM has a directory
``<run_dir>/vms/<vmId>/``; its creation with ``mkdir`` is the atomic claim of
the vmId (two creates of one vmId: the second gets VMExists), an ``flock`` on
it serialises the verbs acting on that VM across processes, and
``state.json`` in it is replaced atomically (write, fsync, rename).

Only root reads and writes these files (0700 directories under root's run
directory): vdsmd, which runs as user vdsm, reaches them through its
backend (``vdsm_container.vdsm.supervdsm``).  Each file carries a format
``version``; one this code can't read (an older format after an upgrade, a
truncated write) is reported as ``Unreadable``, never as an exception that
would stop vdsm's recovery.
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
from vdsm_container.linux import files

log = logging.getLogger("vdsm_container.state")

STATE_FILE = "state.json"
# The format of state.json; bump it when its keys change meaning.
VERSION = 1


class Busy(Exception):
    """The VM's lock is held (a verb or a start is under way)."""


class Unreadable(Exception):
    """The VM's state file exists but can't be used; says why."""


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
            raise errors.VMExists("VM %s exists" % vm_id,
                                  vmId=vm_id) from None

    @contextlib.contextmanager
    def lock(self, vm_id, wait=True):
        """Hold the VM's lock; NoSuchVM if the VM is gone (or going).

        The lock is on the VM's directory.  Holding it proves that the
        directory is the live one: a destroy may have removed it while we
        waited, and a create of the same vmId made a new one, whose lock
        is another.  ``wait=False`` raises ``Busy`` instead of waiting.
        """
        path = self._paths.vm_run_dir(vm_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise errors.NoSuchVM("no container %s" % vm_id,
                                  vmId=vm_id) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else
                                                 fcntl.LOCK_NB))
            except BlockingIOError:
                raise Busy(vm_id) from None
            try:
                live = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                live = False
            if not live:
                raise errors.NoSuchVM("no container %s" % vm_id,
                                      vmId=vm_id)
            yield
        finally:
            os.close(fd)

    def path(self, vm_id):
        """The VM's state file."""
        return os.path.join(self._paths.vm_run_dir(vm_id), STATE_FILE)

    def write(self, vm_id, state):
        path = self.path(vm_id)
        files.write_atomically(path, json.dumps(
            dict(state, version=VERSION), indent=1, sort_keys=True),
            fsync=True)

    def read(self, vm_id):
        """The VM's state dict, or None when it has none (yet, or any more).

        Raises ``Unreadable`` for a file that is not this code's format.
        """
        path = self.path(vm_id)
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError) as e:
            raise Unreadable("%s is not JSON: %s" % (path, e)) from None
        if not isinstance(state, dict) or state.get("version") != VERSION:
            found = state.get("version") if isinstance(state, dict) else None
            raise Unreadable("%s has format version %r, this vdsm-container "
                             "reads %d" % (path, found, VERSION))
        return state

    def vm_ids(self):
        """The vmIds that have a directory (claimed, maybe not written)."""
        try:
            return sorted(os.listdir(self._root))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return []
            raise

    def release(self, vm_id):
        """Remove the VM's directory: the last step of destroy."""
        shutil.rmtree(self._paths.vm_run_dir(vm_id), ignore_errors=True)

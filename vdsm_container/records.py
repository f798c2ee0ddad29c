"""Per-VM records on disk: enough to rebuild a Container in a new process.

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
would stop vdsm's recovery.  A caller of the backend may change only the
VM-state fields of a record (``CALLER_FIELDS``).

The root side's view of the records (``Records``) keeps what the last look
found.  A sampler looks at every VM every 2 s.  A record changes only when
it is rewritten (atomically: a new inode), so a ``stat`` tells whether the
parsed record in hand still holds, instead of a JSON parse per VM per look;
and a container that was running, whose record is the same file and whose
runtime's watch does not tell it ended, is still as the last look found it:
two ``stat`` calls where conmon writes an exit file (runc, crun), a
``stat`` and a read of /proc/<pid>/stat where the runtime writes none (rkt:
``runtimes.watch``); no lock, no runtime command.  A verb on a VM forgets
what was found for it.

This module sits below both the core (``vmstate``, ``container``) and the
root side (``host/``), which both use it.
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
from vdsm_container.bundle import layout
from vdsm_container.linux import files
from vdsm_container.spec.model import ContainerSpec

log = logging.getLogger("vdsm_container.records")

STATE_FILE = "state.json"
# The format of state.json; bump it when its keys change meaning.
VERSION = 1

# What the caller (Container) may write into a VM's record.
CALLER_FIELDS = frozenset((
    "status", "statusTime", "exitCode", "exitReason", "exitMessage",
    "shutdownRequested", "forcedShutdown", "pid", "startTime",
))


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


class Seen:
    """What the last look at a VM found, and what it needs for the next."""

    __slots__ = ("key", "state", "spec", "bundle", "watch")

    def __init__(self, key, state, spec, bundle):
        self.key = key
        self.state = state
        self.spec = spec
        self.bundle = bundle
        # Set when the look found the container running: its driver's
        # cheap tell that it ended (``runtimes.watch``).
        self.watch = None


class Records:
    """Parsed VM records, kept while their files are unchanged."""

    def __init__(self, paths, store):
        self.paths = paths
        self.store = store
        self._seen = {}     # vmId -> Seen

    def read(self, vm_id):
        """(state, spec) of a VM, parsed now; NoSuchVM, or Unreadable."""
        state = self.store.read(vm_id)
        if state is None:
            raise errors.NoSuchVM("no container %s" % vm_id, vmId=vm_id)
        try:
            spec = ContainerSpec.from_dict(state["spec"])
        except (KeyError, TypeError, ValueError) as e:
            raise Unreadable("the recorded spec is unusable: %r"
                             % e) from None
        return state, spec

    def _key(self, vm_id):
        """state.json's identity (inode, mtime, size); NoSuchVM."""
        try:
            st = os.stat(self.store.path(vm_id))
        except FileNotFoundError:
            self._seen.pop(vm_id, None)
            raise errors.NoSuchVM("no container %s" % vm_id,
                                  vmId=vm_id) from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def seen(self, vm_id):
        """The VM's ``Seen``, parsed again only if state.json changed."""
        key = self._key(vm_id)
        seen = self._seen.get(vm_id)
        if seen is not None and seen.key == key:
            return seen
        state, spec = self.read(vm_id)
        bundle = seen.bundle if seen else layout.Bundle(self.paths, vm_id)
        seen = self._seen[vm_id] = Seen(key, state, spec, bundle)
        return seen

    def unchanged(self, vm_id):
        """True when a look would find what the last one found: the
        container was running, its record is the same file, and its
        driver's watch does not tell that it ended (conmon's exit file;
        rkt's pod process).  A sampling round (every 15 s) looks at
        everything, so a container whose conmon was killed too is seen
        then."""
        seen = self._seen.get(vm_id)
        if seen is None or seen.watch is None:
            return False
        try:
            if self._key(vm_id) != seen.key:
                return False
        except errors.NoSuchVM:
            return False
        return not seen.watch.ended()

    def forget(self, vm_id):
        """What was found for ``vm_id`` no longer holds (a verb acts)."""
        self._seen.pop(vm_id, None)

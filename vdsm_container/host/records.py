"""The root side's view of VM records, and what the last look found.

A sampler looks at every VM every 2 s.  A record changes only when it is
rewritten (atomically: a new inode), so a ``stat`` tells whether the parsed
record in hand still holds, instead of a JSON parse per VM per look; and a
container that was running, whose record is the same file and whose
runtime's watch does not tell it ended, is still as the last look found it:
two ``stat`` calls where conmon writes an exit file (runc, crun), a
``stat`` and a read of /proc/<pid>/stat where the runtime writes none (rkt:
``runtimes.watch``); no lock, no runtime command.  A verb on a VM forgets
what was found for it.
"""

from __future__ import annotations

import os

from vdsm_container import errors
from vdsm_container import state as statemod
from vdsm_container.bundle import layout
from vdsm_container.spec.model import ContainerSpec


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
            raise statemod.Unreadable("the recorded spec is unusable: %r"
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

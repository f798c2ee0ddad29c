"""Which listed parts are orphans, and which of those still run.

The records are read after the parts are listed (``scan``): a create
claims its run directory before it makes anything, so a part listed before
its create claimed is seen with the claim, never taken for an orphan.  A
network namespace names only the start of its vmId, so it is matched to an
orphan's vmId by that start, and is no orphan when a record names it.
"""

from __future__ import annotations

import os

from vdsm_container import runtimes
from vdsm_container.host.orphans import scan
from vdsm_container.host.orphans.naming import (
    KINDS, known_netns, known_vm_ids)
from vdsm_container.stats import cgroups

def find(paths, vm_id=None, claimed=False):
    """The parts of this tree that belong to no recorded VM (or, with
    ``vm_id``, those of that vmId when it has no record; ``claimed``: the
    caller holds its claim, which is no record): a list of ``{"kind",
    "vmId", "what", ...}``, in removal order."""
    parts = scan.parts(paths)
    # Read the records after listing the parts: see the module's doc.
    known = known_vm_ids(paths)
    if claimed:
        known.discard(vm_id)
    netns_known = known_netns(paths, known)
    orphans = []
    orphan_ids = {p["vmId"] for p in parts
                  if p["vmId"] and p["vmId"] not in known}
    for part in parts:
        if part["kind"] == "netns":
            if part["what"] in netns_known:
                continue
            owners = [i for i in orphan_ids
                      if i.startswith(part["vmIdStart"])]
            part["vmId"] = owners[0] if len(owners) == 1 else None
            if vm_id is not None and part["vmId"] != vm_id:
                continue
        elif part["vmId"] in known:
            continue
        elif vm_id is not None and part["vmId"] != vm_id:
            continue
        orphans.append(part)
    orphans.sort(key=lambda p: KINDS.index(p["kind"]))
    return orphans


def live(parts):
    """The parts that still run the container: a container the runtime
    does not report stopped, a cgroup with processes.  The rest (its
    helpers conmon and udhcpc, mounts, loop devices, namespaces, files) is
    what a run that ended left."""
    return [p for p in parts
            if (p["kind"] == "container" and p.get("status") != "stopped")
            or (p["kind"] == "pod" and p.get("status") == "running")
            or (p["kind"] == "cgroup" and cgroups.members(p.get("dirs", ())))]


def by_vm(parts):
    """``{vmId: [kinds]}`` of ``parts`` (None for a netns with no known
    owner)."""
    result = {}
    for p in parts:
        result.setdefault(p["vmId"], set()).add(p["kind"])
    return {k: sorted(v, key=KINDS.index) for k, v in result.items()}


def leftovers_possible(paths, vm_id):
    """Cheap: could ``vm_id`` have parts left at all?  Each container has
    a storage directory and a runtime entry, which go last and first."""
    return os.path.exists(paths.vm_storage_dir(vm_id)) or any(
        os.path.exists(os.path.join(paths.runtime_root(n), vm_id))
        for n in runtimes.names()) or runtimes.runsc.recorded(
            paths.runtime_root("runsc"), vm_id)

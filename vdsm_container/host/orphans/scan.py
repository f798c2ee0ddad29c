"""Listing the parts of each kind that this tree's containers can leave.

Each scanner returns ``{"kind", "vmId", "what", ...}`` dicts for every part
of its kind below this tree's roots, recorded VM or not: which of them are
orphans is decided after (``classify``), once they are all listed.  A part
carries what its removal needs (a runtime's name, a pid, cgroup dirs, a
loop device's backing file).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from vdsm_container.linux import pidinfo
from vdsm_container import runtimes
from vdsm_container.runtimes import proc
from vdsm_container.stats import cgroups as hostcgroups
from vdsm_container.runtimes import rktgc
from vdsm_container.linux import loop
from vdsm_container.linux import mounts as hostmounts
from vdsm_container.host import network
from vdsm_container.host.orphans.naming import (
    SCOPE, UUID_IN_PATH, is_uuid, listdir, storage_vm_id)


def runtime_args(paths, name):
    """The runtime's command with this tree's ``--root``."""
    return runtimes.driver(name, paths)._args()


def containers(paths):
    found = []
    for name in runtimes.names():
        root = paths.runtime_root(name)
        record_ids = getattr(runtimes.driver_class(name), "record_ids",
                             None)
        if record_ids is None:
            recorded = {e: os.path.join(root, e) for e in listdir(root)
                        if os.path.isdir(os.path.join(root, e))}
        else:
            recorded = record_ids(root)
        for entry, what in sorted(recorded.items()):
            if is_uuid(entry):
                found.append(dict(_runtime_state(paths, name, entry),
                                  kind="container", vmId=entry,
                                  runtime=name, what=what))
    return found


def _runtime_state(paths, name, cid):
    """What the runtime says of container ``cid``: status (runc's words)
    and the VM name from the annotations ``bundle.ocispec`` writes."""
    try:
        out = subprocess.run(runtime_args(paths, name) + ["state", cid],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30)
        state = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {"status": "unknown"}
    return {"status": state.get("status", "unknown"),
            "pid": state.get("pid"),
            "vmName": (state.get("annotations") or {}).get(
                "org.ovirt.vm.name")}


def pods(paths):
    """rkt's pods in this tree's rkt directory, by the vmId the driver
    annotates each with (a pod is named by a UUID of rkt's own)."""
    if not os.path.isdir(os.path.join(paths.runtime_root("rkt"), "pods")):
        return []
    driver = runtimes.driver("rkt", paths)
    try:
        listed = rktgc.pods(driver._global())
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [{"kind": "pod", "vmId": vm_id, "what": "rkt pod %s" % pod,
             "pod": pod, "status": state}
            for pod, state, vm_id in listed if vm_id and is_uuid(vm_id)]


def processes(paths):
    pattern = re.compile(r"(?:%s|%s)/vms/(%s)" % (
        re.escape(paths.run_dir), re.escape(paths.storage_dir),
        UUID_IN_PATH))
    found = []
    for pid, cmd in pidinfo.commands():
        m = pattern.search(cmd)
        if m:
            found.append({"kind": "process", "vmId": m.group(1),
                          "pid": pid, "what": cmd.strip()[:200]})
    return found


def _cgroup_roots():
    base = "/sys/fs/cgroup"
    roots = [base]
    for h in listdir(base):
        path = os.path.join(base, h)
        if os.path.isdir(path) and not os.path.islink(path):
            roots.append(path)
    return roots


def cgroups(paths):
    """Scopes below the cgroup parent, one part for all the hierarchies
    a scope is in (its ``dirs``).  Where systemd is PID 1 the parent slice
    is nested in its prefixes' slices (``stats.cgroups.parent_relpath``),
    and systemd may keep a scope's unit after its cgroup went (a failed
    scope, until reset) or remove the cgroup itself at any moment: the
    part also names the unit (``unit``), found by its slice, so that the
    removal stops and resets it through systemd."""
    found = {}
    systemd = proc.systemd_booted()
    rel = hostcgroups.parent_relpath(paths.cgroup_parent, systemd)
    for root in _cgroup_roots():
        base = os.path.join(root, rel.lstrip("/"))
        for entry in listdir(base):
            m = SCOPE.match(entry)
            if m and is_uuid(m.group(1)):
                _cgroup_part(found, paths, entry, m.group(1))
                found[entry]["dirs"].append(os.path.join(base, entry))
    if systemd:
        for unit in _scope_units(paths.cgroup_parent):
            _cgroup_part(found, paths, unit, SCOPE.match(unit).group(1))
    for part in found.values():
        part["unit"] = part["what"].rsplit("/", 1)[1] if systemd else None
    return list(found.values())


def _cgroup_part(found, paths, entry, vm_id):
    found.setdefault(entry, {
        "kind": "cgroup", "vmId": vm_id, "dirs": [],
        "what": "/%s/%s" % (paths.cgroup_parent.strip("/"), entry)})


def _scope_units(parent):
    """The names of the container and conmon scopes systemd has loaded in
    slice ``parent`` (running, or kept as failed with no cgroup)."""
    try:
        out = proc.run(["systemctl", "list-units", "--all", "--plain",
                        "--no-legend", "--type=scope",
                        "vdsm-container-*.scope"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = [line.split()[0] for line in out.stdout.splitlines()
             if line.split() and SCOPE.match(line.split()[0]) and
             is_uuid(SCOPE.match(line.split()[0]).group(1))]
    if not names:
        return []
    out = proc.run(["systemctl", "show", "--property=Id,Slice"] + names,
                   timeout=30)
    # One block of properties per unit, blank-line separated, in
    # systemd's order of properties (not the order asked).
    units = []
    for block in out.stdout.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines()
                     if "=" in line)
        if props.get("Slice") == parent and props.get("Id"):
            units.append(props["Id"])
    return units


def mounts(paths):
    found = []
    for point in hostmounts.mounted_under(os.path.join(paths.storage_dir,
                                                   "vms")):
        vm_id = storage_vm_id(paths, point)
        if vm_id:
            found.append({"kind": "mount", "vmId": vm_id, "what": point})
    return found


def loops(paths):
    found = []
    for dev, backing in sorted(loop.backing_files().items()):
        if backing.endswith(" (deleted)"):
            backing = backing[:-len(" (deleted)")]
        vm_id = storage_vm_id(paths, backing)
        if vm_id:
            found.append({"kind": "loop", "vmId": vm_id, "what": dev,
                          "file": backing})
    return found


def netns(paths):
    prefix = network.netns_prefix(paths)
    found = []
    for name in listdir(network.NETNS_DIR):
        if name.startswith(prefix):
            # <prefix><first 8 of the vmId>-<random>: the vmId is not
            # wholly in the name; matched to an orphan's by its start.
            found.append({"kind": "netns", "vmId": None, "what": name,
                          "vmIdStart": name[len(prefix):].split("-")[0]})
    return found


def storage(paths):
    base = os.path.join(paths.storage_dir, "vms")
    return [{"kind": "storage", "vmId": entry,
             "what": os.path.join(base, entry)}
            for entry in listdir(base) if is_uuid(entry)]


def parts(paths):
    """Every part of every kind below this tree's roots, in removal
    order of kinds (``naming.KINDS``)."""
    return (containers(paths) + pods(paths) + processes(paths) +
            cgroups(paths) +
            netns(paths) + mounts(paths) + loops(paths) + storage(paths))

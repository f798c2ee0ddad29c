"""What containers left on the host with no record: found by name, reaped.

A VM's record is its run directory (``state.py``).  When it is gone while
the container's parts live on (``rm -rf`` of it, a crash of the tooling), or
when the host rebooted (the run directory is tmpfs; the writable layers on
disk stay), the parts are still findable, because every one is named after
the vmId below this tree's own roots:

- runtime containers: ``<run_dir>/runtime/<runtime>/<vmId>`` (runc's and
  crun's ``--root``);
- processes whose command line names ``<run_dir>/vms/<vmId>`` or
  ``<storage_dir>/vms/<vmId>`` (conmon, udhcpc);
- cgroups ``<cgroup_parent>/vdsm-container[-conmon]-<vmId>.scope``;
- mounts below ``<storage_dir>/vms/<vmId>/`` (overlay, the writable
  layer's filesystem, volumes) and loop devices backed by files there;
- network namespaces named ``host.network.netns_prefix(paths)`` + ... that
  no record's network.json names (their veths go with them);
- storage directories ``<storage_dir>/vms/<vmId>``.

An orphan is such a part whose vmId has no run directory.  ``find`` lists
the parts first and reads the records after: a create claims its run
directory before it makes anything, so a part of a create under way is
never taken for an orphan.  ``reap`` claims the vmId itself (its run
directory) while it removes the vmId's parts, so no create of that vmId
runs meanwhile.  Nothing outside this tree is looked at: another tree
(another run directory, a test) has other roots and another netns prefix.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

from vdsm_container import errors
from vdsm_container import files
from vdsm_container import runtimes
from vdsm_container.host import mounts
from vdsm_container.host import network
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.host.orphans")

_SCOPE = re.compile(r"^vdsm-container-(?:conmon-)?([0-9a-f-]{36})\.scope$")
_UUID_IN_PATH = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# The kinds, in the order they are removed: processes before their cgroups
# and namespaces, mounts before the directories holding them.
KINDS = ("container", "process", "cgroup", "netns", "mount", "loop",
         "storage")


def _is_uuid(name):
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def known_vm_ids(paths):
    """vmIds with a run directory: recorded, or claimed by a create."""
    return set(_listdir(os.path.join(paths.run_dir, "vms")))


def _known_netns(paths, vm_ids):
    names = set()
    for vm_id in vm_ids:
        try:
            with open(os.path.join(paths.vm_run_dir(vm_id),
                                   network.STATE_FILE)) as f:
                names.add(json.load(f)["netns"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return names


# Finding

def _containers(paths):
    found = []
    for name in runtimes.names():
        root = paths.runtime_root(name)
        for entry in _listdir(root):
            if _is_uuid(entry) and os.path.isdir(os.path.join(root, entry)):
                found.append(dict(_runtime_state(paths, name, entry),
                                  kind="container", vmId=entry,
                                  runtime=name,
                                  what=os.path.join(root, entry)))
    return found


def _runtime_state(paths, name, cid):
    """What the runtime says of container ``cid``: status (runc's words)
    and the VM name from the annotations ``bundle.ocispec`` writes."""
    try:
        out = subprocess.run(_runtime_args(paths, name) + ["state", cid],
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


def _processes(paths):
    pattern = re.compile(r"(?:%s|%s)/vms/(%s)" % (
        re.escape(paths.run_dir), re.escape(paths.storage_dir),
        _UUID_IN_PATH))
    found = []
    for pid in _listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        m = pattern.search(cmd)
        if m and not zombie:
            found.append({"kind": "process", "vmId": m.group(1),
                          "pid": int(pid), "what": cmd.strip()[:200]})
    return found


def _cgroup_roots():
    base = "/sys/fs/cgroup"
    roots = [base]
    for h in _listdir(base):
        path = os.path.join(base, h)
        if os.path.isdir(path) and not os.path.islink(path):
            roots.append(path)
    return roots


def _cgroups(paths):
    found = {}
    parent = paths.cgroup_parent.strip("/")
    for root in _cgroup_roots():
        base = os.path.join(root, parent)
        for entry in _listdir(base):
            m = _SCOPE.match(entry)
            if m and _is_uuid(m.group(1)):
                found.setdefault(entry, {
                    "kind": "cgroup", "vmId": m.group(1),
                    "what": "/%s/%s" % (parent, entry), "dirs": []})
                found[entry]["dirs"].append(os.path.join(base, entry))
    return list(found.values())


def _storage_vm_id(paths, path):
    prefix = os.path.join(os.path.realpath(paths.storage_dir), "vms") + "/"
    if not path.startswith(prefix):
        return None
    vm_id = path[len(prefix):].split("/", 1)[0]
    return vm_id if _is_uuid(vm_id) else None


def _mounts(paths):
    found = []
    for point in mounts.mounted_under(os.path.join(paths.storage_dir,
                                                   "vms")):
        vm_id = _storage_vm_id(paths, point)
        if vm_id:
            found.append({"kind": "mount", "vmId": vm_id, "what": point})
    return found


def _loops(paths):
    out = subprocess.run(["losetup", "--list", "--noheadings", "--output",
                          "NAME,BACK-FILE"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    found = []
    for line in out.splitlines():
        dev, _, backing = line.strip().partition(" ")
        backing = backing.strip()
        if backing.endswith(" (deleted)"):
            backing = backing[:-len(" (deleted)")]
        vm_id = _storage_vm_id(paths, backing)
        if vm_id:
            found.append({"kind": "loop", "vmId": vm_id, "what": dev,
                          "file": backing})
    return found


def _netns(paths):
    prefix = network.netns_prefix(paths)
    found = []
    for name in _listdir(network.NETNS_DIR):
        if name.startswith(prefix):
            # <prefix><first 8 of the vmId>-<random>: the vmId is not
            # wholly in the name; matched to an orphan's by its start.
            found.append({"kind": "netns", "vmId": None, "what": name,
                          "vmIdStart": name[len(prefix):].split("-")[0]})
    return found


def _storage(paths):
    base = os.path.join(paths.storage_dir, "vms")
    return [{"kind": "storage", "vmId": entry,
             "what": os.path.join(base, entry)}
            for entry in _listdir(base) if _is_uuid(entry)]


def find(paths, vm_id=None, claimed=False):
    """The parts of this tree that belong to no recorded VM (or, with
    ``vm_id``, those of that vmId when it has no record; ``claimed``: the
    caller holds its claim, which is no record): a list of ``{"kind",
    "vmId", "what", ...}``, in removal order."""
    parts = (_containers(paths) + _processes(paths) + _cgroups(paths) +
             _netns(paths) + _mounts(paths) + _loops(paths) +
             _storage(paths))
    # Read the records after listing the parts: see the module's doc.
    known = known_vm_ids(paths)
    if claimed:
        known.discard(vm_id)
    known_netns = _known_netns(paths, known)
    orphans = []
    orphan_ids = {p["vmId"] for p in parts
                  if p["vmId"] and p["vmId"] not in known}
    for part in parts:
        if part["kind"] == "netns":
            if part["what"] in known_netns:
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
            or (p["kind"] == "cgroup" and _cgroup_pids(p))]


def by_vm(parts):
    """``{vmId: [kinds]}`` of ``parts`` (None for a netns with no known
    owner)."""
    result = {}
    for p in parts:
        result.setdefault(p["vmId"], set()).add(p["kind"])
    return {k: sorted(v, key=KINDS.index) for k, v in result.items()}


# Reaping

def _runtime_args(paths, name):
    driver = runtimes.driver(name, paths)
    return driver._args()


def _reap_container(paths, part):
    args = _runtime_args(paths, part["runtime"])
    subprocess.run(args + ["delete", "--force", part["vmId"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    shutil.rmtree(part["what"], ignore_errors=True)


def _ended(pid):
    """Gone, or a zombie (which holds nothing; its parent reaps it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _reap_process(paths, part):
    pid = part["pid"]
    if not files.kill_if_ours(pid, part["vmId"], signal.SIGKILL):
        return      # gone (the pid maybe reused)
    # kill(2) returns before the process has ended.
    deadline = time.monotonic() + 10
    while not _ended(pid):
        if time.monotonic() > deadline:
            raise OSError(errno.ETIMEDOUT, "process %d did not end after "
                          "SIGKILL" % pid)
        time.sleep(0.01)


def _cgroup_pids(part):
    return cgroups.members(part.get("dirs", ()))


def _reap_cgroup(paths, part):
    cgroups.empty_and_remove(part["dirs"])


def _reap_netns(paths, part):
    from pyroute2 import netns as pyroute2_netns
    if os.path.exists(os.path.join(network.NETNS_DIR, part["what"])):
        pyroute2_netns.remove(part["what"])


def _reap_mount(paths, part):
    mounts.umount(part["what"])


def _reap_loop(paths, part):
    # Unmounting freed it (autoclear), and it may back another file now.
    name = os.path.basename(part["what"])
    try:
        with open("/sys/block/%s/loop/backing_file" % name) as f:
            backing = f.read().strip()
    except OSError:
        return
    if backing.endswith(" (deleted)"):
        backing = backing[:-len(" (deleted)")]
    if backing != part["file"]:
        return
    subprocess.run(["losetup", "--detach", part["what"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _reap_storage(paths, part):
    left = mounts.mounted_under(part["what"])
    if left:
        # Never remove files through a mount: it could be a volume.
        raise OSError(errno.EBUSY, "still mounted, not removed: %s" % left)
    shutil.rmtree(part["what"], ignore_errors=True)


_REAPERS = {"container": _reap_container, "process": _reap_process,
            "cgroup": _reap_cgroup, "netns": _reap_netns,
            "mount": _reap_mount, "loop": _reap_loop,
            "storage": _reap_storage}


def leftovers_possible(paths, vm_id):
    """Cheap: could ``vm_id`` have parts left at all?  Each container has
    a storage directory and a runtime entry, which go last and first."""
    return os.path.exists(paths.vm_storage_dir(vm_id)) or any(
        os.path.exists(os.path.join(paths.runtime_root(n), vm_id))
        for n in runtimes.names())


def reap(paths, store, parts, claim=True):
    """Remove ``parts`` (from ``find``), each vmId's while holding a claim
    on it (``claim=False``: the caller holds it).  Returns ``(removed,
    failed)``: parts, and ``(part, reason)``.  A vmId that got a record
    meanwhile (a create) is left alone."""
    removed, failed = [], []
    groups = {}
    for part in parts:
        groups.setdefault(part["vmId"], []).append(part)
    for vm_id, group in groups.items():
        claimed = False
        if vm_id is not None and claim:
            try:
                store.claim(vm_id)
                claimed = True
            except errors.VMExists:
                log.info("Orphans of %s: it has a record now, left alone",
                         vm_id)
                continue
        try:
            for part in group:
                try:
                    _REAPERS[part["kind"]](paths, part)
                except Exception as e:
                    log.error("Cannot remove %s %s: %s", part["kind"],
                              part["what"], e)
                    failed.append((part, str(e)))
                else:
                    log.info("Removed orphan %s %s", part["kind"],
                             part["what"])
                    removed.append(part)
        finally:
            if claimed:
                store.release(vm_id)
    return removed, failed

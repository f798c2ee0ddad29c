"""What a container VM can leave on the host, and a check that it did not.

A snapshot lists, for one ``Paths`` tree: mounts below it, per-VM files and
directories, runtime state entries, cgroups below the test's cgroup parent
(in every hierarchy), the tree's network namespaces (their names carry a
tag of its run directory) and the veths into them, and live processes that
name a per-VM path on their command line: only what the test's own tree
made, so that other runs on the machine don't count.  Zombies are
ignored: where PID 1 does not reap (as on these CI machines), a dead
conmon stays a zombie, which holds no resource.
"""

import glob
import os
import subprocess
import time

from vdsm_container.linux import pidinfo
from vdsm_container.linux import loop
from vdsm_container.runtimes import proc
from vdsm_container.stats import cgroups

from vdsm_container.host import network


def _mounts(prefix):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(prefix):
                found.append(point)
    return sorted(found)


def _files(root):
    result = []
    for top in ("vms",):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            for n in dirnames + filenames:
                result.append(os.path.join(dirpath, n))
    return sorted(result)


def _parent_dirs(parent):
    """The cgroup parent in each hierarchy (v2: one; v1: one per
    controller, plus the unified side of a hybrid host), where the host
    puts it: systemd nests a slice in its prefixes' slices."""
    rel = cgroups.parent_relpath(parent, proc.systemd_booted()).lstrip("/")
    roots = ["/sys/fs/cgroup"] + glob.glob("/sys/fs/cgroup/*/")
    return [os.path.join(r, rel) for r in roots
            if os.path.isdir(os.path.join(r, rel))]


def _cgroups(parent):
    return sorted(os.path.join(d, n) for d in _parent_dirs(parent)
                  for n in os.listdir(d)
                  if os.path.isdir(os.path.join(d, n)))


def _processes(marker):
    return sorted("%s %s" % (pid, cmd.strip())
                  for pid, cmd in pidinfo.commands() if marker in cmd)


def _runtime_state(run_dir):
    """Per-container entries of each runtime's root (runc/crun: one
    directory per container; rkt: one pod, pods/<state>/<uuid>, or the
    double's pods/<uuid>.json).  The rest of rkt's directory is its image
    store, its locks and tmp, shared by every pod."""
    base = os.path.join(run_dir, "runtime")
    found = [p for p in glob.glob(os.path.join(base, "*", "*"))
             if not p.startswith(os.path.join(base, "rkt", ""))]
    found += glob.glob(os.path.join(base, "rkt", "pods", "*", "*"))
    found += glob.glob(os.path.join(base, "rkt", "pods", "*.json"))
    return sorted(found)


def snapshot(paths):
    return {
        "mounts": _mounts(paths.storage_dir) + _mounts(paths.run_dir),
        "files": _files(paths.run_dir) + _files(paths.storage_dir),
        "runtime state": _runtime_state(paths.run_dir),
        "cgroups": _cgroups(paths.cgroup_parent),
        "processes": _processes(paths.run_dir) + _processes(
            paths.storage_dir),
        "loop devices": loop_devices(os.path.dirname(paths.run_dir)),
        "netns": sorted(n for n in _listdir("/run/netns")
                        if n.startswith(network.netns_prefix(paths))),
        "veths": _veths(network.netns_prefix(paths)),
    }


def _veths(prefix):
    """Host-side veths whose peer is in one of this tree's namespaces (a
    veth whose peer's namespace is gone is gone too)."""
    import subprocess
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                         stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        if "link-netns" in words:
            peer_ns = words[words.index("link-netns") + 1]
            if peer_ns.startswith(prefix):
                found.append(words[1].split("@")[0])
    return sorted(found)


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def assert_same(before, after):
    left = {k: sorted(set(after[k]) - set(before[k])) for k in after}
    left = {k: v for k, v in left.items() if v}
    assert not left, "left behind: %s" % left


def remove_cgroup_parent(parent):
    if proc.systemd_booted():
        # systemd made the slice when a scope asked for it: stop the unit.
        subprocess.run(["systemctl", "stop", parent],
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    for d in _parent_dirs(parent):
        try:
            os.rmdir(d)
        except OSError:
            pass


def loop_devices(marker):
    """Loop devices whose backing file is below ``marker``."""
    return sorted("%s %s" % (dev, backing) for dev, backing in
                  loop.backing_files().items() if marker in backing)


def loop_freed(image, bound=10):
    """Whether the image's loop device goes after its unmount.  Where udev
    runs (systemd hosts) it opens a device that changed to probe it, and
    the device is freed at its last close: a bound for a failure, not a
    timing."""
    deadline = time.monotonic() + bound
    while loop.devices_of(image) and time.monotonic() < deadline:
        time.sleep(0.05)
    return loop.devices_of(image) == []

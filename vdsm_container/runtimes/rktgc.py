"""What a rkt pod leaves on the host, and its removal: for the driver's
cleanup and for the orphan scan (``host.orphans``).

Measured with rkt 1.30's stage1 host: ``rkt rm`` and ``rkt gc`` remove the
pod's directory and mounts, not the cgroups nspawn and the pod's systemd
made outside the driver's own cgroup (``rktpod``): nspawn's
``machine-rkt-<uuid>.scope`` in the host's name=systemd and unified
hierarchies when it was killed (``rkt stop --force``), and, on a hybrid
host, those in the v1 hierarchies only the pod mounted.  A pod is named by
a UUID of rkt's own; the driver annotates each with its vmId
(``VM_ID_ANNOTATION``), by which the orphan scan finds it.
"""

from __future__ import annotations

import json
import os
import time

from vdsm_container.linux import files
from vdsm_container.runtimes import proc
from vdsm_container.stats import cgroups


def _hidden_hierarchies():
    """cgroup v1 hierarchies alive but with no mount in our namespace:
    ``{hierarchy id: [controllers]}`` from /proc/cgroups."""
    mounted = set()
    for line in files.read_text("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields = right.split()
        if fields and fields[0] == "cgroup":
            mounted.update(fields[-1].split(","))
    found = {}
    for line in files.read_text("/proc/cgroups").splitlines()[1:]:
        name, hid, count, enabled = line.split()
        if hid != "0" and enabled == "1" and name not in mounted:
            found.setdefault(hid, []).append(name)
    return found


def _count(controller):
    """How many cgroups the hierarchy of ``controller`` holds."""
    for line in files.read_text("/proc/cgroups").splitlines()[1:]:
        name, _, count, _ = line.split()
        if name == controller:
            return int(count)
    return 0


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def remove_pod_cgroups(paths, pod):
    """Remove the cgroups pod ``pod`` left: nspawn's, and those in the v1
    hierarchies only its stage1 mounted (measured on a hybrid host:
    net_cls, perf_event, net_prio and hugetlb, which the host leaves to
    cgroup v2, mounted together in the pod, which leaves
    ``machine-rkt-<uuid>.scope/system.slice`` there; ``rkt gc`` does not
    remove them).  Such a hierarchy, unmounted with cgroups in it, lives
    on unseen and keeps its controllers from cgroup v2, which changes the
    host's shape (crun 1.8 then runs where it refused); the kernel
    destroys it only at an unmount that finds it empty.  So each one is
    mounted on a private directory, this pod's cgroups removed, and
    unmounted, which destroys it once no other pod has it mounted.
    Returns what it removed."""
    name = "machine-rkt\\x2d%s.scope" % pod.replace("-", "\\x2d")
    removed = []
    # nspawn's own, in the host's name=systemd and unified hierarchies,
    # which it removes when it ends, unless killed (rkt stop --force).
    for root in ["/sys/fs/cgroup"] + [
            os.path.join("/sys/fs/cgroup", h) for h in
            _listdir("/sys/fs/cgroup")]:
        top = os.path.join(root, name)
        if os.path.isdir(top) and not os.path.islink(root):
            cgroups.empty_and_remove([d for d, _, _ in os.walk(top)])
            removed.append(top)
    for controllers in _hidden_hierarchies().values():
        where = os.path.join(paths.run_dir, "rkt-cgroups-%d" % os.getpid())
        os.makedirs(where, exist_ok=True)
        out = proc.run(["mount", "-t", "cgroup", "-o", ",".join(controllers),
                        "vdsm-container-rkt", where], timeout=30)
        if out.returncode != 0:
            os.rmdir(where)
            continue
        try:
            top = os.path.join(where, name)
            dirs = [d for d, _, _ in os.walk(top)]
            left = _count(controllers[0]) - len(dirs)
            cgroups.empty_and_remove(dirs)
            if dirs:
                removed.append("%s/%s" % (",".join(controllers), name))
            # The kernel unlinks a removed cgroup from its parent after
            # rmdir returns; an unmount before that keeps the hierarchy.
            deadline = time.monotonic() + 5
            while _count(controllers[0]) > left and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
        except OSError:
            pass
        finally:
            proc.run(["umount", where], timeout=30)
            os.rmdir(where)
    return removed


VM_ID_ANNOTATION = "org.ovirt.vm.id"


def pods(rkt_argv):
    """``[(pod uuid, state, vmId or None)]`` of the pods in the rkt
    directory ``rkt_argv`` (rkt with its global options) names; the vmId
    from the app's user annotation the driver sets."""
    out = proc.run(rkt_argv + ["list", "--no-legend", "--full"], timeout=60)
    found = []
    for line in out.stdout.splitlines():
        words = line.split("\t")
        if len(words) < 5 or not words[0].strip():
            continue
        pod, state = words[0].strip(), words[4].strip()
        vm_id = None
        manifest = proc.run(rkt_argv + ["cat-manifest", pod], timeout=60)
        try:
            for app in json.loads(manifest.stdout).get("apps") or []:
                vm_id = vm_id or (app.get("app") or {}).get(
                    "userAnnotations", {}).get(VM_ID_ANNOTATION)
        except (ValueError, AttributeError):
            pass
        found.append((pod, state, vm_id))
    return found


def remove_pod(rkt_argv, paths, pod, vm_id):
    """Stop pod ``pod`` of VM ``vm_id`` (``stop --force``; where systemd is
    PID 1, its ``rkt run`` unit, which holds it), remove it and what it
    left."""
    proc.run(rkt_argv + ["stop", "--force", pod], timeout=60)
    if proc.systemd_booted():
        unit = "vdsm-container-%s.service" % vm_id
        proc.run(["systemctl", "stop", unit], timeout=60)
        proc.run(["systemctl", "reset-failed", unit], timeout=30)
    deadline = time.monotonic() + 10
    while True:
        out = proc.run(rkt_argv + ["rm", pod], timeout=60)
        if out.returncode == 0 or "no matches found" in out.stderr:
            break
        if time.monotonic() >= deadline:
            raise OSError("rkt rm %s: %s" % (pod, proc.last_line(
                out.stderr)))
        time.sleep(0.2)
    proc.run(rkt_argv + ["gc", "--grace-period=0s"], timeout=60)
    remove_pod_cgroups(paths, pod)

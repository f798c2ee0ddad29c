"""Host limits at scale: N idle containers through the Container API.

    python3 bench/scale_limits.py --count 250 --oom   # inotify (cgroup v2)
    python3 bench/scale_limits.py --count 250 --oom --mark-host  # raised
    python3 bench/scale_limits.py --count 1100 --nic  # one bridge's ports

As root, in-process (no vdsmd: the limits measured here are the host's,
met by the root side that starts conmon and the runtime, which is what
supervdsmd runs), each container created with ``container.create`` as
VM.create does, runc as on an oVirt host.  Not part of ``make check`` or
CI's default run: docs/performance.rst "At scale" has the figures.

``--oom``: on cgroup v2 each conmon watches its container's memory.events
with an inotify instance of its own (conmon src/cgroup.c
``setup_oom_handling_cgroup_v2``), charged to root, whose
``fs.inotify.max_user_instances`` is 128 by default; when ``inotify_init``
fails conmon warns on a stderr that is /dev/null and runs on without the
watch.  The run counts the conmons holding a watch, then starts one
container that runs out of memory (``tail /dev/zero`` in 32 MiB) before
the idle ones and one after them, and says who told the OOM kill.

``--nic``: each container gets one NIC on a private bridge (addresses in
198.19.0.0/16, part of the benchmarking range; no uplink), so each has a
netns and a veth on the bridge; a Linux bridge takes at most 1023 ports
(BR_MAX_PORTS, port 0 reserved).  Past that, the create must fail with a
vdsm error and leave nothing.

Numbers, never assertions; the end checks that nothing was left.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests import leaks  # noqa: E402
from vdsm_container import config, constants, errors  # noqa: E402
from vdsm_container.container import Container, create  # noqa: E402
from vdsm_container.runtimes import ocistate, proc  # noqa: E402
from vdsm_container.spec import domxml  # noqa: E402
from vdsm_container.stats import cgroups  # noqa: E402
from vdsm_container.vdsm import hostsysctl  # noqa: E402

BUILD_IMAGE = os.path.join(REPO, "contrib", "build-busybox-image")
WORK = "/var/tmp/vdsm-container-scale-limits"
IDLE = ["sh", "-c", 'trap "exit 0" TERM; sleep 1000000 & wait']
HOG = ["tail", "/dev/zero"]     # keeps /dev/zero (no newline) in memory


def inotify_fds(pid):
    """The inotify instances process ``pid`` holds."""
    n = 0
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == \
                    "anon_inode:inotify":
                n += 1
        except OSError:
            pass
    return n


def root_inotify_instances():
    """inotify fds held by root's processes (an fd inherited over fork
    counts once per process: an upper bound of the kernel's count)."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat("/proc/" + entry).st_uid == 0:
                    n += inotify_fds(int(entry))
            except OSError:
                pass
    return n


def new_inotify():
    """What a root process asking for an inotify instance now gets (as
    systemd, udev, libvirtd or ``tail -f`` would)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init()
    if fd < 0:
        return "fails: %s" % os.strerror(ctypes.get_errno())
    os.close(fd)
    return "ok"


def sysctl(name):
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return f.read().strip()


def conmon_pid(ctr):
    try:
        with open(ctr.backend.bundle(ctr.id).conmon_pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def watched(ctr, wait=2.0):
    """True once the container's conmon holds an inotify instance (it sets
    the watch up right after reporting the pid: give it ``wait``)."""
    pid = conmon_pid(ctr)
    deadline = time.monotonic() + wait
    while pid:
        if inotify_fds(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return False


def xml(image, command, nic=None, ip=None, memory_mib=64):
    kw = {}
    if nic:
        kw = dict(nics=[(nic, "56:6f:%02x:%02x:%02x:%02x" % tuple(
            uuid.uuid4().bytes[:4]))],
            custom={"containerNetwork": "static:%s/16" % ip})
    return domxml.build(str(uuid.uuid4()), "scale", "runc", image,
                        memory_mib=memory_mib, command=command, **kw)


def address(i):
    """198.19.0.2, 198.19.0.3, ... for container #i (from 0)."""
    n = i + 2
    return "198.19.%d.%d" % (n // 256, n % 256)


def make_bridge():
    name = "vcscale%s" % uuid.uuid4().hex[:6]
    for args in (["link", "add", name, "type", "bridge"],
                 ["addr", "add", "198.19.0.1/16", "dev", name],
                 ["link", "set", name, "up"]):
        subprocess.run(["ip"] + args, check=True)
    return name


def bridge_ports(name):
    return len(os.listdir("/sys/class/net/%s/brif" % name))


def oom_run(paths, image, log):
    """One container that runs out of memory: who said so."""
    t0 = time.monotonic()
    ctr = create(xml(image, HOG, memory_mib=32), paths=paths)
    had_watch = watched(ctr)
    deadline = time.monotonic() + 300
    while ctr.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.2)
    stats = ctr.getStats()
    bundle = ctr.backend.bundle(ctr.id)
    scope = cgroups.scope_name(ctr.id)
    result = {
        "conmon watch": had_watch,
        "status": ctr.lastStatus,
        "exitMessage": stats.get("exitMessage"),
        "reported as OOM": "ran out of memory" in (
            stats.get("exitMessage") or ""),
        "conmon oom file": os.path.exists(os.path.join(bundle.dir, "oom")),
        "kernel log names the scope": ocistate.kernel_oom_kill(scope),
        "seconds to Down": round(time.monotonic() - t0, 1),
    }
    if proc.systemd_booted():
        out = subprocess.run(["systemctl", "show", "--property=Result",
                              scope], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
        result["systemd scope"] = out
    ctr.destroy(gracefulAttempts=0)
    log("OOM container: %s" % json.dumps(result))
    return result


class Warnings(logging.Handler):
    """The plugin's warnings during the run, by logger."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen = {}

    def emit(self, record):
        self.seen[record.name] = self.seen.get(record.name, 0) + 1


def run(args, log=print):
    os.makedirs(WORK, exist_ok=True)
    warnings = Warnings()
    logging.getLogger("vdsm_container").addHandler(warnings)
    if args.mark_host:
        log("mark-host's sysctl: %s" % json.dumps(hostsysctl.ensure()))
    image = os.path.join(WORK, "busybox.tar")
    if not os.path.exists(image):
        subprocess.run([BUILD_IMAGE, image], check=True)
    tag = uuid.uuid4().hex[:6]
    paths = config.Paths(run_dir=os.path.join(WORK, tag, "run"),
                         storage_dir=os.path.join(WORK, tag, "storage"),
                         cgroup_parent="vdsm-containers-scale%s.slice" % tag,
                         stop_timeout=2.0)
    before = leaks.snapshot(paths)
    res = {"host": {
        "cgroup": "v2" if cgroups.Hierarchy().version == 2 else "v1",
        "systemd": proc.systemd_booted(),
        "fs.inotify.max_user_instances":
            int(sysctl("fs.inotify.max_user_instances")),
        "root inotify instances before": root_inotify_instances()},
        "count": args.count}
    log("host: %s" % json.dumps(res["host"]))
    bridge = make_bridge() if args.nic else None
    made, times, failures = [], [], []
    try:
        if args.oom:
            res["oom first"] = oom_run(paths, image, log)
        for i in range(args.count):
            t0 = time.monotonic()
            try:
                ctr = create(xml(image, IDLE, bridge, address(i)),
                             paths=paths)
            except errors.VdsmException as e:
                failures.append({"index": i + 1, "code": e.code,
                                 "message": str(e)})
                log("#%d: %s %s" % (i + 1, type(e).__name__, e))
                if len(failures) >= args.max_failures:
                    break
                continue
            times.append((i + 1, (time.monotonic() - t0) * 1000))
            made.append(ctr)
            if (i + 1) % 50 == 0:
                log("#%d: %.0f ms%s" % (i + 1, times[-1][1], (
                    ", bridge ports %d" % bridge_ports(bridge))
                    if bridge else ""))
        res["up"] = sum(1 for c in made if c.refresh() == constants.UP)
        res["failures"] = failures
        res["create ms, first 10"] = [round(t) for _, t in times[:10]]
        res["create ms, last 10"] = [round(t) for _, t in times[-10:]]
        res["create ms p50 first/last 10"] = [
            round(statistics.median([t for _, t in times[:10]])),
            round(statistics.median([t for _, t in times[-10:]]))]
        if not args.nic:
            w = [watched(c, wait=0) for c in made]
            res["conmons with an inotify watch"] = sum(w)
            res["first container without one"] = (
                w.index(False) + 1 if False in w else None)
        res["root inotify instances with all up"] = root_inotify_instances()
        res["a new inotify instance for root"] = new_inotify()
        if bridge:
            res["bridge ports"] = bridge_ports(bridge)
        if args.oom:
            res["oom last"] = oom_run(paths, image, log)
    finally:
        t0 = time.monotonic()
        for ctr in made:
            try:
                Container.load(ctr.id, paths=paths).destroy(
                    gracefulAttempts=0)
            except errors.NoSuchVM:
                pass
        res["destroy all (s)"] = round(time.monotonic() - t0, 1)
        if bridge:
            res["bridge ports after destroy"] = bridge_ports(bridge)
            subprocess.run(["ip", "link", "del", bridge], check=True)
        leaks.remove_cgroup_parent(paths.cgroup_parent)
        after = leaks.snapshot(paths)
        res["left behind"] = {k: sorted(set(after[k]) - set(before[k]))
                              for k in after
                              if set(after[k]) - set(before[k])}
        res["root inotify instances after"] = root_inotify_instances()
        res["plugin warnings"] = warnings.seen
    log(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=250)
    p.add_argument("--oom", action="store_true",
                   help="an OOM container before and after the N")
    p.add_argument("--nic", action="store_true",
                   help="one NIC each, on one private bridge")
    p.add_argument("--mark-host", action="store_true",
                   help="first raise the sysctls as mark-host does")
    p.add_argument("--max-failures", type=int, default=5,
                   help="stop creating after this many refused creates")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    run(args)


if __name__ == "__main__":
    main()

"""Why a bare container start gets slower on a busy host, factor by factor.

    /usr/bin/python3 bench/start_growth.py [--count 1000] [--runs 10]
        [--only a,b,...] [--trace DIR]

``make bench-scale`` finds the bare runtime's start (``runc run -d``, and
conmon + ``runc start``) several times slower with 1000 of our containers
running than with none.  Each of ours brings several things at once: its
processes (conmon, sh, sleep), cgroups in every v1 hierarchy, a runc state
dir, namespaces, an overlay rootfs and an ext4 writable layer on a loop
device (two host mounts, one loop device).  To tell the runtime's own
density cost from what our footprint adds, this times the same bare start
(``bench.baseline.Bare``, medians of ``--runs``) under one background load
at a time, each set up alone and taken down before the next:

    a  nothing extra (first and last: the drift of the run)
    b  N idle bare runc containers: ``runc run -d`` of the busybox sleep,
       rootfs a plain directory (no host mount), cgroupfs cgroups
    c  3N idle processes (as many as N of ours run: conmon, sh, sleep),
       no namespace, no cgroup of their own
    d  N empty cgroups in every hierarchy runc uses (each v1 one and the
       hybrid's unified one), under a parent of our own
    e  2N small tmpfs mounts (the mount count of N of ours)
    f  N loop devices attached to small sparse files, not mounted
    g  N of our mount pairs, made by the plugin's code at the default
       layer size: an ext4 on a loop device and an overlay rootfs whose
       upper layer is on it (our footprint's mounts, no container)
    h  b and g at once: N bare runc containers, each on one of those
       mount pairs (our footprint, less conmon and the plugin)
    i  h with each container started under conmon, as the plugin did
       until its mounts left the host's table (our old footprint, less the
       plugin's own state and daemons)
    j  i with the host's mounts of each pair unmounted once its container
       runs, as the plugin now does (``Bundle.release_host_mounts``): the
       containers keep theirs in their own mount namespaces

With ``--trace DIR`` it also takes, under a, b and h, ``strace -f -c``
and ``strace -f -tt -T`` of one ``runc run -d``, and ``perf record -a -g``
of ``--runs`` of them, into DIR (kept).  Everything it made is removed at
the end, also on failure or Ctrl-C; it prints what of its own it finds
left.  As root.  Numbers, never assertions.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import dataclasses
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.baseline import Bare  # noqa: E402
from bench.scale import BUILD_IMAGE, COMMAND, bare_paths  # noqa: E402
from vdsm_container.bundle import ocispec, quota  # noqa: E402
from vdsm_container.linux import mounts  # noqa: E402
from vdsm_container.spec import domxml  # noqa: E402
from vdsm_container.stats import cgroups  # noqa: E402

LOAD_PARENT = "vdsm-containers-growth.slice"
BARE_PARENT = "vdsm-containers-growth-bare.slice"
CG_PARENT = "vdsm-growth-empty"
TAG = "bench-start-growth"

_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)


def mount(source, target, fstype, options):
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0,
                   options.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s: %s" % (target, os.strerror(e)))


def umount(target):
    if _libc.umount2(target.encode(), 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "umount %s: %s" % (target, os.strerror(e)))


def hierarchies():
    """Mount points of the cgroup hierarchies, from /proc/self/mountinfo:
    runc's cgroupfs manager makes the container's cgroup in each (the v1
    ones and, on a hybrid host, the unified one)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def host_counts():
    """The host's mount table (lines, size, and what one read of it
    takes: the kernel formats it anew on every read) and task count."""
    reads = []
    for _ in range(5):
        t0 = time.perf_counter()
        with open("/proc/self/mountinfo", "rb") as f:
            data = f.read()
        reads.append(time.perf_counter() - t0)
    tasks = len(glob.glob("/proc/[0-9]*/task/[0-9]*"))
    return "mountinfo %d lines/%d KiB, read %.2f ms; %d tasks" % (
        data.count(b"\n"), len(data) // 1024, ms(reads), tasks)


# --- the loads ------------------------------------------------------------

class Nothing:
    name = "nothing extra"

    def setup(self):
        pass

    def teardown(self):
        pass


class RuncContainers:
    """N idle busybox containers, ``runc run -d``, rootfs a plain
    directory (a copy of the image rootfs, shared read-only in use)."""

    def __init__(self, work, bare, n, rootfs=None, conmon=False):
        self.name = "%d idle bare runc containers" % n
        self.n = n
        self.conmon = conmon
        self.conmons = []       # conmon pid files
        self.bare = bare
        self.root = os.path.join(work, "load-runc")
        self.bundles = os.path.join(work, "load-bundles")
        self.plain = os.path.join(work, "plainroot")
        # i -> the i-th container's rootfs (default: all share plainroot)
        self.rootfs = rootfs
        self.ids = []

    def _bundle(self, cid, i):
        d = os.path.join(self.bundles, cid)
        os.makedirs(d)
        spec = domxml.parse(domxml.build(
            "00000000-0000-4000-8000-000000000000", "load", "runc", "/x",
            command=COMMAND))
        rootfs = self.rootfs(i) if self.rootfs else self.plain
        config = ocispec.build(spec, self.bare.image, rootfs,
                               cgroups.relpath(LOAD_PARENT, cid))
        # Shared by all: read-only (they write nothing anyway).
        config["root"]["readonly"] = self.rootfs is None
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        return d

    def _start(self, cid, i):
        bundle = self._bundle(cid, i)
        if not self.conmon:
            sh("runc", "--root", self.root, "run", "-d", "--bundle",
               bundle, cid)
            return
        # As the plugin (and Bare.conmon_runc) starts one: conmon runs
        # ``runc create``, then ``runc start``; conmon stays.
        pidfile = os.path.join(bundle, "conmon.pid")
        self.conmons.append(pidfile)
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                ["conmon", "--api-version", "1", "-c", cid, "-u", cid,
                 "-n", cid, "-r", shutil.which("runc"), "-b", bundle,
                 "-p", os.path.join(bundle, "pid"),
                 "--conmon-pidfile", pidfile,
                 "-l", "k8s-file:" + os.path.join(bundle, "log"),
                 "--exit-dir", bundle, "--socket-dir-path", bundle,
                 "--runtime-arg", "--root", "--runtime-arg", self.root],
                pass_fds=(w,), env=dict(os.environ, _OCI_SYNCPIPE=str(w)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        finally:
            os.close(w)
        with os.fdopen(r) as f:
            json.loads(f.readline())
        proc.wait()
        sh("runc", "--root", self.root, "start", cid)

    def setup(self):
        if self.rootfs is None and not os.path.isdir(self.plain):
            sh("cp", "-a", self.bare.image.rootfs, self.plain)
        os.makedirs(self.bundles, exist_ok=True)
        cids = ["growth-%d-%s" % (i, uuid.uuid4().hex[:6])
                for i in range(self.n)]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = []
            for i, cid in enumerate(cids):
                self.ids.append(cid)
                futures.append(pool.submit(self._start, cid, i))
            for fu in futures:
                fu.result()
        print("  runc's cgroups of one: %s" % " ".join(sorted(
            p.split("/")[4] for p in glob.glob(
                "/sys/fs/cgroup/*/%s/%s" % (LOAD_PARENT,
                                            cgroups.scope_name(
                                                self.ids[0]))))),
              flush=True)

    def teardown(self):
        delete_all(self.root)
        for pidfile in self.conmons:     # each ends with its container
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.conmons = []
        # Anything runc lost track of: kill by cgroup, then remove it.
        clear_cgroup_tree(LOAD_PARENT)
        self.ids = []
        shutil.rmtree(self.bundles, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def delete_all(root):
    """``runc delete -f`` of every container runc keeps state of in
    ``root``."""
    if not os.path.isdir(root):
        return

    def delete(cid):
        subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(delete, os.listdir(root)))


def clear_cgroup_tree(parent):
    """Kill what runs under ``parent`` in every hierarchy and remove its
    cgroups (the plugin's own ``cgroups.empty_and_remove``)."""
    dirs = [d for top in glob.glob("/sys/fs/cgroup/*/%s" % parent)
            for d, _dirs, _files in os.walk(top)]
    try:
        cgroups.empty_and_remove(dirs, tries=1000)
    except OSError as e:
        print("start_growth: a cgroup stayed: %s" % e, file=sys.stderr)


class Processes:
    def __init__(self, n):
        self.name = "%d idle processes" % n
        self.n = n
        self.procs = []

    def setup(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(
                ["sleep", "1000000"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def teardown(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


class EmptyCgroups:
    def __init__(self, n):
        self.name = "%d empty cgroups in each hierarchy" % n
        self.n = n

    def setup(self):
        for h in hierarchies():
            top = os.path.join(h, CG_PARENT)
            os.mkdir(top)
            for i in range(self.n):
                os.mkdir(os.path.join(top, "cg-%d" % i))

    def teardown(self):
        clear_cgroup_tree(CG_PARENT)


class Tmpfs:
    def __init__(self, work, n):
        self.name = "%d tmpfs mounts" % n
        self.n = n
        self.dir = os.path.join(work, "m")
        self.mounted = []

    def setup(self):
        for i in range(self.n):
            target = os.path.join(self.dir, str(i))
            os.makedirs(target, exist_ok=True)
            mount(TAG, target, "tmpfs", "size=4k")
            self.mounted.append(target)

    def teardown(self):
        while self.mounted:
            umount(self.mounted.pop())


class Loops:
    """N loop devices on small sparse files, not mounted."""

    def __init__(self, work, n):
        self.name = "%d loop devices, not mounted" % n
        self.n = n
        self.dir = os.path.join(work, "loops")
        self.devices = []

    def setup(self):
        os.makedirs(self.dir, exist_ok=True)
        for i in range(self.n):
            img = os.path.join(self.dir, "%d.img" % i)
            with open(img, "wb") as f:
                f.truncate(1 << 20)
            self.devices.append(subprocess.run(
                ["losetup", "-f", "--show", img], check=True,
                stdout=subprocess.PIPE, text=True).stdout.strip())

    def teardown(self):
        while self.devices:
            subprocess.run(["losetup", "-d", self.devices.pop()])
        detach_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def detach_under(d):
    """Detach any loop device still on a file below ``d`` (e.g. Ctrl-C
    between the attach and the bookkeeping)."""
    out = subprocess.run(["losetup", "-a"], stdout=subprocess.PIPE,
                         text=True).stdout
    for line in out.splitlines():
        if "(%s/" % d in line:
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]])


class OurMounts:
    """N of our containers' mount pairs, made by the plugin's own code
    (``bundle.quota.make``: sparse image, mkfs, loop mount with
    autoclear; ``linux.mounts.overlay`` of the image rootfs on it), at the
    host's default layer size, without any container."""

    def __init__(self, work, n, lower, size_mib):
        self.name = "%d of our mount pairs (ext4 on loop + overlay)" % n
        self.n = n
        self.lower = lower
        self.size_mib = size_mib
        self.dir = os.path.join(work, "ours")
        self.mounted = []

    def rootfs(self, i):
        return os.path.join(self.dir, str(i), "rootfs")

    def setup(self):
        for i in range(self.n):
            storage = os.path.join(self.dir, str(i))
            os.makedirs(self.rootfs(i))
            layer = quota.make(storage, self.size_mib)
            self.mounted.append(layer)
            for d in ("upper", "work"):
                os.makedirs(os.path.join(layer, d))
            mounts.overlay(self.lower, os.path.join(layer, "upper"),
                           os.path.join(layer, "work"), self.rootfs(i))
            self.mounted.append(self.rootfs(i))

    def teardown(self):
        # The layer's loop device goes with its last unmount (autoclear).
        while self.mounted:
            umount(self.mounted.pop())
        detach_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class OursBare:
    """N bare runc containers, each on one of our mount pairs: our
    footprint but the plugin's own state (and, without ``conmon``,
    conmon).  With ``release``, the host's mounts are then unmounted (the
    containers' own mount namespaces keep theirs), as the plugin does."""

    def __init__(self, work, bare, n, size_mib, conmon=False, release=False):
        self.name = "%d bare runc containers on our mount pairs%s%s" % (
            n, ", each under conmon" if conmon else "",
            ", host mounts released" if release else "")
        self.release = release
        self.mounts = OurMounts(work, n, bare.image.rootfs, size_mib)
        self.runc = RuncContainers(work, bare, n, rootfs=self.mounts.rootfs,
                                   conmon=conmon)

    def setup(self):
        self.mounts.setup()
        self.runc.setup()
        if self.release:
            # Overlays first (each holds its layer), as mounted.
            for point in reversed(self.mounts.mounted):
                umount(point)
            self.mounts.mounted = []

    def teardown(self):
        try:
            self.runc.teardown()
        finally:
            self.mounts.teardown()


# --- timing ----------------------------------------------------------------

def ms(times):
    return statistics.median(times) * 1000


def traced_run(bare, tracer, cid):
    """One ``runc run -d`` of ``bare``'s bundle under ``tracer``; strace
    -f follows the container's own processes too, so the container is
    deleted once it runs, which ends the trace.  (Bare's own bundle and
    state root, through its helpers: the same start as ``runc_run``.)"""
    root = bare._root("bare-runc")
    bare._config(cid)
    t = subprocess.Popen(tracer + ["runc", "--root", root, "run", "-d",
                                   "--bundle", bare.bundle.dir, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            r = subprocess.run(["runc", "--root", root, "state", cid],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if r.returncode == 0 and '"running"' in r.stdout:
                break
            time.sleep(0.1)
    finally:
        subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.wait()


def trace(bare, tdir, label, runs):
    """strace of one ``runc run -d`` (a CPU-time summary, and a full
    trace with timestamps and durations) and a system-wide perf profile
    of ``runs`` of them."""
    os.makedirs(tdir, exist_ok=True)
    out = os.path.join(tdir, "strace-c-%s.txt" % label)
    traced_run(bare, ["strace", "-f", "-c", "-o", out], "trace-c")
    out = os.path.join(tdir, "strace-%s.txt" % label)
    traced_run(bare, ["strace", "-f", "-tt", "-T", "-o", out], "trace-t")
    if shutil.which("perf"):
        data = os.path.join(tdir, "perf-%s.data" % label)
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-q", "-o",
                                 data], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            bare.runc_run(runs)
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait()


def measure(bare, load, runs, tdir=None, label=None):
    t0 = time.monotonic()
    try:
        load.setup()
        made = time.monotonic() - t0
        counts = host_counts()
        run = ms(bare.runc_run(runs))
        conmon = ms(bare.conmon_runc(runs))
        if tdir:
            trace(bare, tdir, label, runs)
    finally:
        t1 = time.monotonic()
        load.teardown()
    print("%-52s runc run -d %6.1f ms  conmon+runc %6.1f ms  "
          "(%s; setup %.0f s, teardown %.0f s)" % (
              load.name, run, conmon, counts, made, time.monotonic() - t1),
          flush=True)
    return run, conmon


def leftovers(work, paths):
    """What of ours is still on the host (should be nothing)."""
    out = []
    for root in (os.path.join(work, "load-runc"),
                 os.path.join(paths.run_dir, "bare-runc"),
                 os.path.join(paths.run_dir, "bare-conmon")):
        if os.path.isdir(root):
            r = subprocess.run(["runc", "--root", root, "list", "-q"],
                               stdout=subprocess.PIPE, text=True).stdout
            if r.strip():
                out.append("runc containers in %s: %s" % (root, r.split()))
    with open("/proc/self/mountinfo") as f:
        n = sum(1 for line in f if work in line or TAG in line)
    if n:
        out.append("%d mounts" % n)
    loops = subprocess.run(["losetup", "-a"], stdout=subprocess.PIPE,
                           text=True).stdout
    n = sum(1 for line in loops.splitlines() if work in line)
    if n:
        out.append("%d loop devices" % n)
    cgs = [p for name in (LOAD_PARENT, CG_PARENT, paths.cgroup_parent)
           for p in glob.glob("/sys/fs/cgroup/*/%s" % name)]
    if cgs:
        out.append("cgroups: %s" % cgs)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--only", default="a,b,c,d,e,f,g,h,i,j",
                    help="loads to time, in this order (a is always "
                         "timed first and last)")
    ap.add_argument("--trace", metavar="DIR",
                    help="strace + perf of runc run -d under a, b and h")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("start_growth: run as root")
    # Ctrl-C and SIGTERM both unwind through the teardowns.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = tempfile.mkdtemp(prefix="start-growth-", dir="/var/tmp")
    # A cgroup parent of its own: the teardown kills what is in it, and
    # another bench's bare containers (bare_paths' parent) are not ours.
    paths = dataclasses.replace(bare_paths(work), cgroup_parent=BARE_PARENT)
    n = args.count
    bare = None
    try:
        image = os.path.join(work, "busybox.tar")
        sh(BUILD_IMAGE, image)
        bare = Bare(paths, image, COMMAND)
        loads = {
            "b": lambda: RuncContainers(work, bare, n),
            "c": lambda: Processes(3 * n),
            "d": lambda: EmptyCgroups(n),
            "e": lambda: Tmpfs(work, 2 * n),
            "f": lambda: Loops(work, n),
            "g": lambda: OurMounts(work, n, bare.image.rootfs,
                                   paths.disk_size_mib),
            "h": lambda: OursBare(work, bare, n, paths.disk_size_mib),
            "i": lambda: OursBare(work, bare, n, paths.disk_size_mib,
                                  conmon=True),
            "j": lambda: OursBare(work, bare, n, paths.disk_size_mib,
                                  conmon=True, release=True),
        }
        print("N = %d, medians of %d; at start: %s" % (
            n, args.runs, host_counts()), flush=True)
        rows = [("a", measure(bare, Nothing(), args.runs, args.trace, "a"))]
        for key in args.only.split(","):
            if key in loads:
                rows.append((key, measure(bare, loads[key](), args.runs,
                                          args.trace if key in "bh" else None,
                                          key)))
        rows.append(("a", measure(bare, Nothing(), args.runs)))
        base = [statistics.mean(v[i] for k, v in rows if k == "a")
                for i in (0, 1)]
        # In brackets: the difference from the mean of the two a rows.
        print("\n| load (N = %d) | runc run -d p50 ms | conmon+runc p50 ms |"
              "\n|---|---:|---:|" % n)
        for key, (run, conmon) in rows:
            print("| %s | %.1f (%+.1f) | %.1f (%+.1f) |" % (
                key, run, run - base[0], conmon, conmon - base[1]))
    finally:
        for name in ("bare-runc", "bare-conmon"):
            delete_all(os.path.join(paths.run_dir, name))
        if bare is not None:
            bare.close()
        clear_cgroup_tree(paths.cgroup_parent)
        left = leftovers(work, paths)
        shutil.rmtree(work, ignore_errors=True)
        print("left behind: %s" % ("; ".join(left) if left else "nothing"))


if __name__ == "__main__":
    main()

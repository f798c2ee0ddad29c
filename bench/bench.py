"""Benchmarks: the plugin beside the bare runtime doing the same work.

    make bench            # prints a table and writes bench/report.md

create->Up: from Engine's domain XML to a running, supervised container
(parse, image cache lookup, overlay mount, config.json, conmon, runc
create+start), beside ``runc run -d`` and conmon + ``runc start`` on the
same bundle.  Medians of N runs (default 20).  Numbers, never assertions:
tests don't time things.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from vdsm_container import config  # noqa: E402
from vdsm_container.bundle.layout import Bundle  # noqa: E402
from vdsm_container.container import Container, create  # noqa: E402
from vdsm_container.image.cache import Cache  # noqa: E402
from vdsm_container.spec import domxml  # noqa: E402
from vdsm_container.runtimes import runc  # noqa: E402

from bench import sandboxed  # noqa: E402
from bench.baseline import Bare  # noqa: E402

COMMAND = ["sleep", "1000"]


def median_ms(samples):
    return statistics.median(samples) * 1000


def bench_plugin(paths, image, runs, bridge=None):
    times = []
    for i in range(runs):
        nics = [(bridge, "56:6f:00:be:%02x:01" % i)] if bridge else ()
        xml = domxml.build(str(uuid.uuid4()), "bench", "runc", image,
                           command=COMMAND, nics=nics,
                           custom={"containerNetwork":
                                   "static:198.18.250.%d/24" % (10 + i)}
                           if bridge else None)
        t0 = time.perf_counter()
        ctr = create(xml, paths=paths)
        times.append(time.perf_counter() - t0)
        ctr.destroy(gracefulAttempts=0)
    return times


def bench_quota(paths, image, runs):
    """create->Up with the writable layer's limit (the default 10 GiB
    ext4 image) and without, run by turns so that both meet the same load
    on a shared machine."""
    unlimited_paths = dataclasses.replace(paths, disk_size_mib=0)
    limited, unlimited = [], []
    for _ in range(runs):
        limited += bench_plugin(paths, image, 1)
        unlimited += bench_plugin(unlimited_paths, image, 1)
    return limited, unlimited


def _variant(work, small, name, fill):
    """``small`` plus one layer that ``fill(rootfs)`` writes: the same
    image otherwise.  Returns (OCI layout for bare umoci, archive)."""
    layout = os.path.join(work, name + "-layout")
    subprocess.run(["skopeo", "copy", "--quiet", "oci-archive:" + small,
                    "oci:%s:image" % layout], check=True)
    bundle = os.path.join(work, name + "-bundle")
    subprocess.run(["umoci", "unpack", "--image", layout + ":image", bundle],
                   check=True, stdout=subprocess.DEVNULL)
    fill(os.path.join(bundle, "rootfs"))
    subprocess.run(["umoci", "repack", "--image", layout + ":image", bundle],
                   check=True)
    shutil.rmtree(bundle)
    path = os.path.join(work, name + ".tar")
    subprocess.run(["skopeo", "copy", "--quiet", "oci:%s:image" % layout,
                    "oci-archive:%s:%s:latest" % (path, name)], check=True)
    return layout, path


def big_image(work, small, mib):
    """``small`` plus a layer of ``mib`` MiB of random data, to show the
    cached start doesn't grow with the image."""
    def fill(rootfs):
        with open(os.path.join(rootfs, "payload"), "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1024 * 1024))
    return _variant(work, small, "big", fill)


def many_files_image(work, small, count):
    """``small`` plus ``count`` small files in 100 directories, about as
    compressible as a distribution's: the per-entry cost of the check."""
    def fill(rootfs):
        for i in range(count):
            d = os.path.join(rootfs, "usr", "share", "d%02d" % (i % 100))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%06d" % i), "w") as f:
                f.write(os.urandom(256 + i % 4096).hex())
    return _variant(work, small, "many", fill)


def bench_unpack(work, image, layout, runs):
    """Our first unpack (archive -> cache) beside bare ``umoci unpack`` of
    the same image from an OCI layout, alternated; medians."""
    ours, bare = [], []
    for i in range(runs):
        root = os.path.join(work, "unpack-cache-%d" % i)
        t0 = time.perf_counter()
        Cache(root).get(image)
        ours.append(time.perf_counter() - t0)
        shutil.rmtree(root)
        target = os.path.join(work, "bare-unpack")
        t0 = time.perf_counter()
        subprocess.run(["umoci", "unpack", "--image", layout + ":image",
                        target], check=True, stdout=subprocess.DEVNULL)
        bare.append(time.perf_counter() - t0)
        shutil.rmtree(target)
    return median_ms(ours), median_ms(bare)


def unpack_rows(work, image, big_mib, many, runs):
    """First-unpack rows, and the big image's archive (for a cached start)."""
    rows = []
    big = big_image(work, image, big_mib)
    for what, (layout, path) in (
            ("busybox + %d MiB of random data" % big_mib, big),
            ("busybox + %d small files" % many,
             many_files_image(work, image, many))):
        ours, bare = bench_unpack(work, path, layout, runs)
        rows.append((what, os.path.getsize(path), ours, bare))
    return rows, big[1]


def unpack_lines(rows, runs):
    lines = ["## First unpack", "",
             "From the image archive on a volume to a cached rootfs, beside "
             "bare `umoci unpack` of the same image from an OCI layout "
             "(medians of %d, alternated)." % runs, "",
             "| image | archive MiB | vdsm-container ms | bare umoci unpack "
             "ms | ratio |", "|---|---:|---:|---:|---:|"]
    for what, size, ours, bare in rows:
        lines.append("| %s | %.0f | %.0f | %.0f | %.2fx |"
                     % (what, size / 1024 ** 2, ours, bare, ours / bare))
    return lines + ["", "Goal: within 1.2x of bare umoci unpack."]


def bench_podman(image, runs):
    """`podman run -d` of the same image (loaded from its archive once)."""
    subprocess.run(["podman", "load", "-q", "-i", image], check=True,
                   stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cid = subprocess.run(["podman", "run", "-d", "busybox:latest"]
                             + COMMAND, check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
        times.append(time.perf_counter() - t0)
        subprocess.run(["podman", "rm", "-f", cid], check=True,
                       stdout=subprocess.DEVNULL)
    return times


def start_many(paths, image, n):
    return [create(domxml.build(str(uuid.uuid4()), "b", "runc", image,
                                command=COMMAND), paths=paths)
            for _ in range(n)]


def bench_stats(paths, image, counts):
    """getAllVmStats over N containers, beside `runc events --stats`."""
    from vdsm_container.vdsm import vmcontainer as clientif

    class Cif:
        def __init__(self, ctrs):
            self.vmContainer = {c.id: c for c in ctrs}

        def getVMs(self):
            return dict(self.vmContainer)

    rows = []
    running = []
    driver = runc.Driver(paths)
    for n in counts:
        running += start_many(paths, image, n - len(running))
        cif = Cif(running)
        clientif.sample_all(cif, running[0].backend)
        time.sleep(0.2)
        t0 = time.perf_counter()
        clientif.sample_all(cif, running[0].backend)
        sampling = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = [c.getStats() for c in cif.getVMs().values()]
        copy = time.perf_counter() - t0
        assert len(stats) == n
        t0 = time.perf_counter()
        for c in running:
            subprocess.run(["runc", "--root", driver.root, "events",
                            "--stats", c.id], check=True,
                           stdout=subprocess.DEVNULL)
        events = time.perf_counter() - t0
        rows.append((n, sampling * 1000, copy * 1000, events * 1000))
    rss = _rss_per_container(running)
    t0 = time.perf_counter()
    for c in running[:50]:
        again = Container.load(c.id, paths=paths)
        again.refresh()
        again.sample()
    recovery = (time.perf_counter() - t0) * 1000
    for c in running:
        c.destroy(gracefulAttempts=0)
    return rows, rss, recovery


def _rss_per_container(ctrs):
    """Host memory one container costs beyond its own process: conmon."""
    total = 0
    for c in ctrs:
        try:
            pid = int(open(Bundle(c.paths, c.id).conmon_pid_file).read())
            for line in open("/proc/%d/status" % pid):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total / max(1, len(ctrs))


def _remove_cgroup_parent(parent):
    import glob
    for d in glob.glob("/sys/fs/cgroup/*/%s" % parent) + glob.glob(
            "/sys/fs/cgroup/%s" % parent):
        try:
            os.rmdir(d)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--report", default=None)
    ap.add_argument("--big-mib", type=int, default=200,
                    help="size of the large image's extra layer")
    ap.add_argument("--many-files", type=int, default=20000,
                    help="files in the many-files image's extra layer")
    ap.add_argument("--unpack-runs", type=int, default=3)
    ap.add_argument("--only", choices=("all", "unpack"), default="all",
                    help="unpack: only the first-unpack rows")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it starts real containers)")
    work = tempfile.mkdtemp(prefix="vdsm-container-bench-")
    paths = config.Paths(run_dir=os.path.join(work, "run"),
                         storage_dir=os.path.join(work, "storage"),
                         cgroup_parent="vdsm-containers-bench.slice",
                         stop_timeout=1.0)
    image = os.path.join(work, "busybox.tar")
    subprocess.run([os.path.join(os.path.dirname(HERE), "contrib",
                                 "build-busybox-image"), image], check=True)
    rows = []
    stats_rows = []
    podman_ms = None
    if args.only == "unpack":
        try:
            text = "\n".join(unpack_lines(unpack_rows(
                work, image, args.big_mib, args.many_files,
                args.unpack_runs)[0], args.unpack_runs)) + "\n"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(text)
        return
    try:
        # Warm the image cache: the first unpack is measured apart.
        t0 = time.perf_counter()
        Cache(paths.image_cache).get(image)
        rows.append(("first unpack of the busybox image (umoci)",
                     (time.perf_counter() - t0) * 1000, 1))
        bare = Bare(paths, image, COMMAND)
        try:
            rows.append(("runc run -d (bare runtime)",
                         median_ms(bare.runc_run(args.runs)), args.runs))
            rows.append(("conmon + runc start (bare supervised)",
                         median_ms(bare.conmon_runc(args.runs)), args.runs))
        finally:
            bare.close()
        limited, unlimited = bench_quota(paths, image, args.runs)
        rows.append(("vdsm-container create->Up (domain XML in)",
                     median_ms(limited), args.runs))
        rows.append(("... writable layer unlimited (disk size 0)",
                     median_ms(unlimited), args.runs))
        unpacks, big = unpack_rows(work, image, args.big_mib,
                                   args.many_files, args.unpack_runs)
        Cache(paths.image_cache).get(big)
        os.sync()   # the unpacks' writeback is not the cached start's cost
        rows.append(("vdsm-container create->Up, cached %d MiB image"
                     % args.big_mib,
                     median_ms(bench_plugin(paths, big, args.runs)),
                     args.runs))
        bridge = "vcbrbench"
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"],
                       check=True)
        try:
            subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
            rows.append(("vdsm-container create->Up, one NIC (static)",
                         median_ms(bench_plugin(paths, image, args.runs,
                                                bridge)), args.runs))
        finally:
            subprocess.run(["ip", "link", "del", bridge], check=True)
        if shutil.which("podman"):
            podman_ms = median_ms(bench_podman(image, args.runs))
        stats_rows, rss_kib, recovery_ms = bench_stats(paths, image,
                                                       (10, 50, 100))
        sandbox = sandboxed.measure(paths, image, args.runs)
    finally:
        for ctr in Container.load_all(paths=paths):
            ctr.destroy(gracefulAttempts=0)
        shutil.rmtree(work, ignore_errors=True)
        _remove_cgroup_parent(paths.cgroup_parent)
    conmon_ms = rows[2][1]
    lines = ["# vdsm-container benchmark", "",
             "Host: %s, runc %s" % (os.uname().release,
                                     runc.Driver.probe(paths).version), "",
             "| what | median ms | runs | vs conmon+runc |",
             "|---|---:|---:|---:|"]
    for what, ms, n in rows:
        lines.append("| %s | %.1f | %d | %.2fx |" % (what, ms, n,
                                                     ms / conmon_ms))
    if shutil.which("podman"):
        lines.append("| podman run -d (for reference) | %.1f | %d | %.2fx |"
                     % (podman_ms, args.runs, podman_ms / conmon_ms))
    else:
        lines += ["", "podman is not installed here: no podman row."]
    lines += ["", "Goals: create->Up within 1.5x conmon+runc; with one NIC "
              "<= 100 ms.", "",
              "## Host.getAllVmStats", "",
              "| containers | sampling round ms (cgroup reads, in the "
              "background) | getAllVmStats ms (copies) | runc events "
              "--stats, all, ms |", "|---:|---:|---:|---:|"]
    for n, sampling, copy, events in stats_rows:
        lines.append("| %d | %.1f | %.2f | %.0f |" % (n, sampling, copy,
                                                     events))
    lines += ["", "Goal: all 100 in <= 20 ms.", "",
              "## Per container", "",
              "- host memory beyond the container's own processes (conmon "
              "RSS): %.0f KiB" % rss_kib,
              "- recovery (state file, runtime check, first sample): "
              "%.1f ms for 50 containers" % recovery_ms, ""]
    lines += sandboxed.lines(sandbox, args.runs)
    lines += unpack_lines(unpacks, args.unpack_runs)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    live = live_lines()
    print(live)
    if args.report:
        from bench.scale import write_section
        write_section(args.report, "live", live)


LIVE_COUNTS = (10, 100)


def live_lines():
    """The rows measured through the live vdsmd (tests/live), beside the
    in-process ones above; a line saying why when there is no live host.

    bench/scale.py measures them, run by Debian's python3, the one that
    has vdsm's client; the host is set up and its daemons stopped again.
    """
    head = ["## Through a live vdsmd (JSON-RPC, vdsmd as user vdsm)", ""]
    repo = os.path.dirname(HERE)
    live = os.path.join(repo, "tests", "live")
    try:
        subprocess.run(["bash", os.path.join(live, "setup-host")],
                       check=True, stdout=subprocess.DEVNULL)
        # restart: the daemons run the code just installed.
        subprocess.run([os.path.join(live, "services"), "restart"],
                       check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as e:
        return "\n".join(head + ["Skipped: the live host could not be set "
                                  "up here (%s)." % e]) + "\n"
    try:
        out = subprocess.run(
            ["/usr/bin/python3", os.path.join(HERE, "scale.py"),
             "--live-rows", ",".join(map(str, LIVE_COUNTS))],
            check=True, stdout=subprocess.PIPE, universal_newlines=True)
        got = json.loads(out.stdout)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        return "\n".join(head + ["Skipped: the live measurement failed "
                                  "(%s)." % e]) + "\n"
    finally:
        subprocess.run([os.path.join(live, "services"), "stop"],
                       stdout=subprocess.DEVNULL)
    return live_table(got)


def live_table(got):
    """The rows of ``scale.py --live-rows``'s JSON ``got``."""
    head = ["## Through a live vdsmd (JSON-RPC, vdsmd as user vdsm)", ""]
    runs = len(got["create"])
    conmon_ms = _ms(got["bare_conmon"], 50)
    lines = head + [
        "| what | median ms | p99 ms | runs | vs conmon+runc |",
        "|---|---:|---:|---:|---:|",
        "| VM.create -> Up event, over JSON-RPC | %.1f | %.1f | %d | "
        "%.2fx |" % (_ms(got["create"], 50), _ms(got["create"], 99), runs,
                     _ms(got["create"], 50) / conmon_ms),
        "| conmon + runc start (bare), same run | %.1f | %.1f | %d | |" % (
            _ms(got["bare_conmon"], 50), _ms(got["bare_conmon"], 99),
            len(got["bare_conmon"]))]
    for n in LIVE_COUNTS:
        t = got["getall"][str(n)]
        lines.append("| Host.getAllVmStats over JSON-RPC, %d containers "
                     "(%d listed Up) | %.1f | %.1f | %d | |" % (
                         n, got["listed_up"][str(n)], _ms(t, 50),
                         _ms(t, 99), len(t)))
    return "\n".join(lines) + "\n"


def _ms(values, p):
    from bench.scale import pct
    return pct(values, p) * 1000


if __name__ == "__main__":
    main()

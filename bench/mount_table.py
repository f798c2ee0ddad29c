"""What a big mount table costs a bare container start.

    /usr/bin/python3 bench/mount_table.py [--mounts 2000] [--runs 10]

Each container has two mounts (its overlay rootfs and its size-limited
writable layer), which were in the host's namespace while it ran (now only
while it is created: ``Bundle.release_host_mounts``), and runc and conmon
read the mount table on every start.  This times the bare runtime
(``bench.baseline.Bare``: ``runc run -d``, conmon + ``runc start``) with
the host's table as it is, then with ``--mounts`` small tmpfs mounts added
and no container running, alternating twice; it prints medians and removes
what it mounted.  As root.  Numbers, never assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.baseline import Bare  # noqa: E402
from bench.scale import BUILD_IMAGE, COMMAND, bare_paths, \
    remove_cgroup_parent  # noqa: E402


def mount_lines():
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


def median_ms(times):
    return "%.1f ms" % (statistics.median(times) * 1000)


def timed(bare, runs):
    return "mount table %5d lines: runc run -d %s, conmon+runc %s" % (
        mount_lines(), median_ms(bare.runc_run(runs)),
        median_ms(bare.conmon_runc(runs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mounts", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("mount_table: run as root")
    work = tempfile.mkdtemp(prefix="mount-table-", dir="/var/tmp")
    paths = bare_paths(work)
    bare = None
    mounted = []
    try:
        image = os.path.join(work, "busybox.tar")
        subprocess.run([BUILD_IMAGE, image], check=True,
                       stdout=subprocess.DEVNULL)
        bare = Bare(paths, image, COMMAND)
        for _ in range(2):
            print(timed(bare, args.runs), flush=True)
            for i in range(args.mounts):
                target = os.path.join(work, "m", str(i))
                os.makedirs(target, exist_ok=True)
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k",
                                "bench-mount-table", target], check=True)
                mounted.append(target)
            print(timed(bare, args.runs), flush=True)
            while mounted:
                subprocess.run(["umount", mounted.pop()], check=True)
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", target])
        if bare is not None:
            bare.close()
        remove_cgroup_parent(paths)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""runsc (gVisor) beside runc: what the sandbox costs.

For docs/operations.rst's "when to choose runsc" (Runtimes): create->Up
through the plugin, the host memory each running container holds (every
process of its
cgroup, where runsc's sandbox, its ptrace stubs and the gofer live, plus
conmon: RSS sums, which count shared pages once per process, so an upper
bound), and system-call speed: a container that makes 200000 tiny
syscalls (``dd bs=1``), timed from create to Down.  Numbers, never
assertions.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid

from vdsm_container import constants
from vdsm_container.bundle.layout import Bundle
from vdsm_container.container import create
from vdsm_container import runtimes
from vdsm_container.spec import domxml

RUNTIMES = ("runc", "runsc")
SYSCALLS = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=100000"]


def _create(paths, image, runtime, command):
    xml = domxml.build(str(uuid.uuid4()), "bench-" + runtime, runtime,
                       image, command=list(command))
    return create(xml, paths=paths)


def _rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def host_kib(ctr):
    """RSS of conmon and of every process in the container's cgroup."""
    driver = ctr.backend.driver(ctr.spec.runtime)
    bundle = Bundle(ctr.paths, ctr.id)
    h = driver.hierarchy
    rel = driver.cgroup_path(bundle)
    d = h.path(rel) if h.version == 2 else h.path(rel, "memory")
    with open(os.path.join(d, "cgroup.procs")) as f:
        pids = {int(p) for p in f.read().split()}
    with open(bundle.conmon_pid_file) as f:
        pids.add(int(f.read()))
    return sum(_rss_kib(p) for p in pids)


def _wait_down(ctr, bound=120):
    deadline = time.monotonic() + bound
    while ctr.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.01)


def measure(paths, image, runs, keep=3):
    """``{runtime: {"up_ms", "kib", "syscalls_ms"}}`` for runc and runsc
    (runsc only if its probe finds it usable here)."""
    result = {}
    for runtime in RUNTIMES:
        if runtime != "runc" and not runtimes.probe(
                paths, only=(runtime,))[runtime].available:
            continue
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            ctr = _create(paths, image, runtime, ["sleep", "1000"])
            times.append(time.perf_counter() - t0)
            ctr.destroy(gracefulAttempts=0)
        held = [_create(paths, image, runtime, ["sleep", "1000"])
                for _ in range(keep)]
        try:
            time.sleep(1)       # let the sandboxes settle
            kib = statistics.median(host_kib(c) for c in held)
        finally:
            for c in held:
                c.destroy(gracefulAttempts=0)
        sys_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            ctr = _create(paths, image, runtime, SYSCALLS)
            _wait_down(ctr)
            sys_times.append(time.perf_counter() - t0)
            ctr.destroy(gracefulAttempts=0)
        result[runtime] = {
            "up_ms": statistics.median(times) * 1000,
            "kib": kib,
            "syscalls_ms": statistics.median(sys_times) * 1000,
        }
    return result


def lines(result, runs):
    out = ["## runsc (gVisor) beside runc", "",
           "| runtime | create->Up median ms (%d runs) | host memory per "
           "container, KiB (RSS: conmon + its cgroup) | create->Down of "
           "200000 1-byte syscalls (dd), ms |" % runs,
           "|---|---:|---:|---:|"]
    for runtime, r in result.items():
        out.append("| %s | %.1f | %.0f | %.0f |" % (
            runtime, r["up_ms"], r["kib"], r["syscalls_ms"]))
    if "runsc" not in result:
        out += ["", "runsc cannot run here: no runsc row."]
    return out + [""]

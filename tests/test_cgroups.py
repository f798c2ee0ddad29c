"""cgroup v1 and v2 readers, on trees laid out as the kernel lays them out,
and on the real v2 (unified) hierarchy of a running container."""

import os
import time

import pytest

from vdsm_container.stats import cgroups
from .conftest import bundle_of, driver_of

REL = "/vdsm-containers.slice/vdsm-container-x.scope"


def write(root, rel, files):
    d = os.path.join(str(root), rel.lstrip("/"))
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def test_v2_detected_and_read(tmp_path):
    write(tmp_path, "/", {"cgroup.controllers": "cpu memory pids io\n"})
    write(tmp_path, REL, {
        "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
                    "nr_periods 10\nnr_throttled 3\nthrottled_usec 700\n",
        "memory.current": "10485760\n",
        "memory.stat": "anon 8388608\nfile 2097152\nkernel 4096\n",
        "memory.swap.current": "0\n",
        "memory.max": "67108864\n",
        "memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        "pids.current": "3\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 "
                   "dios=0\n253:1 rbytes=4096 wbytes=0 rios=1 wios=0\n",
    })
    h = cgroups.Hierarchy(str(tmp_path))
    assert h.version == 2
    s = h.read(REL)
    assert (s.cpu_usage_ns, s.cpu_user_ns, s.cpu_system_ns) == \
        (2500000, 2000000, 500000)
    assert (s.memory_usage, s.memory_cache) == (10485760, 2097152)
    assert s.oom_kills == 1 == h.oom_kills(REL)
    assert s.pids == 3
    assert (s.io_read_bytes, s.io_write_bytes, s.io_read_ops,
            s.io_write_ops) == (8192, 8192, 2, 2)



def test_v1_detected_and_read(tmp_path):
    tick = 10 ** 9 // os.sysconf("SC_CLK_TCK")
    write(tmp_path / "cpuacct", REL, {
        "cpuacct.usage": "3000000\n", "cpuacct.stat": "user 2\nsystem 1\n"})
    write(tmp_path / "cpu", REL, {
        "cpu.stat": "nr_periods 5\nnr_throttled 2\nthrottled_time 900\n"})
    write(tmp_path / "memory", REL, {
        "memory.usage_in_bytes": "5000\n",
        "memory.stat": "cache 100\nrss 200\ntotal_cache 1000\n"
                       "total_rss 2000\ntotal_swap 0\n",
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"
                              "oom_kill 2\n"})
    write(tmp_path / "pids", REL, {"pids.current": "4\n"})
    write(tmp_path / "blkio", REL, {
        "blkio.throttle.io_service_bytes": "8:0 Read 100\n8:0 Write 50\n"
                                           "8:0 Total 150\nTotal 150\n",
        "blkio.throttle.io_serviced": "8:0 Read 1\n8:0 Write 2\n"})
    h = cgroups.Hierarchy(str(tmp_path))
    assert h.version == 1
    s = h.read(REL)
    assert s.cpu_usage_ns == 3000000
    assert (s.cpu_user_ns, s.cpu_system_ns) == (2 * tick, tick)
    assert s.memory_cache == 1000
    assert s.oom_kills == 2
    assert (s.io_read_bytes, s.io_write_bytes, s.io_read_ops,
            s.io_write_ops) == (100, 50, 1, 2)


def test_gone(tmp_path):
    assert cgroups.Hierarchy(str(tmp_path), version=1).read(REL) is None
    assert cgroups.Hierarchy(str(tmp_path), version=2).read(REL) is None


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_real_unified_hierarchy(paths, busybox_oci):
    from vdsm_container.container import create
    from .test_container import xml_for
    unified = "/sys/fs/cgroup/unified"
    host = cgroups.Hierarchy()
    if host.version == 2:
        unified = "/sys/fs/cgroup"
    elif not os.path.exists(os.path.join(unified, "cgroup.controllers")):
        pytest.skip("no cgroup2 hierarchy mounted on this host")
    ctr = create(xml_for(busybox_oci, ["sh", "-c", "while :; do :; done"]),
                 paths=paths)
    try:
        rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
        v2 = cgroups.Hierarchy(unified, version=2)
        first = v2.read(rel)
        time.sleep(0.3)
        last = v2.read(rel)
        # cpu.stat is always there on cgroup2: the busy loop shows in it.
        assert last.cpu_usage_ns > first.cpu_usage_ns > 0
    finally:
        ctr.destroy(gracefulAttempts=0)

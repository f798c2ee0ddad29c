"""VM sizing from the domain XML, read back from the container's cgroup."""

import os
import uuid

import pytest

from vdsm_container import errors, runtimes
from vdsm_container.bundle import blockio
from vdsm_container.spec import domxml
from vdsm_container.container import create
from vdsm_container.linux import loop
from vdsm_container.runtimes import runsc
from vdsm_container.stats import cgroups

from .conftest import bundle_of, driver_of, host_shape

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


def sized_xml(image, runtime="runc"):
    xml = domxml.build(str(uuid.uuid4()), "sized", runtime, image,
                       memory_mib=128, vcpus=2, command=["sleep", "1000"])
    xml = xml.replace('<currentMemory unit="KiB">131072</currentMemory>',
                      '<currentMemory unit="KiB">65536</currentMemory>')
    xml = xml.replace('<devices>',
                      '<cputune><shares>512</shares><quota>25000</quota>'
                      '<period>50000</period></cputune>'
                      '<devices>')
    xml = xml.replace('<boot order="1" />',
                      '<boot order="1" /><iotune>'
                      '<read_bytes_sec>10485760</read_bytes_sec>'
                      '<total_iops_sec>300</total_iops_sec></iotune>')
    return xml


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_limits_in_the_cgroup(paths, busybox_oci, runtime):
    """Under runsc too: its sandbox and gofer live in the cgroup.  Where
    systemd is PID 1, runsc's systemd cgroup driver cannot pass per-device
    I/O limits to systemd (it refuses the unit): the driver writes them
    itself (``runsc.Driver._before_start``), and io.max shows them."""
    ctr = create(sized_xml(busybox_oci, runtime), paths=paths)
    try:
        h = ctr.backend.hierarchy
        rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
        # The writable layer's device: its loop device (the layer is
        # mounted in the container's namespace only, once it runs).
        (layer_dev,) = loop.devices_of(os.path.join(
            bundle_of(ctr).storage_dir, "layer.img"))
        rdev = os.stat(layer_dev).st_rdev
        dev = "%d:%d" % (os.major(rdev), os.minor(rdev))
        if h.version == 1:
            mem = h.path(rel, "memory")
            assert int(read(mem + "/memory.limit_in_bytes")) == 128 << 20
            assert int(read(mem + "/memory.soft_limit_in_bytes")) == 64 << 20
            if os.path.exists(mem + "/memory.memsw.limit_in_bytes"):
                # memory+swap == memory: no swap
                assert int(read(mem + "/memory.memsw.limit_in_bytes")) == \
                    128 << 20
            cpu = h.path(rel, "cpu")
            assert read(cpu + "/cpu.shares") == "512"
            assert read(cpu + "/cpu.cfs_period_us") == "50000"
            assert read(cpu + "/cpu.cfs_quota_us") == "50000"  # 25000 x 2
            blk = h.path(rel, "blkio")
            assert "%s 10485760" % dev in read(
                blk + "/blkio.throttle.read_bps_device")
            assert "%s 300" % dev in read(
                blk + "/blkio.throttle.write_iops_device")
            assert "%s 300" % dev in read(
                blk + "/blkio.throttle.read_iops_device")
        else:
            d = h.path(rel)
            assert int(read(d + "/memory.max")) == 128 << 20
            assert int(read(d + "/memory.low")) == 64 << 20
            assert read(d + "/memory.swap.max") == "0"
            assert read(d + "/cpu.max") == "50000 50000"
            io = read(d + "/io.max")
            assert "rbps=10485760" in io and "riops=300" in io
        ctr.sample()
        assert ctr.getStats()["vcpuQuota"] == "50000"
    finally:
        ctr.destroy(gracefulAttempts=0)


def test_io_limits_refused_before_start_leave_nothing(paths, busybox_oci,
                                                      monkeypatch):
    """runsc's driver writes the I/O limits it took out of the config
    between create and start (``_before_start``); the kernel refusing one
    fails the start with the reason, and the created sandbox, its cgroup
    and its files go with it (leakcheck).  Forced here by a line no
    kernel takes, on whatever shape the host has."""
    if not runtimes.probe(paths, only=("runsc",))["runsc"].available:
        pytest.skip("runsc cannot run here")
    prepare = runsc.Driver.prepare

    def with_bad_line(self, bundle, *args, **kwargs):
        config = prepare(self, bundle, *args, **kwargs)
        with open(self._io_max_file(bundle), "w") as f:
            f.write("0:0 nonsense=1\n")
        return config
    monkeypatch.setattr(runsc.Driver, "prepare", with_bad_line)
    with pytest.raises(errors.CannotCreateVM) as e:
        create(sized_xml(busybox_oci, "runsc"), paths=paths)
    assert "cannot set the I/O limits" in str(e.value), e.value


def test_device_limits_as_io_max_lines():
    """The OCI config's per-device throttles, taken out of it, as cgroup
    v2 io.max lines: one per device, every limit of that device on it."""
    resources = {"memory": {"limit": 1}, "blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 7, "minor": 3, "rate": 100},
                                  {"major": 253, "minor": 0, "rate": 5}],
        "throttleWriteIOPSDevice": [{"major": 7, "minor": 3, "rate": 30}]}}
    assert blockio.take_device_limits(resources) == [
        "253:0 rbps=5", "7:3 rbps=100 wiops=30"]
    assert resources == {"memory": {"limit": 1},
                         "blockIO": {"weight": 500}}
    only_devices = {"blockIO": {"throttleWriteBpsDevice": [
        {"major": 7, "minor": 1, "rate": 9}]}}
    assert blockio.take_device_limits(only_devices) == ["7:1 wbps=9"]
    assert only_devices == {}
    assert blockio.take_device_limits({}) == []


def test_io_weight(paths, busybox_oci, caplog):
    """<blkiotune><weight> on cgroup v2 is the container's io weight (runc
    scales blkio's 10..1000 to io.weight's 1..10000); where the kernel has
    no weighted I/O scheduler (cgroup v1 without CFQ/BFQ, as on these CI
    machines) it is ignored with a warning."""
    xml = domxml.build(str(uuid.uuid4()), "weighted", "runc", busybox_oci,
                       memory_mib=64, command=["sleep", "1000"])
    xml = xml.replace("<devices>", "<blkiotune><weight>500</weight>"
                      "</blkiotune><devices>")
    ctr = create(xml, paths=paths)
    try:
        h = cgroups.Hierarchy()
        rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
        if blockio.weight_supported(h):
            d = h.path(rel) if h.version == 2 else h.path(rel, "blkio")
            names = ("io.bfq.weight", "io.weight") if h.version == 2 else \
                ("blkio.bfq.weight", "blkio.weight")
            found = [n for n in names if os.path.exists(os.path.join(d, n))]
            assert found, "%s: no weight file in %s" % (host_shape(), d)
            text = read(os.path.join(d, found[0]))
            want = "4950" if found[0] == "io.weight" else "500"
            assert text.split()[-1] == want, (host_shape(), found[0], text)
        else:
            assert "<blkiotune><weight> ignored" in caplog.text, host_shape()
    finally:
        ctr.destroy(gracefulAttempts=0)

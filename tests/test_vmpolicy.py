"""VM.updateVmPolicy on a running container (issue #37 item 3).

Engine's flow: once a VM is Up, and on each CPU or storage QoS edit,
VmSlaPolicyCommand (bll) sends VM.updateVmPolicy built by vdsbroker's
UpdateVmPolicyVDSCommand.build: ``vcpuLimit`` as a string, and for each
disk its four UUIDs with IoTuneUtils.ioTuneMapFrom's six limits (0:
unlimited) as ``maximum`` and ``guaranteed``.  API.py's VM.updateVmPolicy
drops ``vmId`` and calls ``vm.updateVmPolicy(params)``.  The limits land
in the container's cgroup, as create puts the XML's (test_limits).
"""

import os
import uuid

import pytest

from vdsm_container import errors
from vdsm_container.container import create
from vdsm_container.host import qos
from vdsm_container.linux import loop
from vdsm_container.spec import domxml

from .conftest import bundle_of, driver_of

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]

SD, SP = str(uuid.uuid4()), str(uuid.uuid4())
IMAGE_IMG, IMAGE_VOL = str(uuid.uuid4()), str(uuid.uuid4())


def read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def volume(fs_volume, tmp_path):
    """The data volume where a file domain keeps it:
    <sd>/images/<imageID>/<volumeID>."""
    img, vol = str(uuid.uuid4()), str(uuid.uuid4())
    d = tmp_path / SD / "images" / img
    d.mkdir(parents=True)
    os.rename(fs_volume, str(d / vol))
    return str(d / vol), img, vol


def vm_xml(image, volume, mounted=True):
    xml = domxml.build(str(uuid.uuid4()), "qos", "runc", image,
                       command=["sleep", "1000"], vcpus=2,
                       disks=[(volume, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"}
                       if mounted else None)
    # The image disk's ids as Engine writes them (LibvirtVmXmlBuilder
    # writeDiskMetadata): vdsm's findDriveByUUIDs matches them.
    ids = "".join("<ovirt-vm:%s>%s</ovirt-vm:%s>" % (k, v, k) for k, v in (
        ("domainID", SD), ("poolID", SP), ("imageID", IMAGE_IMG),
        ("volumeID", IMAGE_VOL)))
    return xml.replace(
        "</ovirt-vm:vm>", '<ovirt-vm:device devtype="disk" name="sda">%s'
        "</ovirt-vm:device></ovirt-vm:vm>" % ids)


def limits(total_bytes=0, read_bytes=0, write_bytes=0, total_iops=0,
           read_iops=0, write_iops=0):
    """IoTuneUtils.ioTuneMapFrom: all six keys, 0 for unset."""
    return {"total_bytes_sec": total_bytes, "total_iops_sec": total_iops,
            "read_bytes_sec": read_bytes, "read_iops_sec": read_iops,
            "write_bytes_sec": write_bytes, "write_iops_sec": write_iops}


def io_tune(img, vol, maximum):
    return {"domainID": SD, "poolID": SP, "imageID": img, "volumeID": vol,
            "maximum": maximum, "guaranteed": dict(maximum)}


def dev_of(path):
    rdev = os.stat(loop.devices_of(path)[0]).st_rdev
    return "%d:%d" % (os.major(rdev), os.minor(rdev))


def held(ctr, dev):
    """(cpu (quota, period), io limits of ``dev``) read from the cgroup."""
    h = ctr.backend.hierarchy
    rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
    if h.version == 1:
        cpu = h.path(rel, "cpu")
        quota = int(read(cpu + "/cpu.cfs_quota_us"))
        period = int(read(cpu + "/cpu.cfs_period_us"))
    else:
        quota, period = read(h.path(rel) + "/cpu.max").split()
        quota, period = (-1 if quota == "max" else int(quota)), int(period)
    return (quota, period), qos.read_io(h, rel, dev)


def test_policy_applied_and_edited(paths, busybox_oci, volume):
    path, img, vol = volume
    ctr = create(vm_xml(busybox_oci, path), paths=paths)
    try:
        layer = dev_of(os.path.join(bundle_of(ctr).storage_dir, "layer.img"))
        data = dev_of(path)
        cpus = os.cpu_count()
        # After the start: CPU QoS 50 %, storage QoS on both disks.
        assert ctr.updateVmPolicy({
            "vcpuLimit": "50",
            "ioTune": [io_tune(IMAGE_IMG, IMAGE_VOL, limits(
                read_bytes=10 << 20, total_iops=300)),
                io_tune(img, vol, limits(write_bytes=1 << 20))]},
        )["status"]["code"] == 0
        # 04-cputune.policy: 100 ms x host CPUs x 50 % in all.
        cpu, io = held(ctr, layer)
        assert cpu == (50000 * cpus, 100000)
        assert io == {"rbps": 10 << 20, "wbps": 0, "riops": 300,
                      "wiops": 300}
        assert held(ctr, data)[1] == {"rbps": 0, "wbps": 1 << 20,
                                      "riops": 0, "wiops": 0}
        # A QoS edit: the image disk's limits lifted, the CPU at 1 %.
        ctr.updateVmPolicy({"vcpuLimit": "1", "ioTune": [
            io_tune(IMAGE_IMG, IMAGE_VOL, limits())]})
        cpu, io = held(ctr, layer)
        assert cpu == qos.cpu_max(1) and cpu[0] * 100 == cpu[1] * cpus
        assert io == {"rbps": 0, "wbps": 0, "riops": 0, "wiops": 0}
        assert held(ctr, data)[1]["wbps"] == 1 << 20     # left as it was
        assert ctr.getStats()["status"] == "Up"
    finally:
        ctr.destroy(gracefulAttempts=0)


def test_what_cannot_apply_is_refused_by_name(paths, busybox_oci, volume):
    path, img, vol = volume
    ctr = create(vm_xml(busybox_oci, path, mounted=False), paths=paths)
    try:
        before = held(ctr, dev_of(os.path.join(
            bundle_of(ctr).storage_dir, "layer.img")))
        bad = (
            ({}, errors.MissingParameter, "empty policy"),
            ({"vcpuLimit": "lots"}, errors.InvalidParameter, "lots"),
            ({"vcpuLimit": "0"}, errors.InvalidParameter, "1 to 100"),
            ({"ioTune": [io_tune(str(uuid.uuid4()), vol, limits())]},
             errors.InvalidParameter, "no disk of the VM"),
            ({"ioTune": [{"domainID": SD, "maximum": {}}]},
             errors.MissingParameter, "poolID"),
            ({"ioTune": [io_tune(IMAGE_IMG, IMAGE_VOL, limits(
                total_bytes=1, read_bytes=1))]},
             errors.InvalidParameter, "total_bytes_sec with"),
        )
        for params, error, text in bad:
            with pytest.raises(error) as e:
                ctr.updateVmPolicy(params)
            assert text in str(e.value), (params, e.value)
        assert held(ctr, dev_of(os.path.join(
            bundle_of(ctr).storage_dir, "layer.img"))) == before
        # The data disk isn't mounted (no containerVolumes): its limit
        # can't apply and is named; the CPU limit applies.
        with pytest.raises(errors.UnsupportedOperation) as e:
            ctr.updateVmPolicy({"vcpuLimit": "50", "ioTune": [
                io_tune(img, vol, limits(write_bytes=1 << 20))]})
        assert "ioTune of disk sdb" in str(e.value)
        assert held(ctr, "0:0")[0] == qos.cpu_max(50)
    finally:
        ctr.destroy(gracefulAttempts=0)
    with pytest.raises(errors.UnsupportedOperation) as e:
        ctr.updateVmPolicy({"vcpuLimit": "50"})
    assert "container is Down" in str(e.value)

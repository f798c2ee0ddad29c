"""Container VMs on an iSCSI block domain (a tgt target on the loopback;
vdsm's iscsiadm login, its multipath map, LVMVolumeGroup.create, sanlock
leases on the VG's ids LV), built over JSON-RPC in Engine's order
(tests/live/storage.py, servers.py).

The container's image disk is an LV, reached as Engine's XML gives it
(``<disk type=block>``, ``<source dev>`` under /rhev/data-center/mnt/blockSD,
``ovirt-vm:device`` ids); vdsm's prepareVolumePath activates it and the
plugin's teardown deactivates it (``lvs``).  Where the kernel lacks
device-mapper or iscsi_tcp (this CI machine's), the tests skip with
the reason; they run in the systemd + cgroup v2 VM (make check-el9-live).
"""

import os
import subprocess
import uuid

import pytest

from . import servers, storage
from .conftest import connect, finish_dc, stats
from .test_storage import _create, _destroy


MIB = storage.MIB


def _dm_name(vg):
    """device-mapper's name prefix of ``vg``'s LVs (its ``-`` doubled)."""
    return vg.replace("-", "--") + "-"


@pytest.fixture(scope="module")
def block_dc():
    why = servers.missing("iscsi")
    if why:
        pytest.skip("no iSCSI block domain here: " + why)
    before = servers.dm_devices()
    target = servers.IscsiTarget()
    try:
        cli = connect()
        center = storage.BlockDataCenter(cli, target)
        try:
            center.build()
            yield center
        finally:
            finish_dc(center, cli)
            # What vdsm keeps after the pool's disconnect (the domain's
            # special LVs it activated: ids, leases, metadata, ...) goes as
            # an admin removing the LUN would take it; then the multipath
            # map and the session vdsm's disconnectStorageServer logged out.
            if center.guid:
                subprocess.run(["vgchange", "-an", "--config",
                                'devices { use_devicesfile=0 }',
                                center.sd_id], stdout=subprocess.DEVNULL)
                subprocess.run(["multipath", "-f", center.guid],
                               stdout=subprocess.DEVNULL)
            assert target.iqn not in servers.iscsi_sessions()
    finally:
        target.remove()
    assert servers.dm_devices() <= before


def _device_size(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def lv_image(block_dc, image):
    """The busybox archive in an LV whose tail past it is random bytes (an
    LV of 128 MiB extents reusing extents a removed disk wrote): the
    archive written at the start as an upload writes it."""
    dc = block_dc
    img_id, vol_id = dc.create_volume(storage.volume_size_for(image))
    path = dc.prepare(img_id, vol_id)
    try:
        size = _device_size(path)
        chunk = os.urandom(MIB)
        with open(path, "r+b") as f:
            for _ in range(size // MIB):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    finally:
        dc.teardown(img_id, vol_id)
    dc.upload(img_id, vol_id, image)
    assert not dc.lv_active(vol_id)
    return img_id, vol_id, size


def test_block_domain_is_up_with_sanlock_leases(block_dc, cli):
    dc = block_dc
    sd = cli.StorageDomain.getInfo(storagedomainID=dc.sd_id)
    assert (sd["type"], sd["class"], sd["version"]) == ("ISCSI", "Data",
                                                         "5")
    spm = cli.StoragePool.getSpmStatus(storagepoolID=dc.pool_id)
    assert spm["spmStatus"] == "SPM"
    # The domain's lockspace on its ids LV, and the SPM's lease on its
    # leases LV, held by sanlock for this host.
    out = subprocess.run(["sanlock", "client", "status"],
                         stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    assert "s %s:%d:/dev/%s/ids:0" % (dc.sd_id, storage.HOST_ID,
                                      dc.sd_id) in out, out
    assert "r %s:SDM:/dev/%s/leases:" % (dc.sd_id, dc.sd_id) in out, out


def test_container_up_from_an_lv_with_a_random_tail(block_dc, cli, events,
                                                    lv_image, image):
    """Up from the LV; the LV active while it runs, inactive again
    (``lvs``) and its run link gone after destroy."""
    dc = block_dc
    img_id, vol_id, size = lv_image
    assert size % (128 * MIB) == 0 and size > os.path.getsize(image)
    vm_id = _create(cli, dc, {"sda": (img_id, vol_id)})
    try:
        events.wait_status(vm_id, "Up")
        assert dc.lv_active(vol_id)
        # A block domain's image run dir holds a link per volume to its LV
        # (blockSD.BlockStorageDomain.createImageLinks).
        assert os.path.islink(os.path.join(
            storage.prepared_link(dc, img_id), vol_id))
        # The tail the container started with past the archive: random.
        with open(dc.volume_path(img_id, vol_id), "rb") as f:
            f.seek(size - MIB)
            assert f.read(4096) != bytes(4096)
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert not dc.lv_active(vol_id)
    assert not os.path.lexists(storage.prepared_link(dc, img_id))


def test_crashed_container_has_its_lv_deactivated(block_dc, cli, events,
                                                  lv_image):
    dc = block_dc
    img_id, vol_id, _ = lv_image
    vm_id = _create(cli, dc, {"sda": (img_id, vol_id)})
    try:
        events.wait_status(vm_id, "Up")
        assert dc.lv_active(vol_id)
        os.kill(int(stats(cli, vm_id)["pid"]), 9)
        events.wait_status(vm_id, "Down")
        assert not dc.lv_active(vol_id)
        assert not os.path.lexists(storage.prepared_link(dc, img_id))
    finally:
        _destroy(cli, vm_id)


def test_missing_lv_is_vdsm_error_naming_it(block_dc, cli, events,
                                            lv_image):
    """A second disk whose LV the domain doesn't have: Image.prepare
    fails, the container is Down with vdsm's error naming the volume, the
    image disk's LV (prepared first) deactivated again."""
    dc = block_dc
    img_id, vol_id, _ = lv_image
    missing = str(uuid.uuid4())
    vm_id = _create(cli, dc, {"sda": (img_id, vol_id),
                              "sdb": (str(uuid.uuid4()), missing)})
    try:
        down = events.wait_status(vm_id, "Down")
        assert missing in down.get("exitMessage", ""), down
        assert not dc.lv_active(vol_id)
        assert not os.path.lexists(storage.prepared_link(dc, img_id))
    finally:
        _destroy(cli, vm_id)

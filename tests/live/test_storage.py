"""vdsm's storage side live (irs on): a data center built over JSON-RPC as
Engine builds one (tests/live/storage.py), on a LOCALFS domain over a
loop-mounted ext4, and container VMs whose disks are its volumes.

The disks reach the plugin as Engine's XML gives them (ovirt-vm:device
poolID/domainID/imageID/volumeID), and vdsm's clientIF.prepareVolumePath /
teardownVolumePath (the real HSM: Image.prepare, its run links) prepare and
release them.
"""

import os
import subprocess
import time
import uuid

import pytest
from vdsm.client import ServerError

from . import storage
from .conftest import (POLITE, VDSM_LOG, WAIT, connect, container_xml,
                       services, stats, vm_list)


MIB = storage.MIB
prepared_link = storage.prepared_link


@pytest.fixture(scope="module")
def image_volume(dc, image):
    """The busybox archive uploaded into a volume of the domain."""
    img_id, vol_id = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img_id, vol_id, image)
    return img_id, vol_id


def test_data_center_is_up_with_this_host_as_spm(dc, cli):
    info = cli.StoragePool.getInfo(storagepoolID=dc.pool_id)
    assert info["info"]["master_uuid"] == dc.sd_id
    assert info["dominfo"][dc.sd_id]["status"] == "Active"
    spm = cli.StoragePool.getSpmStatus(storagepoolID=dc.pool_id)
    assert spm["spmStatus"] == "SPM"
    sd = cli.StorageDomain.getInfo(storagedomainID=dc.sd_id)
    assert (sd["type"], sd["class"], sd["version"]) == ("LOCALFS", "Data",
                                                         "5")
    # The domain's files are reached through the real ioprocess helper.
    out = subprocess.run(["pgrep", "-u", "vdsm", "-f", "libexec/ioprocess"],
                         stdout=subprocess.PIPE, text=True).stdout
    assert out.split(), "no ioprocess helper runs as user vdsm"


def test_container_up_from_a_volume_and_torn_down_at_destroy(
        dc, cli, events, image_volume):
    img_id, vol_id = image_volume
    vm_id = str(uuid.uuid4())
    xml = container_xml(vm_id, "live-sd-%s" % vm_id[:8], "/nonexistent",
                        POLITE, volumes={"sda": image_volume}, dc=dc)
    cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(prepared_link(dc, img_id))
        assert stats(cli, vm_id)["status"] == "Up"
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert vm_id not in vm_list(cli)
    assert not os.path.lexists(prepared_link(dc, img_id))


def _create(cli, dc, disks, command=POLITE, custom=None):
    vm_id = str(uuid.uuid4())
    xml = container_xml(vm_id, "live-sd-%s" % vm_id[:8], "/nonexistent",
                        command, custom, volumes=disks, dc=dc)
    cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    return vm_id


def _destroy(cli, vm_id):
    try:
        cli.VM.destroy(vmID=vm_id)
    except Exception:
        pass


def _debugfs_cat(path, name):
    return subprocess.run(["debugfs", "-R", "cat /%s" % name, path],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True).stdout


def test_second_disk_is_a_container_volume(dc, cli, events, image_volume):
    """A second disk of the domain, holding an ext4 as a guest would have
    made it, mounted where containerVolumes says; the container's write is
    on the volume after destroy, and both volumes are torn down."""
    data_img, data_vol = dc.create_volume(32 * storage.MIB)
    path = dc.prepare(data_img, data_vol)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)
    finally:
        dc.teardown(data_img, data_vol)
    command = ["sh", "-c", 'sleep 100000 & echo written-inside > '
               '/var/lib/data/marker && trap "exit 0" TERM && wait']
    vm_id = _create(cli, dc, {"sda": image_volume,
                              "sdb": (data_img, data_vol)}, command,
                    {"containerVolumes": "ua-%s:/var/lib/data" % data_img})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(prepared_link(dc, data_img))
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert not os.path.lexists(prepared_link(dc, data_img))
    assert not os.path.lexists(prepared_link(dc, image_volume[0]))
    path = dc.volume_path(data_img, data_vol)
    assert _debugfs_cat(path, "marker").strip() == "written-inside"


def test_archive_in_a_larger_volume_whose_tail_is_not_zero(dc, cli, events,
                                                           image):
    """An upload writes the archive at the volume's start and leaves the
    rest as it was: here random bytes (a block volume's old extents)."""
    size = storage.volume_size_for(image) + 4 * storage.MIB
    img_id, vol_id = dc.create_volume(size)
    path = dc.prepare(img_id, vol_id)
    try:
        with open(path, "r+b") as f:
            f.write(os.urandom(size))
    finally:
        dc.teardown(img_id, vol_id)
    dc.upload(img_id, vol_id, image)
    with open(dc.volume_path(img_id, vol_id), "rb") as f:
        f.seek(size - 4096)
        assert f.read(4096) != bytes(4096)
    vm_id = _create(cli, dc, {"sda": (img_id, vol_id)})
    try:
        events.wait_status(vm_id, "Up")
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert not os.path.lexists(prepared_link(dc, img_id))


def test_crashed_container_has_its_volumes_torn_down(dc, cli, events,
                                                     image_volume):
    vm_id = _create(cli, dc, {"sda": image_volume})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(prepared_link(dc, image_volume[0]))
        os.kill(int(stats(cli, vm_id)["pid"]), 9)
        events.wait_status(vm_id, "Down")
        assert not os.path.lexists(prepared_link(dc, image_volume[0]))
    finally:
        _destroy(cli, vm_id)


def test_missing_volume_is_vdsm_error_naming_the_disk(dc, cli, events,
                                                     image_volume):
    """Image.prepare failing (a volume the domain doesn't have): Down with
    vdsm's error, which names the volume; nothing left prepared."""
    missing = str(uuid.uuid4())
    vm_id = _create(cli, dc, {"sda": image_volume,
                              "sdb": (str(uuid.uuid4()), missing)})
    try:
        down = events.wait_status(vm_id, "Down")
        assert missing in down.get("exitMessage", ""), down
        assert not os.path.lexists(prepared_link(dc, image_volume[0]))
    finally:
        _destroy(cli, vm_id)



def test_pool_not_connected_is_vdsm_error_naming_the_disk(dc, cli, events,
                                                         image_volume):
    """The host's pool disconnected (a host Engine has not connected yet,
    or whose domain is gone): Image.prepare fails, the container is Down
    with vdsm's error naming the volume, nothing prepared; connected again
    as Engine does, a container starts."""
    dc.stop_spm()
    cli.StoragePool.disconnect(storagepoolID=dc.pool_id,
                               hostID=storage.HOST_ID, scsiKey=dc.pool_id)
    dc.connected = False
    try:
        vm_id = _create(cli, dc, {"sda": image_volume})
        try:
            down = events.wait_status(vm_id, "Down")
            assert image_volume[1] in down.get("exitMessage", ""), down
            assert not os.path.lexists(prepared_link(dc, image_volume[0]))
        finally:
            _destroy(cli, vm_id)
    finally:
        dc.connect_pool()
        dc.start_spm()
    vm_id = _create(cli, dc, {"sda": image_volume})
    try:
        events.wait_status(vm_id, "Up")
    finally:
        cli.VM.destroy(vmID=vm_id)



def test_domain_in_maintenance_is_vdsm_error_naming_the_disk(
        dc, cli, events, image_volume):
    """A second data domain attached to the pool and activated, a volume
    on it, then put in maintenance as Engine's DeactivateStorageDomain
    Command does on a host (StorageDomain.deactivate by the SPM, then
    disconnectStorageServer): a container whose second disk is that
    volume is Down with vdsm's error naming the disk (its domain and
    volume ids), and the first disk, prepared before it, is torn down."""
    fs = storage.LocalFS(size_mib=256)
    try:
        other = storage.DataCenter(cli, fs.path)
        other.pool_id = dc.pool_id
        other.connect_server()
        cli.StorageDomain.create(
            storagedomainID=other.sd_id, domainType=other.domain_type,
            typeArgs=other.type_args(), name="live-sd-2",
            domainClass=storage.DATA_DOMAIN, version=storage.DOMAIN_VERSION,
            blockSize=other.block_size, maxHosts=250)
        cli.StorageDomain.attach(storagedomainID=other.sd_id,
                                 storagepoolID=dc.pool_id)
        cli.StorageDomain.activate(storagedomainID=other.sd_id,
                                   storagepoolID=dc.pool_id)
        img_id, vol_id = other.create_volume(MIB)
        info = cli.StoragePool.getInfo(storagepoolID=dc.pool_id)
        assert info["dominfo"][other.sd_id]["status"] == "Active"
        cli.StorageDomain.deactivate(
            storagedomainID=other.sd_id, storagepoolID=dc.pool_id,
            masterSdUUID=dc.sd_id, masterVersion=1)
        cli.StoragePool.disconnectStorageServer(
            storagepoolID=storage.BLANK_UUID, domainType=other.domain_type,
            connectionParams=[other.connection])
        info = cli.StoragePool.getInfo(storagepoolID=dc.pool_id)
        assert info["dominfo"][other.sd_id]["status"] == "Attached"

        vm_id = _create(cli, dc, {"sda": image_volume,
                                  "sdb": (img_id, vol_id, other)})
        try:
            # The second disk's ids are the other domain's.
            down = events.wait_status(vm_id, "Down")
            message = down.get("exitMessage", "")
            assert vol_id in message and other.sd_id in message, down
            assert not os.path.lexists(prepared_link(dc, image_volume[0]))
            assert not os.path.lexists(prepared_link(other, img_id))
        finally:
            _destroy(cli, vm_id)
        # Out of maintenance as Engine does it (connect, activate): the
        # pool is as before for the tests after this one.
        other.connect_server()
        cli.StorageDomain.activate(storagedomainID=other.sd_id,
                                   storagepoolID=dc.pool_id)
        cli.StorageDomain.deactivate(
            storagedomainID=other.sd_id, storagepoolID=dc.pool_id,
            masterSdUUID=dc.sd_id, masterVersion=1)
        cli.StorageDomain.detach(
            storagedomainID=other.sd_id, storagepoolID=dc.pool_id,
            masterSdUUID=dc.sd_id, masterVersion=1, force=False)
        cli.StoragePool.disconnectStorageServer(
            storagepoolID=storage.BLANK_UUID, domainType=other.domain_type,
            connectionParams=[other.connection])
    finally:
        fs.remove()


def _log_since(offset):
    with open(VDSM_LOG, errors="replace") as f:
        f.seek(offset)
        return f.read()


def test_vdsmd_restart_recovers_containers_with_volumes_prepared(
        dc, events, image_volume):
    """vdsmd restarts with a container running: vdsm's recovery waits for
    the pool (clientIF._waitForStoragePool), Engine reconnects it
    (connectStorageServer, StoragePool.connect, spmStart), recovery
    prepares the container's volumes again (_preparePathsForRecoveredVMs):
    the recovered container holds them, its destroy tears them down."""
    cli = dc.cli
    vm_id = _create(cli, dc, {"sda": image_volume})
    try:
        events.wait_status(vm_id, "Up")
        offset = os.path.getsize(VDSM_LOG)
        services("restart", "vdsmd")
        events.subscribe()
        dc.cli = cli = connect()
        dc.connected = dc.spm = False
        dc.connect_server()
        dc.connect_pool()
        dc.start_spm()
        deadline = time.monotonic() + WAIT
        while "recovery: completed" not in _log_since(offset):
            assert time.monotonic() < deadline, "recovery never completed"
            time.sleep(0.2)
        assert "preparing paths for domain %s" % vm_id in _log_since(offset)
        assert stats(cli, vm_id)["status"] == "Up"
        assert os.path.islink(prepared_link(dc, image_volume[0]))
    finally:
        _destroy(cli, vm_id)
    assert not os.path.lexists(prepared_link(dc, image_volume[0]))


def test_spm_not_started(dc, events, image_volume):
    """Without the SPM role, Volume.create (an upload's first step) fails
    with vdsm's error and leaves no image; a container still starts from
    an existing volume (preparing is HSM's, on every host).

    The module's last test: the SPM is not started again (spmStart after
    spmStop on the same connected pool failed in the VM with vdsm's "Task
    id already in use", taskManager._queueTask reloading the master
    domain's dumped tasks); the dc fixture's teardown disconnects the pool
    without an SPM.  dc.cli: the restart test before it reconnected."""
    cli = dc.cli
    dc.stop_spm()
    img_id = str(uuid.uuid4())
    with pytest.raises(ServerError) as e:
        cli.Volume.create(
            volumeID=str(uuid.uuid4()), storagepoolID=dc.pool_id,
            storagedomainID=dc.sd_id, imageID=img_id, size=str(MIB),
            volFormat=storage.RAW_FORMAT, preallocate=storage.SPARSE_VOL,
            diskType="DATA", desc="", srcImgUUID=storage.BLANK_UUID,
            srcVolUUID=storage.BLANK_UUID)
    assert "SPM" in str(e.value) or "spm" in str(e.value), e.value
    assert not os.path.exists(os.path.join(dc.mount_dir(), "images",
                                           img_id))
    vm_id = _create(cli, dc, {"sda": image_volume})
    try:
        events.wait_status(vm_id, "Up")
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert not os.path.lexists(prepared_link(dc, image_volume[0]))

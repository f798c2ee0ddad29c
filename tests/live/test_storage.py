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
import uuid

import pytest

from . import storage
from .conftest import POLITE, connect, container_xml, stats, vm_list

RUN_STORAGE = "/run/vdsm/storage"     # vdsm's sc.P_VDSM_STORAGE


def prepared_link(dc, img_id):
    """Where vdsm's prepareImage links a prepared image (sd.py
    ``getImageRundir``; removed by teardownImage)."""
    return os.path.join(RUN_STORAGE, dc.sd_id, img_id)


@pytest.fixture(scope="module")
def dc():
    fs = storage.LocalFS()
    cli = connect()
    center = storage.DataCenter(cli, fs.path)
    try:
        center.build()
        yield center
    finally:
        try:
            center.destroy()
        finally:
            cli.close()
            fs.remove()


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
    xml = storage.with_volume_disks(
        container_xml(vm_id, "live-sd-%s" % vm_id[:8], "/nonexistent",
                      POLITE), dc, {"sda": image_volume})
    cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(prepared_link(dc, img_id))
        assert stats(cli, vm_id)["status"] == "Up"
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert vm_id not in vm_list(cli)
    assert not os.path.lexists(prepared_link(dc, img_id))

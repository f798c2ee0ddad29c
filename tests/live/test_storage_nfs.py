"""A container VM on an NFS data domain, the VM exporting to itself
(servers.NfsExport: nfs-kernel-server), the data center built over
JSON-RPC in Engine's order (storage.NfsDataCenter: domainType 1, the
connection's protocol_version/retrans/timeout as Engine sends them, vdsm's
own NFS mount under /rhev/data-center/mnt).

Where the kernel has no NFS server (this CI machine's) the test skips with
the reason; it runs in the systemd + cgroup v2 VM (make check-el9-live).
"""

import os

import pytest

from . import servers, storage
from .conftest import connect, finish_dc
from .test_storage import _create


@pytest.fixture(scope="module")
def nfs_dc():
    why = servers.missing("nfs")
    if why:
        pytest.skip("no NFS domain here: " + why)
    export = servers.NfsExport()
    try:
        cli = connect()
        center = storage.NfsDataCenter(cli, export.remote)
        try:
            center.build()
            yield center
        finally:
            finish_dc(center, cli)
        # disconnectStorageServer unmounted the export.
        with open("/proc/mounts") as f:
            assert export.path not in f.read()
    finally:
        export.remove()


def test_container_up_from_an_nfs_volume(nfs_dc, cli, events, image):
    """Up from a volume of the NFS domain (vdsm's nfs4 mount of the
    export); destroy leaves nothing prepared."""
    dc = nfs_dc
    img_id, vol_id = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img_id, vol_id, image)
    with open("/proc/mounts") as f:
        mounts = [line.split() for line in f]
    mnt = os.path.dirname(dc.mount_dir())
    assert [m[2] for m in mounts if m[1] == mnt] == ["nfs4"], mounts
    vm_id = _create(cli, dc, {"sda": (img_id, vol_id)})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(storage.prepared_link(dc, img_id))
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert not os.path.lexists(storage.prepared_link(dc, img_id))

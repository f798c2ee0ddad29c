"""The whole loop on the live host's storage domain: an image imported
into a disk as on Engine (``ovirt-container import`` through the fake
Engine and a real ovirt-imageio daemon: tests/live/import_disk.py), the
disk a volume of the LOCALFS domain (tests/live/storage.py's data center)
that the fake Engine creates, prepares for the transfer and tears down at
finalize through vdsm's JSON-RPC; then vdsm's VM.create with Engine's
domain XML naming that volume brings the container Up, and its destroy
leaves nothing prepared."""

import json
import os
import subprocess
import tempfile
import uuid

import pytest

from . import storage
from .conftest import POLITE, REPO, container_xml, stats, vm_list

VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
IMPORT_DISK = os.path.join(REPO, "tests", "live", "import_disk.py")


def _has_tools():
    if not os.access(VENV_PYTHON, os.X_OK):
        return False
    r = subprocess.run([VENV_PYTHON, "-c", "import ovirtsdk4, ovirt_imageio"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


class HostSide:
    """The host calls import_disk.py's fake Engine makes, done on ``dc``
    with vdsm's client; each one recorded, in order."""

    def __init__(self, dc):
        self.dc = dc
        self.calls = []

    def create_volume(self, img_id, vol_id, size, sparse):
        self.dc.create_volume(
            size, storage.SPARSE_VOL if sparse else storage.PREALLOCATED_VOL,
            img_id=img_id, vol_id=vol_id)

    def prepare(self, img_id, vol_id):
        path = self.dc.prepare(img_id, vol_id)
        # The ticket's file is the prepared image's (its run link's) path.
        assert os.path.islink(storage.prepared_link(self.dc, img_id))
        return path

    def teardown(self, img_id, vol_id):
        self.dc.teardown(img_id, vol_id)

    def serve(self, proc):
        """Answer the child's calls until its last line: that line."""
        for line in proc.stdout:
            message = json.loads(line)
            if "call" not in message:
                return message
            name, args = message["call"], message["args"]
            self.calls.append((name, args))
            try:
                answer = {"ok": getattr(self, name)(*args)}
            except Exception as e:
                answer = {"error": "%s: %s" % (type(e).__name__, e)}
            proc.stdin.write(json.dumps(answer) + "\n")
            proc.stdin.flush()
        return {"failed": "import_disk.py ended without a result"}


@pytest.fixture(scope="module")
def imported(image, dc, tmp_path_factory):
    if not _has_tools():
        pytest.skip("the project's venv with ovirt-engine-sdk and "
                    "ovirt-imageio is not here (make deps makes it)")
    where = str(tmp_path_factory.mktemp("live-import"))
    host = HostSide(dc)
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([VENV_PYTHON, IMPORT_DISK, image, where],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True)
        try:
            last = host.serve(proc)
        finally:
            proc.stdin.close()
            rc = proc.wait()
            proc.stdout.close()
        err.seek(0)
        assert rc == 0 and "done" in last, (last, err.read())
    img_id, vol_id = last["done"]
    return host, img_id, vol_id


def test_import_creates_prepares_and_tears_down_a_volume(imported, dc, cli):
    host, img_id, vol_id = imported
    names = [name for name, _ in host.calls]
    assert names == ["create_volume", "prepare", "teardown"], host.calls
    size = host.calls[0][1][2]
    assert size % 2 ** 20 == 0      # the tool's whole MiB
    info = cli.Volume.getInfo(storagepoolID=dc.pool_id,
                              storagedomainID=dc.sd_id, imageID=img_id,
                              volumeID=vol_id)
    assert (info["legality"], info["format"]) == ("LEGAL", "RAW"), info
    assert int(info["capacity"]) == size
    # finalize tore the image down: no run link left.
    assert not os.path.lexists(storage.prepared_link(dc, img_id))
    # The upload is on the volume: an OCI archive (a tar, whose first
    # member is at offset 0 with "ustar" at 257).
    with open(dc.volume_path(img_id, vol_id), "rb") as f:
        assert f.read(512)[257:262] == b"ustar"


def test_imported_volume_runs_through_vdsm(imported, dc, cli, events):
    _, img_id, vol_id = imported
    vm_id = str(uuid.uuid4())
    xml = container_xml(vm_id, "live-imported", "/nonexistent", POLITE,
                        volumes={"sda": (img_id, vol_id)}, dc=dc)
    cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    try:
        events.wait_status(vm_id, "Up")
        assert os.path.islink(storage.prepared_link(dc, img_id))
        st = stats(cli, vm_id)
        assert st["status"] == "Up"
        assert os.path.exists("/proc/%s/root/bin/busybox" % st["pid"])
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert vm_id not in vm_list(cli)
    assert not os.path.lexists(storage.prepared_link(dc, img_id))

"""From an image to an Up container VM through the live vdsmd: the image
is imported into a disk as on Engine (``ovirt-container import``, the fake
Engine and a real ovirt-imageio daemon: tests/live/import_disk.py), and
vdsm's VM.create with Engine's domain XML naming that disk brings the
container Up.  This host runs vdsm without a storage domain (irs off), so
the disk is the file the fake Engine's file domain holds."""

import os
import subprocess
import uuid

import pytest

from .conftest import POLITE, REPO, container_xml, stats

VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")


def _has_tools():
    if not os.access(VENV_PYTHON, os.X_OK):
        return False
    r = subprocess.run([VENV_PYTHON, "-c", "import ovirtsdk4, ovirt_imageio"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


@pytest.fixture(scope="module")
def imported(image, tmp_path_factory):
    if not _has_tools():
        pytest.skip("the project's venv with ovirt-engine-sdk and "
                    "ovirt-imageio is not here (make deps makes it)")
    where = str(tmp_path_factory.mktemp("live-import"))
    r = subprocess.run([VENV_PYTHON, os.path.join(REPO, "tests", "live",
                                                  "import_disk.py"),
                        image, os.path.join(where, "run")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_imported_disk_runs_through_vdsm(imported, made, cli, events):
    # skopeo rewrote the archive (import copies it), so the disk holds an
    # archive of the image, not the one made.image is.
    assert os.path.getsize(imported) % 2 ** 20 == 0
    vm_id = str(uuid.uuid4())
    made.vm_ids.append(("container", vm_id))
    cli.VM.create(vmID=vm_id, vmParams={"xml": container_xml(
        vm_id, "live-imported", imported, POLITE)})
    assert events.wait_status(vm_id, "Up")["status"] == "Up"
    st = stats(cli, vm_id)
    assert os.path.exists("/proc/%s/root/bin/busybox" % st["pid"])
    cli.VM.destroy(vmID=vm_id)
    assert events.wait_status(vm_id, "Down")["status"] == "Down"

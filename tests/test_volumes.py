"""containerVolumes: the VM's other disks mounted into the container."""

import subprocess
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import domxml
from vdsm_container import errors
from vdsm_container.container import Container, create

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


@pytest.fixture
def fs_volume(tmp_path):
    """A raw file volume holding an ext4 filesystem, as on a file domain."""
    path = str(tmp_path / "volume.raw")
    with open(path, "wb") as f:
        f.truncate(16 * 1024 ** 2)
    subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)
    return path


def read_volume(path, name, tmp_path):
    mp = tmp_path / ("check-%s" % uuid.uuid4().hex[:6])
    mp.mkdir()
    subprocess.run(["mount", "-o", "loop,ro", path, str(mp)], check=True)
    try:
        return (mp / name).read_text() if (mp / name).exists() else None
    finally:
        subprocess.run(["umount", str(mp)], check=True)


def vm_with_volume(image, volume, readonly, command):
    return domxml.build(str(uuid.uuid4()), "vol", "runc", image,
                        command=command, disks=[(volume, "data", readonly)],
                        custom={"containerVolumes": "data:/srv/data"})


def wait_down(ctr):
    deadline = time.monotonic() + 10
    while ctr.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.05)
    return ctr.getStats()


def test_volume_is_mounted_and_kept(paths, busybox_oci, fs_volume,
                                    tmp_path):
    ctr = create(vm_with_volume(busybox_oci, fs_volume, False,
                                ["sh", "-c", "echo kept > /srv/data/file"]),
                 paths=paths)
    assert wait_down(ctr)["exitCode"] == constants.NORMAL
    ctr.destroy()
    assert read_volume(fs_volume, "file", tmp_path) == "kept\n"


def test_readonly_volume(paths, busybox_oci, fs_volume, tmp_path):
    ctr = create(vm_with_volume(busybox_oci, fs_volume, True,
                                ["sh", "-c", "echo x > /srv/data/file"]),
                 paths=paths)
    stats = wait_down(ctr)
    assert stats["exitCode"] == constants.ERROR     # write refused
    ctr.destroy()
    assert read_volume(fs_volume, "file", tmp_path) is None


def test_volume_without_filesystem_fails_cleanly(paths, busybox_oci,
                                                 tmp_path):
    raw = tmp_path / "empty.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    ctr = Container.from_xml(vm_with_volume(busybox_oci, str(raw), False,
                                            ["true"]), paths=paths)
    with pytest.raises(errors.CreateError) as e:
        ctr.run()
    assert "cannot mount volume" in str(e.value)
    assert ctr.lastStatus == constants.DOWN

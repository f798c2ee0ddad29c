"""containerVolumes: the VM's other disks mounted into the container."""

import subprocess
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.container import Container, create

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


def read_volume(path, name, tmp_path):
    mp = tmp_path / ("check-%s" % uuid.uuid4().hex[:6])
    mp.mkdir()
    subprocess.run(["mount", "-o", "loop,ro", path, str(mp)], check=True)
    try:
        return (mp / name).read_text() if (mp / name).exists() else None
    finally:
        subprocess.run(["umount", str(mp)], check=True)


def vm_with_volume(image, volume, readonly, command, runtime="runc"):
    return domxml.build(str(uuid.uuid4()), "vol", runtime, image,
                        command=command, disks=[(volume, "data", readonly)],
                        custom={"containerVolumes": "data:/srv/data"})


def wait_down(ctr):
    deadline = time.monotonic() + 10
    while ctr.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.05)
    return ctr.getStats()


def test_volume_is_mounted_and_kept(paths, busybox_oci, fs_volume,
                                    tmp_path, runtime):
    ctr = create(vm_with_volume(busybox_oci, fs_volume, False,
                                ["sh", "-c", "echo kept > /srv/data/file"],
                                runtime), paths=paths)
    assert wait_down(ctr)["exitCode"] == constants.NORMAL
    ctr.destroy()
    assert read_volume(fs_volume, "file", tmp_path) == "kept\n"


def test_readonly_volume(paths, busybox_oci, fs_volume, tmp_path, runtime):
    ctr = create(vm_with_volume(busybox_oci, fs_volume, True,
                                ["sh", "-c", "echo x > /srv/data/file"],
                                runtime), paths=paths)
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
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert "cannot mount volume" in str(e.value)
    assert ctr.lastStatus == constants.DOWN


@pytest.fixture
def loop_device(tmp_path):
    """Attach a file as a block device, as an LV of a block domain is."""
    made = []

    def attach(path):
        dev = subprocess.run(["losetup", "--find", "--show", path],
                             check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
        made.append(dev)
        return dev
    yield attach
    for dev in made:
        subprocess.run(["losetup", "--detach", dev], check=False)


def test_block_domain_image_and_volume(paths, busybox_oci, fs_volume,
                                       loop_device, tmp_path):
    # The image volume: the archive, then a tail of garbage, on a block
    # device rounded up to a whole number of MiB.
    image = tmp_path / "image-lv"
    data = open(busybox_oci, "rb").read()
    size = (len(data) // 2 ** 20 + 2) * 2 ** 20
    image.write_bytes(data + b"\xa5" * (size - len(data)))
    image_dev = loop_device(str(image))
    volume_dev = loop_device(fs_volume)
    xml = domxml.build(str(uuid.uuid4()), "blk", "runc", image_dev,
                       block=True, command=["sh", "-c",
                                            "echo blk > /srv/data/file"],
                       custom={"containerVolumes": "data:/srv/data"},
                       disks=[(volume_dev, "data", False)])
    xml = xml.replace('<source file="%s" />' % volume_dev,
                      '<source dev="%s" />' % volume_dev)
    ctr = create(xml, paths=paths)
    assert ctr.spec.image_disk.block and ctr.spec.disks[1].block
    assert wait_down(ctr)["exitCode"] == constants.NORMAL
    ctr.destroy()
    subprocess.run(["losetup", "--detach", volume_dev], check=True)
    assert read_volume(fs_volume, "file", tmp_path) == "blk\n"

"""Disk paths are not trusted as given; a full storage disk is named.

An image or volume path must be a regular file or a block device the host
does not use: a FIFO used to hang create forever, a character device or the
host's own disk reached mount(8).  A full storage filesystem gets vdsm's
error naming it, not a bare "[Errno 28]".
"""

import os
import subprocess
import threading
import uuid

import pytest

from vdsm_container import errors
from vdsm_container.container import create
from vdsm_container.image import cache as images
from vdsm_container.spec import domxml

from .imagebuild import entry, layer, oci_archive


def get_in_thread(cache, path):
    """cache.get(path), in a thread so that a hang fails the test instead
    of blocking the run."""
    result = {}

    def run():
        try:
            result["value"] = cache.get(path)
        except BaseException as e:
            result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "create hangs on %s" % path
    return result


def test_fifo_image_is_refused_not_hanging(tmp_path):
    fifo = tmp_path / "image.fifo"
    os.mkfifo(fifo)
    result = get_in_thread(images.Cache(str(tmp_path / "c")), str(fifo))
    err = result.get("error")
    assert isinstance(err, errors.InvalidParameter), result
    assert "is a FIFO" in str(err) and str(fifo) in str(err)


@pytest.mark.parametrize("path,words", [
    ("/dev/null", "is a character device"),
    ("/dev/zero", "is a character device"),
])
def test_character_device_image(tmp_path, path, words):
    result = get_in_thread(images.Cache(str(tmp_path / "c")), path)
    err = result.get("error")
    assert isinstance(err, errors.InvalidParameter), result
    assert words in str(err)


def test_socket_image(tmp_path):
    import socket
    path = str(tmp_path / "sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    try:
        with pytest.raises(errors.InvalidParameter) as e:
            images.Cache(str(tmp_path / "c")).get(path)
        assert "is a socket" in str(e.value)
    finally:
        s.close()


def _host_disk():
    """The block device holding the host's / (or any mounted one)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            major, minor = fields[2].split(":")
            path = "/dev/block/%s:%s" % (major, minor)
            if int(major) != 0 and os.path.exists(path):
                return os.path.realpath(path)
    pytest.skip("no mounted block device on this host")


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
@pytest.mark.parametrize("kind", ["fifo", "chr", "host-disk"])
def test_volume_path_kinds(paths, busybox_oci, tmp_path, kind):
    if kind == "fifo":
        path = str(tmp_path / "vol.fifo")
        os.mkfifo(path)
        words = "is a FIFO"
    elif kind == "chr":
        path, words = "/dev/null", "is a character device"
    else:
        path, words = _host_disk(), "a block device the host uses"
    xml = domxml.build(str(uuid.uuid4()), "vol", "runc", busybox_oci,
                       command=["true"], disks=[(path, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    with pytest.raises(errors.InvalidParameter) as e:
        create(xml, paths=paths)
    assert words in str(e.value) and "'disk'" in str(e.value)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_volume_block_device_mounted_by_the_host(paths, busybox_oci,
                                                 tmp_path):
    """A block device mounted on the host (its /var, say) is no volume."""
    raw = str(tmp_path / "fs.raw")
    with open(raw, "wb") as f:
        f.truncate(16 * 1024 ** 2)
    subprocess.run(["mkfs.ext4", "-q", "-F", raw], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", raw], check=True,
                         stdout=subprocess.PIPE,
                         universal_newlines=True).stdout.strip()
    mnt = tmp_path / "hostmnt"
    mnt.mkdir()
    try:
        subprocess.run(["mount", dev, str(mnt)], check=True)
        try:
            xml = domxml.build(str(uuid.uuid4()), "vol", "runc", busybox_oci,
                               command=["true"], block=True,
                               disks=[(dev, "data", False)],
                               custom={"containerVolumes": "data:/srv"})
            with pytest.raises(errors.InvalidParameter) as e:
                create(xml, paths=paths)
            assert "mounted on %s" % mnt in str(e.value)
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of ``size`` as the image cache's filesystem."""
    mounted = []

    def make(size):
        d = tmp_path / ("fs-%d" % len(mounted))
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", str(d)], check=True)
        mounted.append(d)
        return str(d)
    yield make
    for d in mounted:
        subprocess.run(["umount", str(d)], check=True)


def test_storage_full_while_copying(tmp_path, small_fs):
    root = small_fs("1m")
    path = oci_archive(tmp_path / "big.tar", [
        layer([entry("blob", data=os.urandom(3 * 1024 ** 2))])])
    with pytest.raises(errors.CannotCreateVM) as e:
        images.Cache(os.path.join(root, "images")).get(path)
    text = str(e.value)
    assert "no space left" in text and root in text
    assert "Errno" not in text
    assert os.listdir(os.path.join(root, "images")) != [] and all(
        n.endswith(".lock") for n in os.listdir(os.path.join(root,
                                                             "images")))


def test_storage_too_small_for_the_expanded_image(tmp_path, small_fs):
    root = small_fs("4m")
    path = oci_archive(tmp_path / "zeros.tar", [
        layer([entry("zeros", data=bytes(16 * 1024 ** 2))])], gzipped=True)
    with pytest.raises(errors.CannotCreateVM) as e:
        images.Cache(os.path.join(root, "images")).get(path)
    text = str(e.value)
    assert "no space left" in text and "expands to 16777216 bytes" in text

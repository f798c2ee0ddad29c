"""Images whose rootfs points the runtime at the host.

runc 1.1 writes /dev's symlinks and nodes with plain path joins before
pivot_root: an image whose ``dev`` is a symlink to a host directory had
runc write (and replace files) there.  The rootfs is confined after the
overlay is mounted: ``dev``, ``proc`` and ``sys`` become real directories,
volume targets are resolved inside the rootfs.  The host directory must be
untouched, the container Up, and nothing left after destroy.
"""

import json
import os
import tarfile
import time
import uuid

import pytest

from vdsm_container import errors
from vdsm_container.bundle.layout import Bundle
from vdsm_container.container import Container, create
from vdsm_container.spec import domxml

from . import imagebuild as ib
from .conftest import in_container
from .imagebuild import entry, layer

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


@pytest.fixture
def victim(tmp_path):
    """A host directory with a file runc would have replaced."""
    d = tmp_path / "victim"
    d.mkdir()
    (d / "ptmx").write_text("precious")
    (d / "null").write_text("precious")
    os.chmod(d, 0o777)
    return d


def snapshot(d):
    return sorted((p, open(os.path.join(d, p)).read())
                  for p in os.listdir(d))


def image_with(tmp_path, busybox_oci, extra, config=None, name="img.tar"):
    return ib.oci_archive(tmp_path / name, ib.busybox_layers(busybox_oci)
                          + [layer(extra)], config=dict(
                              {"Cmd": ["/bin/sh"]}, **(config or {})))


def run(paths, image, command, userns=False, **kw):
    custom = dict(kw.pop("custom", {}))
    if userns:
        custom["containerUserns"] = "true"
    xml = domxml.build(str(uuid.uuid4()), "hostile", "runc", image,
                       command=command, custom=custom or None, **kw)
    return create(xml, paths=paths)


def wait_down(ctr, timeout=20):
    deadline = time.monotonic() + timeout
    while ctr.refresh() != "Down":
        assert time.monotonic() < deadline, ctr.lastStatus
        time.sleep(0.05)


def bundle_of(ctr):
    return Bundle(ctr.paths, ctr.id)


def destroy(ctr):
    Container.load(ctr.id, paths=ctr.paths).destroy(gracefulAttempts=0)


def linkname(kind, victim, paths):
    if kind == "absolute":
        return str(victim)
    # From <storage>/vms/<id>/rootfs/dev: up to the filesystem's root, then
    # down to the victim.
    ups = "../" * (len(os.path.realpath(paths.storage_dir).split("/")) + 3)
    return ups + str(victim).lstrip("/")


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
@pytest.mark.parametrize("kind", ["absolute", "relative"])
@pytest.mark.parametrize("name", ["dev", "proc", "sys"])
def test_runtime_dirs_symlinked_to_the_host(request, busybox_oci, tmp_path,
                                            victim, kind, name, userns):
    paths = request.getfixturevalue("userns_paths" if userns else "paths")
    before = snapshot(victim)
    image = image_with(tmp_path, busybox_oci, [
        entry(name, tarfile.SYMTYPE,
              linkname=linkname(kind, victim, paths))])
    ctr = run(paths, image, ["sh", "-c", "ls /dev/null /proc/self >/dev/null"
                             " && sleep 1000"], userns=userns)
    try:
        assert ctr.lastStatus == "Up"
        assert snapshot(victim) == before
        assert os.path.isdir(os.path.join(in_container(ctr), name)) and \
            not os.path.islink(os.path.join(in_container(ctr), name))
    finally:
        destroy(ctr)
    assert snapshot(victim) == before


def test_dev_as_a_file_and_a_chain_of_links(paths, busybox_oci, tmp_path,
                                            victim):
    before = snapshot(victim)
    image = image_with(tmp_path, busybox_oci, [
        entry("proc", data=b"not a dir"),
        entry("a", tarfile.SYMTYPE, linkname="b"),
        entry("b", tarfile.SYMTYPE, linkname=str(victim)),
        entry("dev", tarfile.SYMTYPE, linkname="a")])
    ctr = run(paths, image, ["sleep", "1000"])
    try:
        assert ctr.lastStatus == "Up"
    finally:
        destroy(ctr)
    assert snapshot(victim) == before


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_volume_target_through_a_symlink(paths, busybox_oci, tmp_path,
                                         victim, fs_volume, kind):
    """/srv -> host dir: the volume lands on the rootfs's own path."""
    before = snapshot(victim)
    target = str(victim) if kind == "absolute" else \
        "../../../../../../../../../../.." + str(victim)
    image = image_with(tmp_path, busybox_oci, [
        entry("srv", tarfile.SYMTYPE, linkname=target)])
    ctr = run(paths, image, ["sh", "-c", "touch /srv/data/written && "
                             "sleep 1000"], disks=[(fs_volume, "data",
                                                    False)],
              custom={"containerVolumes": "data:/srv/data"})
    try:
        assert ctr.lastStatus == "Up"
        assert snapshot(victim) == before
        # The runtime is given a target with no symlink to follow.
        with open(bundle_of(ctr).config_path) as f:
            dest = [m["destination"] for m in json.load(f)["mounts"]
                    if m["type"] == "bind"][0]
        assert dest != "/srv/data"
        walked = in_container(ctr)
        for part in dest.strip("/").split("/"):
            walked = os.path.join(walked, part)
            assert not os.path.islink(walked), walked
        assert os.path.isdir(walked)    # made there by the runtime
    finally:
        destroy(ctr)
    assert snapshot(victim) == before


@pytest.mark.parametrize("target,words", [
    ("/dev/data", "which the runtime owns"),
    ("/etc/passwd/x", "is not a directory in the image"),
])
def test_volume_targets_refused(paths, busybox_oci, fs_volume, target,
                                words):
    with pytest.raises(errors.InvalidParameter) as e:
        run(paths, busybox_oci, ["true"], disks=[(fs_volume, "data", False)],
            custom={"containerVolumes": "data:" + target})
    assert words in str(e.value) and "containerVolumes" in str(e.value)


@pytest.mark.parametrize("user", ["65534", "nobody", "65534:65534"])
def test_image_user_not_root_can_start(paths, busybox_oci, tmp_path, user):
    image = image_with(tmp_path, busybox_oci, [
        entry("home", tarfile.DIRTYPE)], config={"User": user})
    ctr = run(paths, image, ["sh", "-c", "test $(id -u) = 65534 && ls / >"
                             " /dev/null && exit 7"])
    try:
        wait_down(ctr)
        assert ctr.status()["exitMessage"].endswith("status 7"), \
            ctr.status()
    finally:
        destroy(ctr)

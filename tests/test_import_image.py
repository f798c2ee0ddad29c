"""ovirt-container import: a reference skopeo copies from, for the
cluster's architecture, into a new disk.  Against a local registry
(Debian's docker-registry on 127.0.0.1), skopeo, the real ovirt-imageio
daemon and the fake Engine (fixtures of test_upload_image)."""

import io
import os
import shutil
import signal
import socket
import tarfile
import tempfile
import threading
import time

import pytest

from ovirtsdk4 import types  # noqa: E402  (test_upload_image skips first)

from . import imagebuild as ib
from .registry import EXE, Registry
from . import test_upload_image as up
from .test_upload_image import NOTHING, left

# The real ovirt-imageio daemon behind the fake Engine, and the tool.
imageio, engine, run = up.imageio, up.engine, up.run
imageio_certs = up.imageio_certs

import container_import  # noqa: E402  (beside the tool, on its path)

from vdsm_container.image import archive, manifest  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (os.path.exists(EXE) and shutil.which("skopeo")),
    reason="docker-registry and skopeo are needed (make deps installs "
    "them)")

ARCHES = {ib.HOST_ARCH: b"host", ib.OTHER_ARCH: b"other"}


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """import's scratch space (tempfile's, and skopeo's $TMPDIR) in a
    directory of the test's own: empty again after every import, whether
    it worked or not."""
    d = tmp_path / "scratch"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    monkeypatch.setenv("TMPDIR", str(d))
    yield
    assert os.listdir(d) == []


@pytest.fixture
def registry(tmp_path):
    r = Registry(tmp_path / "registry").start()
    yield r
    r.stop()


def multi_arch(path):
    """An OCI archive whose index lists one image per ARCHES entry, each
    with /etc/platform naming which it is."""
    blobs = ib.Blobs()
    descs = []
    for arch, what in ARCHES.items():
        d = ib.image_blobs(blobs, [ib.layer([
            ib.entry("etc/"), ib.entry("etc/platform", data=what)])],
            arch=arch)
        d["platform"] = {"architecture": arch, "os": "linux"}
        descs.append(d)
    inner = blobs.add(ib.json.dumps({
        "schemaVersion": 2, "mediaType": ib.OCI_INDEX,
        "manifests": descs}).encode(), ib.OCI_INDEX)
    inner["annotations"] = {ib.REF_ANNOTATION: "multi:1"}
    return ib.write_archive(path, blobs, {"schemaVersion": 2,
                                          "manifests": [inner]})


def on_disk(engine, disk_id, arch=ib.HOST_ARCH):
    """(ref, architecture, /etc/platform) of the image the disk holds, as
    a host of ``arch`` reads it."""
    src = archive.Source(engine.storage.path(disk_id))
    try:
        sel = manifest.select(src, None, manifest.Target("linux", arch))
        name, _, _ = sel.layers[0]
        with src._tar.extractfile(src._members[name]) as f:
            layer = tarfile.open(fileobj=io.BytesIO(f.read()))
        return sel.ref, sel.config["architecture"], \
            layer.extractfile("etc/platform").read()
    finally:
        src.close()


def test_import_resolves_a_multi_arch_image_for_the_cluster(
        engine, imageio, run, registry, tmp_path):
    ref = registry.push(multi_arch(tmp_path / "multi.tar"), "tools/multi:1")
    rc, out, err = run("import", ref, "--storage-domain", "data",
                       "--src-tls-verify", "false")
    assert (rc, err) == (0, "")
    disk = engine.storage.disks[out.strip()]
    assert disk.name == "multi_1"
    assert on_disk(engine, disk.id) == (
        "%s/tools/multi:1" % registry.host, ib.HOST_ARCH, b"host")
    assert left(engine, imageio)["transfers"] == []


def test_import_for_a_cluster_of_the_other_architecture(
        engine, imageio, run, registry, tmp_path):
    # --override-arch picks the cluster's image, not this machine's.
    other = {"amd64": types.Architecture.X86_64,
             "arm64": types.Architecture.AARCH64}[ib.OTHER_ARCH]
    engine.storage.place(engine.cluster("Default"), other)
    ref = registry.push(multi_arch(tmp_path / "multi.tar"), "multi:2")
    rc, out, err = run("import", ref, "--storage-domain", "data",
                       "--src-tls-verify", "false")
    assert (rc, err) == (0, "")
    assert on_disk(engine, out.strip(), ib.OTHER_ARCH)[1:] == (
        ib.OTHER_ARCH, b"other")


def test_import_of_no_image_for_the_cluster_leaves_nothing(
        engine, imageio, run, registry, tmp_path):
    engine.storage.place(engine.cluster("Default"),
                         types.Architecture.S390X)
    ref = registry.push(multi_arch(tmp_path / "multi.tar"), "multi:3")
    rc, out, err = run("import", ref, "--storage-domain", "data",
                       "--src-tls-verify", "false")
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: import copy %s with skopeo: "
                          % ref)
    assert "no image found in image index for architecture s390x" in err
    assert engine.sent("POST", r".*/disks") == []
    assert left(engine, imageio) == NOTHING


def test_import_of_a_single_image_of_another_architecture(
        engine, imageio, run, registry, tmp_path):
    # One image, no index: skopeo copies it as it is; the archive check
    # refuses it before any disk exists.
    path = ib.oci_archive(tmp_path / "one.tar", [ib.layer([
        ib.entry("etc/")])], arch=ib.OTHER_ARCH)
    ref = registry.push(path, "one:1", all_=False)
    rc, out, err = run("import", ref, "--storage-domain", "data",
                       "--src-tls-verify", "false")
    assert (rc, out) == (1, "")
    assert "the image is built for architecture %r" % ib.OTHER_ARCH in err
    assert err.startswith("ovirt-container: import check the archive ")
    assert engine.sent("POST", r".*/disks") == []
    assert left(engine, imageio) == NOTHING


def test_import_from_an_oci_archive(engine, imageio, run, tmp_path):
    path = multi_arch(tmp_path / "multi.tar")
    rc, out, err = run("import", "oci-archive:%s" % path,
                       "--storage-domain", "data", "--name", "m")
    assert (rc, err) == (0, "")
    disk_id = out.strip()
    assert engine.storage.disks[disk_id].name == "m"
    assert on_disk(engine, disk_id)[1:] == (ib.HOST_ARCH, b"host")


def test_import_needs_a_transport(engine, imageio, run):
    rc, out, err = run("import", "busybox:latest", "--storage-domain",
                       "data")
    assert (rc, err) == (1, "ovirt-container: import copy busybox:latest "
                         "with skopeo: name its transport, e.g. "
                         "docker://busybox:latest\n")
    assert engine.sent("POST", r".*/disks") == []


def test_create_with_image_imports_it_first(engine, imageio, run,
                                            tmp_path):
    engine.add_host("host1", True)
    path = multi_arch(tmp_path / "multi.tar")
    rc, out, err = run("create", "web", "--cluster", "Default", "--image",
                       "oci-archive:%s" % path, "--storage-domain", "data")
    assert (rc, err) == (0, "")
    vm_id = out.strip()
    disk_id, = engine.storage.disks
    att, = engine.attachments[vm_id]
    assert (att.disk.id, att.read_only, att.bootable) == (disk_id, True,
                                                          True)
    assert on_disk(engine, disk_id)[1:] == (ib.HOST_ARCH, b"host")


def test_create_with_image_that_engine_refuses_leaves_no_disk(
        engine, imageio, run, tmp_path):
    engine.add_host("host1", True)
    # Engine's UserDefinedVMProperties lack the container properties
    # (engine-config's script not run): the VM is refused after the
    # image was uploaded.
    engine.vm_properties = {}
    path = multi_arch(tmp_path / "multi.tar")
    rc, out, err = run("create", "web", "--cluster", "Default", "--image",
                       "oci-archive:%s" % path, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert "Custom property containerType has invalid value" in err
    assert len(engine.sent("POST", r".*/disks")) == 1
    assert left(engine, imageio) == NOTHING
    assert engine.vms == {}


def test_create_with_image_checks_hosts_before_uploading(
        engine, imageio, run, tmp_path):
    path = multi_arch(tmp_path / "multi.tar")
    rc, out, err = run("create", "web", "--cluster", "Default", "--image",
                       "oci-archive:%s" % path, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert "no container-capable host" in err
    assert engine.sent("POST", r".*/disks") == []


def test_ctrl_c_while_skopeo_copies_leaves_nothing(
        engine, imageio, run, tmp_path, monkeypatch, ctrl_c):
    # A real SIGINT once skopeo itself runs (a wrapper names its pid, then
    # execs skopeo), as a terminal's Ctrl-C reaches the tool mid-copy; the
    # "registry" takes the connection and never answers, so the copy is
    # still under way whatever the machine's speed.
    pidfile = tmp_path / "pid"
    wrapper = tmp_path / "skopeo"
    wrapper.write_text('#!/bin/sh\necho $$ > %s\nexec skopeo "$@"\n'
                       % pidfile)
    wrapper.chmod(0o755)
    monkeypatch.setattr(container_import, "SKOPEO", str(wrapper))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    ref = "docker://127.0.0.1:%d/never:1" % silent.getsockname()[1]

    def interrupt():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                pid = int(pidfile.read_text())
                exe = os.readlink("/proc/%d/exe" % pid)
            except (OSError, ValueError):
                exe = ""
            if os.path.basename(exe) == "skopeo":
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)
    t = threading.Thread(target=interrupt)
    t.start()
    try:
        rc, out, err = run("import", ref, "--storage-domain", "data",
                           "--src-tls-verify", "false")
    finally:
        t.join()
        silent.close()
    assert (rc, out) == (130, "")
    assert err == ("ovirt-container: import copy %s with skopeo: "
                   "interrupted\n" % ref)
    pid = int(pidfile.read_text())
    assert not os.path.exists("/proc/%d" % pid)     # killed and reaped
    assert engine.sent("POST", r".*/disks") == []
    assert left(engine, imageio) == NOTHING

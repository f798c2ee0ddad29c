"""ovirt-container upload-image and import against real parts: the real
ovirt-imageio daemon (TLS, file backend, tickets through its control
socket) behind the fake Engine's disks and image transfers
(tests/engine/storage.py), and for ``import`` a local registry (Debian's
docker-registry) and skopeo.  Everything listens on 127.0.0.1 only.

Each test checks what it leaves: no disk (in Engine, nor its file), no
open transfer, no ticket in the daemon."""

import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import tarfile

import pytest

pytest.importorskip("ovirtsdk4", reason="ovirt-engine-sdk-python is not "
                    "installed (make check installs it)")
pytest.importorskip("ovirt_imageio", reason="ovirt-imageio is not "
                    "installed (make check installs it)")

from ovirtsdk4 import types  # noqa: E402

from . import imagebuild as ib  # noqa: E402
from .engine.fake_engine import Engine, PASSWORD  # noqa: E402
from .engine.imageio import Daemon, make_certs  # noqa: E402
from .engine.storage import Storage  # noqa: E402
from .test_ovirt_container import tool  # noqa: E402

import container_import  # noqa: E402  (beside the tool, on its path)
import container_upload  # noqa: E402

from vdsm_container.image import archive, manifest  # noqa: E402

MiB = 2 ** 20


@pytest.fixture(scope="session")
def imageio_certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("imageio-certs")))


@pytest.fixture
def imageio(tmp_path, imageio_certs):
    d = Daemon(tmp_path / "imageio", imageio_certs).start()
    yield d
    d.stop()


@pytest.fixture
def engine(tmp_path, imageio):
    e = Engine().start()
    disks = tmp_path / "sd"
    disks.mkdir()
    e.storage = Storage(e, imageio, disks)
    e.storage.add_domain("data")
    yield e
    e.stop()


@pytest.fixture
def run(engine, imageio, monkeypatch, capsys):
    monkeypatch.setenv("OVIRT_PASSWORD", PASSWORD)
    monkeypatch.setattr(container_upload, "POLL", 0.01)

    def run(*args):
        rc = tool.main(["--url", engine.url, "--insecure", args[0]] +
                       list(args[1:]) + ["--imageio-ca-file",
                                         imageio.ca_file])
        out, err = capsys.readouterr()
        return rc, out, err
    return run


@pytest.fixture
def image(tmp_path):
    """An OCI archive of the host's platform, 20 MiB: imageio's client
    reads it in more than one buffer (8 MiB)."""
    data = os.urandom(20 * MiB)
    return ib.oci_archive(tmp_path / "img.tar", [ib.layer([
        ib.entry("bin/"), ib.entry("bin/blob", data=data)])],
        ref="demo:1")


def left(engine, imageio):
    """What an upload left: disks and their files, open transfers,
    tickets."""
    st = engine.storage
    return {"disks": sorted(st.disks), "files": sorted(os.listdir(st.root)),
            "transfers": [t.id for t in st.open_transfers()],
            "tickets": imageio.open_tickets() if imageio.alive() else []}


NOTHING = {"disks": [], "files": [], "transfers": [], "tickets": []}


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_upload_image_puts_the_archive_on_a_new_disk(engine, imageio, run,
                                                     image):
    rc, out, err = run("upload-image", image, "--storage-domain", "data",
                       "--name", "demo")
    assert (rc, err) == (0, "")
    disk_id = out.strip()
    disk = engine.storage.disks[disk_id]
    size = os.path.getsize(image)
    assert disk.status == types.DiskStatus.OK
    assert (disk.name, disk.format, disk.sparse) == (
        "demo", types.DiskFormat.RAW, True)
    assert disk.description == container_upload.DESCRIPTION % (
        size, _sha(image))
    assert disk.provisioned_size == -(-size // MiB) * MiB
    with open(engine.storage.path(disk_id), "rb") as f:
        on_disk = f.read()
    with open(image, "rb") as f:
        assert on_disk[:size] == f.read()
    assert on_disk[size:] == bytes(len(on_disk) - size)
    # The host reads the disk as the archive it was.
    src = archive.Source(engine.storage.path(disk_id))
    try:
        assert manifest.select(src, None).ref == "demo:1"
    finally:
        src.close()
    # The SDK's flow: finalized, the ticket gone.
    transfer, = engine.storage.transfers.values()
    assert transfer.phase == types.ImageTransferPhase.FINISHED_SUCCESS
    assert transfer.direction == types.ImageTransferDirection.UPLOAD
    assert transfer.format == types.DiskFormat.RAW
    assert imageio.open_tickets() == []


def test_block_domain_gets_a_preallocated_disk(engine, imageio, run,
                                               image):
    # The fake Engine refuses a sparse raw disk on a block domain, as
    # Engine does.
    engine.storage.add_domain("lun", types.StorageType.ISCSI)
    rc, out, err = run("upload-image", image, "--storage-domain", "lun")
    assert (rc, err) == (0, "")
    disk = engine.storage.disks[out.strip()]
    assert (disk.sparse, disk.name) == (False, "img.tar")


def test_default_disk_name_is_cleaned_as_import_cleans_it(
        engine, imageio, run, image, tmp_path):
    # Engine takes letters, digits and "._-" in a disk's alias (the fake
    # Engine refuses others, as BaseDisk's @ValidI18NName does).
    odd = tmp_path / "my image (v1).tar"
    os.rename(image, odd)
    rc, out, err = run("upload-image", str(odd), "--storage-domain", "data")
    assert (rc, err) == (0, "")
    disk = engine.storage.disks[out.strip()]
    assert disk.name == disk.alias == "my_image_v1_.tar" == \
        container_import.disk_name("oci-archive:%s" % odd)


def test_engine_refusing_the_disk_leaves_nothing(engine, imageio, run,
                                                 image):
    engine.storage.add_domain("small", available=MiB)
    rc, out, err = run("upload-image", image, "--storage-domain", "small")
    assert (rc, out) == (1, "")
    assert err == ("ovirt-container: upload-image create the disk: Cannot "
                   "add Virtual Disk. Low disk space on Storage Domain "
                   "small.\n")
    assert left(engine, imageio) == NOTHING
    assert engine.sent("POST", r".*/imagetransfers") == []


def test_no_imageio_on_the_host_leaves_nothing(engine, imageio, run,
                                               image):
    imageio.stop()
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: upload-image wait for transfer ")
    assert err.endswith(" to start: the transfer is paused_system\n")
    assert left(engine, imageio) == NOTHING
    # The disk was made, and went with the cancelled transfer.
    assert len(engine.sent("POST", r".*/disks")) == 1


def test_finalize_failing_leaves_nothing(engine, imageio, run, image):
    engine.storage.fail_finalize = True
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: upload-image finalize transfer ")
    assert err.endswith(": the transfer is finished_failure\n")
    assert left(engine, imageio) == NOTHING


class _Hook(container_upload._Reader):
    """After the first buffer is read, ``then()`` (once)."""

    then = None

    def readinto(self, buf):
        n = super().readinto(buf)
        hook, _Hook.then = _Hook.then, None
        if hook:
            hook()
        return n


@pytest.fixture
def hook(monkeypatch):
    monkeypatch.setattr(container_upload, "_Reader", _Hook)
    yield _Hook
    _Hook.then = None


def test_daemon_dying_mid_transfer_leaves_nothing(engine, imageio, run,
                                                  image, hook):
    hook.then = imageio.kill
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: upload-image upload to "
                          "https://127.0.0.1:%d/images/" % imageio.port)
    assert not imageio.alive()
    assert left(engine, imageio) == NOTHING
    # Cancelled, not merely dropped.
    assert len(engine.sent("POST", r".*/imagetransfers/.*/cancel")) == 1


def test_ctrl_c_mid_transfer_leaves_nothing(engine, imageio, run, image,
                                            hook, ctrl_c):
    # A real SIGINT, delivered while bytes are on their way.
    hook.then = lambda: os.kill(os.getpid(), signal.SIGINT)
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (130, "")
    assert err.startswith("ovirt-container: upload-image upload to ")
    assert err.endswith(": interrupted\n")
    assert imageio.alive()
    assert left(engine, imageio) == NOTHING
    assert len(engine.sent("POST", r".*/imagetransfers/.*/cancel")) == 1


def test_progress_bar_on_a_terminal(engine, imageio, image, tmp_path):
    """The tool as an admin runs it, stderr a terminal: imageio's progress
    bar there, the disk's id alone on stdout."""
    parent, child = pty.openpty()
    env = dict(os.environ, OVIRT_PASSWORD=PASSWORD)
    proc = subprocess.Popen(
        [sys.executable, tool.__file__, "--url", engine.url, "--insecure",
         "upload-image", image, "--storage-domain", "data",
         "--imageio-ca-file", imageio.ca_file],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=child,
        env=env)
    os.close(child)
    screen = b""
    while True:
        try:
            data = os.read(parent, 4096)
        except OSError:         # EIO: the tool closed the terminal
            break
        if not data:
            break
        screen += data
    out = proc.stdout.read().decode()
    assert proc.wait() == 0
    os.close(parent)
    assert list(engine.storage.disks) == [out.strip()]
    text = screen.decode()
    assert "| uploading img.tar" in text
    assert "[ 100%% ] %.2f MiB, " % (os.path.getsize(image) / MiB) in text


def test_wrong_architecture_is_refused_before_any_disk(engine, imageio,
                                                       run, image):
    engine.storage.place(engine.cluster("Default"),
                         types.Architecture.PPC64)
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert err == ("ovirt-container: upload-image check the archive %s: "
                   "the image is built for architecture %r; the cluster's "
                   "architecture ppc64 runs 'ppc64le'\n"
                   % (image, ib.HOST_ARCH))
    assert engine.sent("POST", r".*/disks") == []
    assert left(engine, imageio) == NOTHING


def test_archive_the_host_would_refuse_costs_no_disk(engine, imageio, run,
                                                     tmp_path):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as t:
        info = tarfile.TarInfo("index.json")
        data = json.dumps({"schemaVersion": 2, "manifests": "x"}).encode()
        info.size = len(data)
        import io
        t.addfile(info, io.BytesIO(data))
    rc, out, err = run("upload-image", str(bad), "--storage-domain", "data")
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: upload-image check the archive "
                          "%s: " % bad)
    assert engine.sent("POST", r".*/disks") == []


def test_unknown_storage_domain(engine, imageio, run, image):
    rc, out, err = run("upload-image", image, "--storage-domain", "nope")
    assert (rc, err) == (1, "ovirt-container: upload-image find the storage "
                         "domain: no storage domain named nope\n")
    assert engine.sent("POST", r".*/disks") == []


def test_docker_archive_uploads_too(engine, imageio, run, busybox_docker):
    rc, out, err = run("upload-image", busybox_docker, "--storage-domain",
                       "data", "--image-ref", "busybox:1.36")
    assert (rc, err) == (0, "")
    size = os.path.getsize(busybox_docker)
    with open(engine.storage.path(out.strip()), "rb") as f:
        on_disk = f.read(size)
    with open(busybox_docker, "rb") as f:
        assert on_disk == f.read()
    assert engine.storage.disks[out.strip()].description.endswith(
        "sha256=%s" % _sha(busybox_docker))

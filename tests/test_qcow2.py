"""qcow2 disks: a COW leaf over a raw base, for the image disk (read-only)
and data volumes (read-write), served by qemu-storage-daemon's FUSE export
(issue #37 item 1).

Engine's flows that give a VM such volumes: a snapshot of a stopped VM
(CreateSnapshotForVmCommand -> CreateVolume: a qcow2 leaf over the raw
volume, which becomes its read-only parent), a thin VM from a template, a
clone from a snapshot, a stateless run, an OVA import.  vdsm builds the
leaf as ``qemuimg.create(format=qcow2, backing=<parent volume>,
backingFormat=raw)`` in the image's directory (lib/vdsm/storage/
fileVolume.py ``_create``), the backing named relative to it; the chains
here are built the same way with qemu-img.  Engine's XML then says
``<driver type='qcow2'>`` (LibvirtVmXmlBuilder.writeDisk).
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from vdsm_container import constants, errors
from vdsm_container.linux import pidinfo
from vdsm_container.container import Container, create
from vdsm_container.host import qcow
from vdsm_container.runtimes import proc
from vdsm_container.spec import domxml

from .conftest import bundle_of, in_container
from .test_volumes import loop_device  # noqa: F401 (fixture)

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]

if shutil.which(qcow.QSD) is None:
    pytest.skip("no qemu-storage-daemon (qemu-system-common)",
                allow_module_level=True)


def chain(image_dir, base_path, leaf_only=False):
    """<image>/<base vol> raw (a copy of ``base_path``) and <image>/<leaf
    vol> qcow2 over it, as vdsm's CreateVolume leaves them; ``leaf_only``:
    a lone qcow2 volume holding the same bytes."""
    os.makedirs(image_dir)
    base = os.path.join(image_dir, str(uuid.uuid4()))
    leaf = os.path.join(image_dir, str(uuid.uuid4()))
    if leaf_only:
        subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2",
                        base_path, leaf], check=True)
        return None, leaf
    shutil.copyfile(base_path, base)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                    os.path.basename(base), "-F", "raw", leaf],
                   check=True, cwd=image_dir)
    return base, leaf


def as_qcow2(xml, path):
    """Engine's writeDisk for a qcow2 volume: <driver type='qcow2'>."""
    head, sep, tail = xml.partition('<source file="%s" />' % path)
    assert sep, path
    return head + sep + tail.replace('type="raw"', 'type="qcow2"', 1)


def read_back(leaf, name, tmp_path):
    """File ``name`` of the filesystem on the chain, as qemu reads it."""
    target = str(tmp_path / ("read-%s" % uuid.uuid4().hex[:6]))
    mp = target + ".mnt"
    os.mkdir(mp)
    disk = domxml.parse(domxml.build(
        str(uuid.uuid4()), "r", "runc", leaf)).image_disk
    qcow.export(disk, target, writable=False)
    try:
        subprocess.run(["mount", "-o", "loop,ro", target, mp], check=True)
        try:
            path = os.path.join(mp, name)
            return open(path).read() if os.path.exists(path) else None
        finally:
            subprocess.run(["umount", mp], check=True)
    finally:
        qcow.stop(target)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _daemon_pids(path):
    """The qemu-storage-daemon processes naming ``path``; argv[0] their
    name, or (started by systemd-run, which resolves it) their path."""
    want = path.encode()
    name = qcow.QSD.encode()
    return [pid for pid, argv in pidinfo.argvs()
            if argv and os.path.basename(argv[0]) == name and
            any(want in a for a in argv)]


def no_daemon_for(path):
    """No qemu-storage-daemon names ``path`` on its command line."""
    return _daemon_pids(path) == []


@pytest.mark.parametrize("leaf_only", [False, True],
                         ids=["leaf over raw base", "lone qcow2"])
def test_qcow2_image_disk(paths, busybox_oci, tmp_path, leaf_only):
    _, leaf = chain(str(tmp_path / "sd" / "images" / "img"), busybox_oci,
                    leaf_only)
    xml = as_qcow2(domxml.build(str(uuid.uuid4()), "q", "runc", leaf,
                                command=["sleep", "1000"]), leaf)
    before = os.stat(leaf).st_mtime_ns
    ctr = create(xml, paths=paths)
    try:
        assert ctr.lastStatus == constants.UP
        assert os.path.exists(os.path.join(in_container(ctr), "bin",
                                           "busybox"))
        # Read only, and only while the image was read.
        assert no_daemon_for(str(tmp_path))
        assert os.stat(leaf).st_mtime_ns == before
    finally:
        ctr.destroy(gracefulAttempts=0)


def test_qcow2_volume_writes_land_in_the_leaf(paths, busybox_oci, fs_volume,
                                             tmp_path):
    base, leaf = chain(str(tmp_path / "sd" / "images" / "data"), fs_volume)
    xml = domxml.build(str(uuid.uuid4()), "q", "runc", busybox_oci,
                       command=["sh", "-c", "echo kept > /srv/data/new; "
                                "sync; mv /srv/data/new /srv/data/file; "
                                "sync; sleep 1000"],
                       disks=[(leaf, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    ctr = create(as_qcow2(xml, leaf), paths=paths)
    storage = bundle_of(ctr).storage_dir
    try:
        assert ctr.lastStatus == constants.UP
        assert not no_daemon_for(storage)       # served while it runs
        # Until the shell has written and synced (a bound for a failure,
        # not a timing): its log line comes after the sync.
        seen = os.path.join(in_container(ctr), "srv", "data", "file")
        deadline = time.monotonic() + 30
        while not _read(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _read(seen) == "kept\n"
        # Storage QoS reaches it too: on the loop device over its export.
        assert ctr.updateVmPolicy({"ioTune": [{
            "domainID": "sd", "poolID": "sp", "imageID": "data",
            "volumeID": os.path.basename(leaf),
            "maximum": {"write_bytes_sec": 1 << 20}}]})["status"]["code"] \
            == 0
    finally:
        ctr.destroy(gracefulAttempts=0)
    # Teardown left no daemon, mount or export.
    assert no_daemon_for(storage)
    assert not os.path.exists(storage)
    # The write is in the leaf; the base, now the leaf's read-only
    # parent, is as it was.
    assert read_back(leaf, "file", tmp_path) == "kept\n"
    plain = domxml.parse(domxml.build(str(uuid.uuid4()), "r", "runc",
                                      base)).image_disk
    assert plain.fmt == "raw"
    mp = str(tmp_path / "base.mnt")
    os.mkdir(mp)
    subprocess.run(["mount", "-o", "loop,ro", base, mp], check=True)
    try:
        assert not os.path.exists(os.path.join(mp, "file"))
    finally:
        subprocess.run(["umount", mp], check=True)


def test_bad_qcow2_volume_fails_cleanly(paths, busybox_oci, tmp_path):
    bad = str(tmp_path / "bad.qcow2")
    with open(bad, "wb") as f:
        f.write(b"QFI\xfb" + b"\0" * 4096)
    xml = domxml.build(str(uuid.uuid4()), "q", "runc", busybox_oci,
                       command=["sleep", "1000"],
                       disks=[(bad, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    ctr = Container.from_xml(as_qcow2(xml, bad), paths=paths)
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        ctr.run()
    assert "cannot read qcow2 disk sdb" in str(e.value)
    assert ctr.getStats()["status"] == "Down"
    assert no_daemon_for(str(tmp_path))


def test_qcow2_volume_on_a_block_domain(paths, busybox_oci, fs_volume,
                                        loop_device,  # noqa: F811
                                        tmp_path):
    """Each volume an LV (here a loop device), linked by volume id in the
    image's directory as vdsm's prepareImage links them; the leaf written
    onto its LV with the parent named relative to that directory
    (blockVolume: qemuimg.create on the LV, backing the parent's id)."""
    image_dir = tmp_path / "blockSD" / "images" / "data"
    image_dir.mkdir(parents=True)
    base_vol, leaf_vol = str(uuid.uuid4()), str(uuid.uuid4())
    leaf_lv = tmp_path / "leaf-lv"
    with open(str(leaf_lv), "wb") as f:
        f.truncate(8 << 20)
    os.symlink(loop_device(fs_volume), str(image_dir / base_vol))
    os.symlink(loop_device(str(leaf_lv)), str(image_dir / leaf_vol))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                    base_vol, "-F", "raw", leaf_vol], check=True,
                   cwd=str(image_dir))
    leaf = str(image_dir / leaf_vol)
    xml = domxml.build(str(uuid.uuid4()), "qb", "runc", busybox_oci,
                       command=["sh", "-c", "echo blk > /srv/data/file"],
                       disks=[(leaf, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    xml = as_qcow2(xml, leaf).replace('<source file="%s" />' % leaf,
                                      '<source dev="%s" />' % leaf)
    ctr = create(xml, paths=paths)
    try:
        assert ctr.spec.disks[1].block and ctr.spec.disks[1].fmt == "qcow2"
        deadline = time.monotonic() + 30    # a bound, not a timing
        while ctr.refresh() != constants.DOWN and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctr.getStats()["exitCode"] == constants.NORMAL
    finally:
        ctr.destroy(gracefulAttempts=0)
    assert no_daemon_for(str(tmp_path))
    assert read_back(leaf, "file", tmp_path) == "blk\n"
    mp = str(tmp_path / "base.mnt")
    os.mkdir(mp)
    subprocess.run(["mount", "-o", "loop,ro", fs_volume, mp], check=True)
    try:
        assert not os.path.exists(os.path.join(mp, "file"))
    finally:
        subprocess.run(["umount", mp], check=True)




def _cgroup_of(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        return [line.split(":", 2)[2].strip() for line in f
                if line.startswith("0::")][0]


@pytest.mark.skipif(not proc.systemd_booted(),
                    reason="systemd is not PID 1 here: nothing kills a "
                    "service's cgroup (runs in tests/hostvm, make check-el9)")
def test_qcow2_volume_daemon_outlives_its_starter(paths, busybox_oci,
                                                  fs_volume, tmp_path):
    """The volume's daemon runs in a scope of its own in the containers'
    slice, not in the cgroup of the process that started it (supervdsmd's,
    which systemd kills when supervdsmd.service restarts); its scope is
    gone with it at teardown."""
    _, leaf = chain(str(tmp_path / "sd" / "images" / "data"), fs_volume)
    xml = domxml.build(str(uuid.uuid4()), "q", "runc", busybox_oci,
                       command=["sleep", "1000"],
                       disks=[(leaf, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    ctr = create(as_qcow2(xml, leaf), paths=paths)
    storage = bundle_of(ctr).storage_dir
    try:
        [pid] = _daemon_pids(storage)
        group = _cgroup_of(pid)
        assert group != _cgroup_of(os.getpid())
        parent, scope = group.rsplit("/", 1)
        assert scope.startswith("vdsm-container-qsd-") and \
            scope.endswith(".scope")
        assert parent.endswith("/" + paths.cgroup_parent), group
    finally:
        ctr.destroy(gracefulAttempts=0)
    assert no_daemon_for(storage)
    assert not os.path.exists(os.path.join("/sys/fs/cgroup",
                                           group.lstrip("/")))


def test_release_disks_only_once_the_container_ended(paths, busybox_oci,
                                                     fs_volume, tmp_path):
    """``HostBackend.release_disks`` (VdsmContainer.setDownStatus calls it
    before vdsm tears the volumes down) leaves a running container's
    exports alone and stops those of one that ended."""
    _, leaf = chain(str(tmp_path / "sd" / "images" / "data"), fs_volume)
    xml = domxml.build(str(uuid.uuid4()), "q", "runc", busybox_oci,
                       command=["sleep", "1000"],
                       disks=[(leaf, "data", False)],
                       custom={"containerVolumes": "data:/srv/data"})
    ctr = create(as_qcow2(xml, leaf), paths=paths)
    storage = bundle_of(ctr).storage_dir
    try:
        assert ctr.lastStatus == constants.UP
        assert ctr.backend.release_disks(ctr.id) is False
        assert not no_daemon_for(storage)
        os.kill(bundle_of(ctr).pid(), 9)
        deadline = time.monotonic() + 30    # a bound, not a timing
        while ctr.refresh() != constants.DOWN and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctr.lastStatus == constants.DOWN
        assert ctr.backend.release_disks(ctr.id) is True
        assert no_daemon_for(storage)
    finally:
        ctr.destroy(gracefulAttempts=0)
    assert no_daemon_for(storage)
    assert not os.path.exists(storage)


@pytest.mark.parametrize("slice_", [None, "vdsm-containers.slice"],
                         ids=["own cgroup", "systemd scope"])
def test_missing_daemon_is_named(tmp_path, monkeypatch, slice_):
    """Without qemu-storage-daemon the refusal says so, also where it
    would have run under systemd-run (whose own failure would not)."""
    leaf = str(tmp_path / "leaf.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", leaf, "1M"],
                   check=True)
    disk = domxml.parse(domxml.build(str(uuid.uuid4()), "r", "runc",
                                     leaf)).image_disk
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    target = str(tmp_path / "export")
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        qcow.export(disk, target, writable=True, slice_=slice_)
    assert "qemu-storage-daemon is not installed" in str(e.value)
    assert sorted(os.listdir(str(tmp_path))) == ["leaf.qcow2"]

"""upload-image's clean-up while Engine is still at work
(contrib/ovirt-container/container_cleanup.py), against the fake Engine
and the real ovirt-imageio daemon of test_upload_image.py.

The fake Engine behaves as Engine does here (tests/engine/storage.py): a
new disk stays LOCKED while AddDisk runs, and removing a LOCKED disk is
refused with 409 (RemoveDiskCommand.validate); after a failed finalize
the disk is ILLEGAL until Engine removes it.  Every wait of the clean-up
is said on stderr and bounded; the bounds are set to 0 here where a test
needs them to pass, so nothing waits on a clock.  Ctrl-C is a real
SIGINT, sent when the fake Engine is asked for the disk."""

import os
import re
import signal

from . import test_upload_image as up

import container_upload  # noqa: E402  (beside the tool, on its path)

imageio, engine, run, image = up.imageio, up.engine, up.run, up.image
imageio_certs = up.imageio_certs
left, NOTHING = up.left, up.NOTHING

FOREVER = 10 ** 9       # reads: Engine never gets there in a test
LOCK_WAIT = (r"ovirt-container: disk img\.tar \((\S+)\) is locked \(Engine "
             r"is still at work on it\): waiting for Engine to unlock it, "
             r"at most %d s, to remove it")


def ctrl_c_at(engine, *reads):
    """SIGINT to this process at the n-th read of the disk (n in
    ``reads``), before the fake Engine answers it: the tool gets it while
    it waits for the answer, as an admin's Ctrl-C."""
    count = [0]

    def on_read(disk):
        count[0] += 1
        if count[0] in reads:
            os.kill(os.getpid(), signal.SIGINT)
    engine.storage.on_disk_read = on_read


def deletes(engine):
    return [r["path"].rsplit("/", 1)[-1] for r in engine.requests
            if r["method"] == "DELETE" and "/disks/" in r["path"]]


def hint(engine, disk_id):
    return ("disk img.tar (%s) is left: remove it once Engine has unlocked "
            "it (Administration Portal: Storage > Disks; or the API: "
            "DELETE %s/disks/%s)" % (disk_id, engine.url, disk_id))


def test_ctrl_c_while_engine_creates_the_disk_removes_it(
        engine, imageio, run, image, ctrl_c):
    engine.storage.locked_reads = 3
    ctrl_c_at(engine, 1)
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (130, "")
    wait, last = err.splitlines()
    disk_id = re.fullmatch(LOCK_WAIT % container_upload.LOCK_TIMEOUT,
                           wait).group(1)
    assert last == ("ovirt-container: upload-image wait for disk %s to be "
                    "OK: interrupted" % disk_id)
    # Removed once Engine unlocked it: one DELETE, not refused.
    assert deletes(engine) == [disk_id]
    assert left(engine, imageio) == NOTHING


def test_second_ctrl_c_stops_the_wait_and_names_the_disk(
        engine, imageio, run, image, ctrl_c):
    engine.storage.locked_reads = FOREVER
    ctrl_c_at(engine, 1, 3)     # 2: the clean-up's first read
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (130, "")
    wait, last = err.splitlines()
    disk_id = re.fullmatch(LOCK_WAIT % container_upload.LOCK_TIMEOUT,
                           wait).group(1)
    assert last == ("ovirt-container: upload-image wait for disk %s to be "
                    "OK: interrupted; the clean-up was interrupted; %s"
                    % (disk_id, hint(engine, disk_id)))
    assert list(engine.storage.disks) == [disk_id]
    assert deletes(engine) == []


def test_failure_while_engine_creates_the_disk_removes_it(
        engine, imageio, run, image, monkeypatch):
    monkeypatch.setattr(container_upload, "DISK_TIMEOUT", 0)
    engine.storage.locked_reads = 3
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    wait, last = err.splitlines()
    disk_id = re.fullmatch(LOCK_WAIT % container_upload.LOCK_TIMEOUT,
                           wait).group(1)
    assert last == ("ovirt-container: upload-image wait for disk %s to be "
                    "OK: timed out after 0 s" % disk_id)
    assert deletes(engine) == [disk_id]
    assert left(engine, imageio) == NOTHING


def test_disk_locked_past_the_bound_is_named(engine, imageio, run, image,
                                             monkeypatch):
    monkeypatch.setattr(container_upload, "DISK_TIMEOUT", 0)
    monkeypatch.setattr(container_upload, "LOCK_TIMEOUT", 0, raising=False)
    engine.storage.locked_reads = FOREVER
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    wait, last = err.splitlines()
    disk_id = re.fullmatch(LOCK_WAIT % 0, wait).group(1)
    assert last == ("ovirt-container: upload-image wait for disk %s to be "
                    "OK: timed out after 0 s; it is still locked after 0 s; "
                    "%s" % (disk_id, hint(engine, disk_id)))
    assert list(engine.storage.disks) == [disk_id]


def _transfer_id(err):
    return re.search(r"finalize transfer (\S+):", err).group(1)


def test_finished_failure_wait_is_said(engine, imageio, run, image):
    engine.storage.fail_finalize = True
    engine.storage.removal_reads = 3        # Engine removes the disk
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    transfer_id = _transfer_id(err)
    disk_id = engine.storage.transfers[transfer_id].disk.id
    assert err.splitlines() == [
        "ovirt-container: transfer %s ended in finished_failure: waiting "
        "for Engine to remove disk %s, at most %d s"
        % (transfer_id, disk_id, container_upload.CLEANUP_TIMEOUT),
        "ovirt-container: upload-image finalize transfer %s: the transfer "
        "is finished_failure" % transfer_id]
    assert deletes(engine) == []
    assert left(engine, imageio) == NOTHING


def test_finished_failure_wait_is_bounded(engine, imageio, run, image,
                                          monkeypatch):
    monkeypatch.setattr(container_upload, "CLEANUP_TIMEOUT", 0)
    engine.storage.fail_finalize = True
    engine.storage.removal_reads = FOREVER  # Engine never removes it
    rc, out, err = run("upload-image", image, "--storage-domain", "data")
    assert (rc, out) == (1, "")
    transfer_id = _transfer_id(err)
    disk_id = engine.storage.transfers[transfer_id].disk.id
    assert err.splitlines() == [
        "ovirt-container: transfer %s ended in finished_failure: waiting "
        "for Engine to remove disk %s, at most 0 s" % (transfer_id, disk_id),
        "ovirt-container: Engine did not remove disk %s in 0 s: removing "
        "it" % disk_id,
        "ovirt-container: upload-image finalize transfer %s: the transfer "
        "is finished_failure" % transfer_id]
    assert deletes(engine) == [disk_id]
    assert left(engine, imageio) == NOTHING

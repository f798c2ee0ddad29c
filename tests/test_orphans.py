"""Consistency after crashes (issue #14): a container the runtime created
but never started, what a host reboot leaves, and what a lost run directory
leaves (orphans: ``list``, ``destroy`` and ``gc`` find them by name)."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from vdsm_container import config
from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.container import Container, create
from vdsm_container.host.backend import HostBackend
from vdsm_container.linux import mounts
from vdsm_container.host import network
from vdsm_container.host import orphans
from vdsm_container.host.orphans import scan as orphan_scan
from vdsm_container import runtimes
from vdsm_container.runtimes import base
from vdsm_container.spec import domxml

from . import leaks
from .conftest import bundle_of, driver_of, wait_log

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


@pytest.fixture(autouse=True)
def reap_orphans(paths):
    """After leakcheck has judged: remove what a failed test left with no
    record, which the ``paths`` fixture's destroy can't find."""
    yield
    HostBackend(paths).gc(dry_run=False)


def xml(image, vm_id=None, command=("sleep", "1000"), runtime="runc",
        **kw):
    return domxml.build(vm_id or str(uuid.uuid4()), "o", runtime, image,
                        command=list(command), **kw)


def recreate_as_created(ctr):
    """Leave ``ctr``'s container as a kill -9 between the runtime's create
    and start does: ``runc create`` done (its init waits on exec.fifo, no
    conmon), ``runc start`` never run.  Its record says whatever it said."""
    bundle, driver = bundle_of(ctr), driver_of(ctr)
    driver.stop(bundle, 0)
    driver.cleanup(bundle)
    bundle.clear_runtime_files()
    # As a start does: the rootfs is mounted for the runtime's create,
    # then left to the container's namespace.
    bundle.remount_rootfs(os.path.join(
        ctr.paths.image_cache, ctr._state["image"]["key"], "rootfs"))
    subprocess.run(driver._args() + ["create", "--bundle", bundle.dir,
                                     "--pid-file", bundle.pid_file, ctr.id],
                   check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bundle.release_host_mounts()
    out = subprocess.run(driver._args() + ["state", ctr.id], check=True,
                         stdout=subprocess.PIPE).stdout
    assert json.loads(out)["status"] == "created"


@pytest.mark.parametrize("runtime_name,recorded", [
    ("runc", constants.UP), ("runc", constants.WAIT_FOR_LAUNCH),
    ("runsc", constants.UP)])
def test_created_but_never_started_is_down(paths, busybox_oci, runtime_name,
                                           recorded):
    """runc and crun: their init waits on exec.fifo; runsc: its state file
    says "created" (runsc.Driver._created)."""
    if runtime_name == "runsc":
        avail = runtimes.probe(paths, only=("runsc",))["runsc"]
        if not avail.available:
            pytest.skip("runsc cannot run here: %s" % avail.reason)
    ctr = create(xml(busybox_oci, runtime=runtime_name), paths=paths)
    recreate_as_created(ctr)
    if recorded == constants.WAIT_FOR_LAUNCH:
        # The starter died (a pid that is no process).
        state = ctr.backend.store.read(ctr.id)
        state.update(status=recorded, starter=2 ** 22 + 1)
        ctr.backend.store.write(ctr.id, state)
    assert driver_of(ctr).state(bundle_of(ctr)).status == base.CREATED
    again = Container.load(ctr.id, paths=paths)
    assert again.lastStatus == recorded
    assert again.refresh() == constants.DOWN
    stats = again.getStats()
    assert stats["exitReason"] == constants.DESTROYED_ON_STARTUP
    assert "never started" in stats["exitMessage"]
    # Recorded: a new process sees it Down too, and destroy removes it all.
    assert Container.load(ctr.id, paths=paths).lastStatus == constants.DOWN
    Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)


# After a host reboot (item 6)

def reboot(paths, ctr):
    """What a host reboot does to a container: its processes, cgroups,
    runtime state and namespaces die, its mounts go, the run directory
    (tmpfs) is empty again; the storage directory (disk) stays."""
    bundle, driver = bundle_of(ctr), driver_of(ctr)
    driver.stop(bundle, 0)
    driver.cleanup(bundle)
    network.teardown(paths, ctr.id)
    for point in mounts.mounted_under(bundle.storage_dir):
        mounts.umount(point)
    shutil.rmtree(paths.run_dir)
    assert os.path.isdir(bundle.storage_dir)


@pytest.mark.parametrize("disk_size", [0, 64])
def test_a_new_run_after_a_reboot_starts_from_the_image(paths, busybox_oci,
                                                        disk_size):
    paths = dataclasses.replace(paths, disk_size_mib=disk_size)
    vm_id = str(uuid.uuid4())
    first = create(xml(busybox_oci, vm_id, [
        "sh", "-c", "echo old > /marker; echo first-run; sleep 1000"]),
        paths=paths)
    wait_log(first, "first-run")
    reboot(paths, first)
    second = create(xml(busybox_oci, vm_id, [
        "sh", "-c", "cat /marker 2>/dev/null || echo no-marker; "
        "echo second-run; sleep 1000"]), paths=paths)
    try:
        out = wait_log(second, "second-run")
        assert "no-marker" in out
        assert "first-run" not in out and "old" not in out.split()
    finally:
        second.destroy(gracefulAttempts=0)


def test_leftovers_of_a_reboot_are_collected_by_gc(paths, busybox_oci,
                                                   runtime):
    ctr = create(xml(busybox_oci, runtime=runtime), paths=paths)
    reboot(paths, ctr)
    storage = paths.vm_storage_dir(ctr.id)
    listed = cli_json(paths, "gc")
    assert listed["dryRun"] is True
    assert [(p["kind"], p["what"]) for p in listed["found"]] == [
        ("storage", storage)]
    assert os.path.isdir(storage)           # a dry run changes nothing
    removed = cli_json(paths, "gc", "--force")
    assert [(p["kind"], p["what"]) for p in removed["removed"]] == [
        ("storage", storage)]
    assert not os.path.exists(storage)


def cli(paths, *argv):
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    return subprocess.run([sys.executable, "-m", "vdsm_container"] +
                          list(argv), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def cli_json(paths, *argv):
    out = cli(paths, *argv)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# A lost run directory (item 10)

@pytest.fixture
def bridge():
    name = "vcbr%s" % uuid.uuid4().hex[:6]
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    yield name
    subprocess.run(["ip", "link", "del", name], check=True)


def orphan(paths, image, bridge, vm_id=None):
    """A container with a NIC (netns, veth, udhcpc) and a volume (mounted
    on the host), whose run directory is then removed: its record is gone,
    everything else lives on."""
    volume = os.path.join(os.path.dirname(paths.run_dir),
                          "volume-%s.raw" % uuid.uuid4().hex[:8])
    with open(volume, "wb") as f:
        f.truncate(16 * 1024 ** 2)
    subprocess.run(["mkfs.ext4", "-q", "-F", volume], check=True)
    ctr = create(xml(image, vm_id, nics=[(bridge, "56:6f:00:0a:%02x:01"
                                          % (uuid.uuid4().int % 256))],
                     disks=[(volume, "data", False)],
                     custom={"containerVolumes": "data:/srv/data"}),
                 paths=paths)
    shutil.rmtree(paths.vm_run_dir(ctr.id))
    with pytest.raises(errors.NoSuchVM):
        Container.load(ctr.id, paths=paths)
    return ctr


def test_runsc_orphan_is_listed_and_destroyed(paths, busybox_oci):
    """A runsc container whose run directory is gone: its record in
    runsc's --root (a state file, not runc's directory) still finds it,
    and the CLI's destroy removes it all (leakcheck)."""
    ctr = create(xml(busybox_oci, runtime="runsc"), paths=paths)
    shutil.rmtree(paths.vm_run_dir(ctr.id))
    listed = {e["vmId"]: e for e in cli_json(paths, "list")}
    assert listed[ctr.id]["orphan"] is True
    assert "container" in listed[ctr.id]["left"]
    out = cli(paths, "destroy", ctr.id)
    assert out.returncode == 0, out.stderr
    assert cli_json(paths, "list") == []


def kinds(found, vm_id):
    return {p["kind"] for p in found if p["vmId"] == vm_id}


EVERY_KIND = {"container", "process", "cgroup", "netns", "mount", "loop",
              "storage"}


def test_list_and_destroy_find_a_container_without_its_run_dir(
        paths, busybox_oci, bridge):
    ctr = orphan(paths, busybox_oci, bridge)
    listed = {e["vmId"]: e for e in cli_json(paths, "list")}
    assert listed[ctr.id]["orphan"] is True
    assert listed[ctr.id]["status"] == constants.UP
    assert listed[ctr.id]["vmName"] == "o"
    assert set(listed[ctr.id]["left"]) == EVERY_KIND
    # A create of the same vmId is refused while it lives.
    with pytest.raises(errors.VMExists):
        create(xml(busybox_oci, ctr.id), paths=paths)
    out = cli(paths, "destroy", ctr.id)
    assert out.returncode == 0, out.stderr
    assert cli_json(paths, "list") == []
    again = cli(paths, "destroy", ctr.id)
    assert again.returncode == 1 and "error 1:" in again.stderr


def test_gc_reaps_orphans_and_nothing_else(paths, busybox_oci, bridge,
                                           tmp_path):
    other = config.Paths(run_dir=str(tmp_path / "other" / "run"),
                         storage_dir=str(tmp_path / "other" / "storage"),
                         cgroup_parent=paths.cgroup_parent.replace(
                             ".slice", "-other.slice"), stop_timeout=2.0)
    live = create(xml(busybox_oci, nics=[(bridge, "56:6f:00:0b:00:01")]),
                  paths=paths)
    lost = orphan(paths, busybox_oci, bridge)
    rebooted = create(xml(busybox_oci), paths=paths)
    reboot_one(paths, rebooted)
    other_live = create(xml(busybox_oci), paths=other)
    other_lost = orphan(other, busybox_oci, bridge)
    before_other = leaks.snapshot(other)
    try:
        found = cli_json(paths, "gc")["found"]
        assert kinds(found, lost.id) == EVERY_KIND
        assert kinds(found, rebooted.id) == {"storage"}
        assert {p["vmId"] for p in found} == {lost.id, rebooted.id}
        assert cli_json(paths, "list")[0]["vmId"] == live.id
        result = cli_json(paths, "gc", "--force")
        assert result["failed"] == []
        assert {(p["kind"], p["what"]) for p in result["removed"]} == {
            (p["kind"], p["what"]) for p in found}
        assert cli_json(paths, "gc")["found"] == []
        # The live VM runs on, with its NIC; the other tree is untouched.
        assert Container.load(live.id, paths=paths).refresh() == \
            constants.UP
        assert network.stats(paths, live.id)
        leaks.assert_same(before_other, leaks.snapshot(other))
        assert {p["vmId"] for p in cli_json(other, "gc")["found"]} == {
            other_lost.id}
    finally:
        live.destroy(gracefulAttempts=0)
        other_live.destroy(gracefulAttempts=0)
        HostBackend(other).gc(dry_run=False)
        leaks.remove_cgroup_parent(other.cgroup_parent)
    assert leaks.snapshot(other)["processes"] == []


def reboot_one(paths, ctr):
    """A reboot, for one VM of several: its run directory goes."""
    bundle, driver = bundle_of(ctr), driver_of(ctr)
    driver.stop(bundle, 0)
    driver.cleanup(bundle)
    for point in mounts.mounted_under(bundle.storage_dir):
        mounts.umount(point)
    shutil.rmtree(paths.vm_run_dir(ctr.id))


def test_a_start_reaps_what_an_ended_run_left_without_its_run_dir(
        paths, busybox_oci, bridge):
    lost = orphan(paths, busybox_oci, bridge)
    os.kill(lost.init_pid, signal.SIGKILL)     # conmon ends with it
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and orphans.live(
            orphans.find(paths, lost.id)):
        time.sleep(0.05)
    left = orphans.find(paths, lost.id)
    assert orphans.live(left) == [] and {"mount", "netns", "storage"} <= \
        {p["kind"] for p in left}
    again = create(xml(busybox_oci, lost.id), paths=paths)
    try:
        assert again.lastStatus == constants.UP
        assert orphans.find(paths) == []
    finally:
        again.destroy(gracefulAttempts=0)


def test_scope_units_are_matched_to_their_own_slice(monkeypatch):
    """systemd keeps a scope's unit after its cgroup went (failed, until
    reset): gc finds it by its slice.  ``systemctl show`` prints one block
    per unit in its own order of properties (Slice before Id), so each
    block is read as a whole: a unit of another tree's slice is not ours
    even when it follows one of ours."""
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    listing = "".join("vdsm-container-%s.scope loaded failed failed x\n" % i
                      for i in (ours, theirs))
    shown = ("Slice=vdsm-containers-test-a.slice\n"
             "Id=vdsm-container-%s.scope\n\n"
             "Slice=vdsm-containers-test-a-other.slice\n"
             "Id=vdsm-container-%s.scope\n" % (ours, theirs))

    def run(argv, timeout=60):
        out = listing if "list-units" in argv else shown
        return subprocess.CompletedProcess(argv, 0, out, "")
    monkeypatch.setattr(orphan_scan.proc, "run", run)
    assert orphan_scan._scope_units("vdsm-containers-test-a.slice") == [
        "vdsm-container-%s.scope" % ours]

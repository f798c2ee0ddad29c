"""Container VMs on real runc containers, supervised by conmon.

Every test runs under ``leakcheck``: it fails if the test leaves a mount,
cgroup, runtime state, file or process of a container behind.
"""

import dataclasses
import os
import signal
import subprocess
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container import runtimes
from vdsm_container.runtimes import ocistate
from vdsm_container.container import Container, create
from vdsm_container.linux import loop
from vdsm_container.linux import mounts
from vdsm_container.host.backend import HostBackend
from vdsm_container.stats import cgroups
from .conftest import bundle_of, driver_of, host_shape, in_container, \
    wait_log
from .leaks import loop_freed

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


class Notifications:
    """A clientIF double that records vdsm's ``cif.notify`` events."""

    def __init__(self):
        self.events = []

    def notify(self, event_id, params):
        self.events.append((event_id, params))

    def statuses(self, vm_id):
        return [p[vm_id]["status"] for e, p in self.events
                if e == "|virt|VM_status|%s" % vm_id]


def xml_for(image, command, runtime="runc", memory_mib=64, **kw):
    return domxml.build(str(uuid.uuid4()), "test-vm", runtime, image,
                        memory_mib=memory_mib, command=command, **kw)


def wait_status(ctr, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctr.refresh() == status:
            return
        time.sleep(0.05)
    raise AssertionError("%s is %s, not %s" % (ctr.id, ctr.lastStatus,
                                                status))


@pytest.fixture
def started(paths, busybox_oci, runtime):
    """Start containers; destroy whatever the test left running."""
    made = []

    def start(command=("sleep", "1000"), image=None, **kw):
        cif = kw.pop("cif", None)
        kw.setdefault("runtime", runtime)
        ctr = create(xml_for(image or busybox_oci, list(command), **kw),
                     paths=paths, cif=cif)
        made.append(ctr)
        return ctr

    yield start
    for ctr in made:
        try:
            Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)
        except errors.NoSuchVM:
            pass


def test_create_status_stats_destroy(paths, started):
    cif = Notifications()
    ctr = started(cif=cif)
    assert ctr.lastStatus == constants.UP
    st = ctr.status()
    assert st["vmId"] == ctr.id and st["status"] == "Up"
    ctr.sample()
    time.sleep(0.2)
    ctr.sample()
    stats = ctr.getStats()
    assert stats["status"] == "Up"
    assert int(stats["pid"]) == bundle_of(ctr).pid() > 0
    assert stats["cpuActual"] is True
    assert int(stats["memoryStats"]["mem_total"]) == 64 * 1024
    assert ctr.destroy() == {"status": {"code": 0,
                                        "message": "Machine destroyed"}}
    assert ctr.lastStatus == constants.DOWN
    assert cif.statuses(ctr.id) == ["Up", "Down"]
    with pytest.raises(errors.NoSuchVM):
        Container.load(ctr.id, paths=paths)


def test_cgroup_limits_applied(started):
    ctr = started(memory_mib=96, vcpus=2)
    h = ctr.backend.hierarchy
    rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
    if h.version == 1:
        mem = open(os.path.join(h.path(rel, "memory"),
                                "memory.limit_in_bytes")).read()
        quota = open(os.path.join(h.path(rel, "cpu"),
                                  "cpu.cfs_quota_us")).read()
        pids = open(os.path.join(h.path(rel, "pids"), "pids.max")).read()
    else:
        mem = open(os.path.join(h.path(rel), "memory.max")).read()
        quota = open(os.path.join(h.path(rel), "cpu.max")).read().split()[0]
        pids = open(os.path.join(h.path(rel), "pids.max")).read()
    assert int(mem) == 96 * 1024 ** 2
    assert int(quota) == 200000
    assert int(pids) == 4096


def test_recovered_by_a_new_process_view(paths, started):
    ctr = started()
    again = Container.load(ctr.id, paths=paths)
    assert again.refresh() == constants.UP
    assert again.spec == ctr.spec
    assert [c.id for c in Container.load_all(paths=paths)] == [ctr.id]


@pytest.mark.parametrize("command,code,reason,text", [
    (("true",), constants.NORMAL, constants.USER_SHUTDOWN, "status 0"),
    (("sh", "-c", "exit 3"), constants.ERROR, constants.GENERIC_ERROR,
     "status 3"),
])
def test_exit_is_reported(started, command, code, reason, text):
    cif = Notifications()
    ctr = started(command, cif=cif)
    wait_status(ctr, constants.DOWN)
    stats = ctr.getStats()
    assert (stats["exitCode"], stats["exitReason"]) == (code, reason)
    assert text in stats["exitMessage"]
    assert cif.statuses(ctr.id)[-1] == "Down"


def test_killed_by_signal_is_reported(started):
    ctr = started(("sleep", "1000"))
    os.kill(bundle_of(ctr).pid(), 9)
    wait_status(ctr, constants.DOWN)
    stats = ctr.getStats()
    assert stats["exitCode"] == constants.ERROR
    assert "killed by SIGKILL" in stats["exitMessage"]


def test_oom_kill_is_reported(started, tmp_path, monkeypatch):
    # From a scratch working directory: conmon writes an "oom" file in its
    # own, which must be the container's bundle, never the caller's.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # busybox tail keeps /dev/zero (no newline) in memory until OOM.
    ctr = started(("tail", "/dev/zero"), memory_mib=32)
    wait_status(ctr, constants.DOWN, timeout=60)
    stats = ctr.getStats()
    assert stats["exitCode"] == constants.ERROR
    assert "ran out of memory" in stats["exitMessage"]
    assert os.listdir(cwd) == []
    # The kernel's own record, which outlives the cgroup, names this
    # container's and no other.
    assert ocistate.kernel_oom_kill(cgroups.scope_name(ctr.id))
    assert not ocistate.kernel_oom_kill(cgroups.scope_name(str(uuid.uuid4())))


def test_shutdown_is_graceful(started):
    ctr = started(("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1;"
                   " done"))
    ctr.shutdown()
    assert ctr.lastStatus == constants.POWERING_DOWN
    wait_status(ctr, constants.DOWN)
    stats = ctr.getStats()
    assert stats["exitReason"] == constants.ADMIN_SHUTDOWN
    assert stats["exitCode"] == constants.NORMAL


def test_shutdown_timeout_without_force_leaves_it_up(started, runtime):
    # PID 1 of a pid namespace ignores SIGTERM without a handler.
    cif = Notifications()
    ctr = started(("sleep", "1000"), cif=cif)
    ctr.shutdown(timeout=0.5, force=False, wait=True)
    if runtime == "runsc":
        # gVisor's kernel does not shield its init from a signal sent from
        # outside (Linux's does, for a signal without a handler): SIGTERM
        # ends it, and the shutdown succeeds.
        assert ctr.lastStatus == constants.DOWN
        assert ctr.getStats()["exitReason"] == constants.ADMIN_SHUTDOWN
        return
    assert ctr.refresh() == constants.UP
    assert cif.statuses(ctr.id)[-2:] == [constants.POWERING_DOWN,
                                         constants.UP]
    # A later end is not taken for the abandoned shutdown's.
    os.kill(bundle_of(ctr).pid(), signal.SIGKILL)
    wait_status(ctr, constants.DOWN)
    assert ctr.getStats()["exitReason"] == constants.GENERIC_ERROR


def test_shutdown_with_force_kills_it(started):
    ctr = started(("sleep", "1000"))
    ctr.shutdown(timeout=0.5, force=True, wait=True)
    assert ctr.lastStatus == constants.DOWN
    stats = ctr.getStats()
    assert stats["exitReason"] == constants.ADMIN_SHUTDOWN
    assert stats["exitCode"] == constants.NORMAL


def test_destroy_kills_what_ignores_sigterm(paths, started, runtime):
    # PID 1 of a pid namespace ignores SIGTERM without a handler
    # (runsc: it does not, see the test above; a trap does).
    command = ("sh", "-c", "trap '' TERM; echo trapped; sleep 1000 & wait") \
        if runtime == "runsc" else ("sleep", "1000")
    ctr = started(command)
    if runtime == "runsc":
        # Up means the shell runs, not that its trap is set: a SIGTERM
        # before that ended it at once (a loaded host, 1 run in many).
        wait_log(ctr, "trapped")
    t0 = time.monotonic()
    ctr.destroy()
    assert time.monotonic() - t0 >= paths.stop_timeout


def test_pause_and_cont(started):
    ctr = started()
    ctr.pause()
    assert ctr.refresh() == constants.PAUSED
    ctr.cont()
    assert ctr.refresh() == constants.UP


def test_writes_stay_in_the_container_layer(paths, started):
    ctr = started(("sh", "-c", "echo x > /bin/written; rm /bin/ls; "
                   "sleep 1000"))
    # Until the shell has done both (a bound for a failure, not a timing).
    seen = in_container(ctr)
    deadline = time.monotonic() + 30
    while os.path.lexists(os.path.join(seen, "bin", "ls")) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.lexists(os.path.join(seen, "bin", "ls"))
    assert os.path.exists(os.path.join(seen, "bin", "written"))
    rootfs = os.path.join(paths.image_cache, ctr._state["image"]["key"],
                          "rootfs")
    assert not os.path.exists(os.path.join(rootfs, "bin", "written"))
    assert os.path.lexists(os.path.join(rootfs, "bin", "ls"))


def _content(path):
    """The file's text, or None while it does not exist yet."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_rootfs_is_mounted_in_the_container_only(paths, started):
    """Once the container runs, its overlay and writable layer are in no
    mount table of the host's (each would slow every later start); the
    layer lives on in the container's namespace and goes with it."""
    ctr = started(("sh", "-c", "echo x > /written; sleep 1000"))
    bundle = bundle_of(ctr)
    image = os.path.join(bundle.storage_dir, "layer.img")
    assert mounts.mounted_under(bundle.storage_dir) == []
    assert loop.devices_of(image), "the layer is not on a loop device"
    # The layer is the container's root filesystem: the limit, not the
    # storage filesystem, is what it sees (less ext4's own metadata).
    st = os.statvfs(in_container(ctr))
    size_mib = st.f_blocks * st.f_frsize >> 20
    assert paths.disk_size_mib * 0.85 < size_mib <= paths.disk_size_mib
    # The shell creates the file before it writes to it (and runsc's
    # sentry writes file data back through its gofer after the create):
    # wait for the content, not for the name.
    written = in_container(ctr, "/written")
    deadline = time.monotonic() + 30
    while _content(written) != "x\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _content(written) == "x\n"
    ctr.destroy(gracefulAttempts=0)
    # The container's namespace took the mounts with it: no loop device
    # is left on the (removed) layer image.
    assert loop_freed(image)


def test_the_image_is_recorded_before_the_rootfs_is_mounted(
        started, monkeypatch):
    """``images prune`` reads the records to know which cached images are
    in use: a starting container's record names its image before the
    overlay is mounted (which, once it runs, no host mount table shows)."""
    from vdsm_container.host import lifecycle
    seen = {}
    real_start = lifecycle.start

    def start(paths_, spec, driver, bundle, hierarchy, image):
        seen["record"] = HostBackend(paths_).store.read(spec.vm_id)
        return real_start(paths_, spec, driver, bundle, hierarchy, image)

    monkeypatch.setattr(lifecycle, "start", start)
    ctr = started()
    assert seen["record"]["image"] == ctr._state["image"]
    assert seen["record"]["status"] == constants.WAIT_FOR_LAUNCH


def test_logs_are_kept(started):
    ctr = started(("sh", "-c", "echo out; echo err >&2; sleep 1000"))
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline and "err" not in text:
        time.sleep(0.05)
        text = open(ctr.log_path()).read()
    assert " stdout F out" in text and " stderr F err" in text


def test_same_vm_id_twice(paths, started, busybox_oci):
    ctr = started()
    xml = domxml.build(ctr.id, "dup", "runc", busybox_oci,
                       command=["sleep", "1"])
    with pytest.raises(errors.VMExists):
        create(xml, paths=paths)
    assert Container.load(ctr.id, paths=paths).refresh() == constants.UP


def test_migrate_is_refused_and_changes_nothing(paths, started):
    ctr = started()
    before = open(os.path.join(paths.vm_run_dir(ctr.id),
                               "state.json")).read()
    with pytest.raises(errors.MigrationError) as e:
        ctr.migrate({"dst": "otherhost"})
    assert e.value.code == 12
    assert ctr.refresh() == constants.UP
    assert open(os.path.join(paths.vm_run_dir(ctr.id),
                             "state.json")).read() == before


# Failed starts: the VM is Down with the error, and nothing is left.

def _failed_start(paths, xml, cls):
    cif = Notifications()
    ctr = Container.from_xml(xml, paths=paths, cif=cif)
    with pytest.raises(cls) as e:
        ctr.run()
    assert ctr.lastStatus == constants.DOWN
    stats = ctr.getStats()
    assert stats["exitCode"] == constants.ERROR
    assert stats["exitMessage"] == str(e.value)
    assert cif.statuses(ctr.id)[-1] == "Down"
    assert Container.load_all(paths=paths) == []
    # Engine destroys a VM that went Down: that must work too.
    assert ctr.destroy()["status"]["code"] == 0
    return e.value


def test_start_fails_not_an_image(paths, tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(os.urandom(20000))
    err = _failed_start(paths, xml_for(str(bad), ["true"]),
                        errors.UnsupportedImageFormat)
    assert err.code == 17


def test_start_fails_missing_volume(paths, tmp_path):
    _failed_start(paths, xml_for(str(tmp_path / "none"), ["true"]),
                  errors.ImageFileNotFound)


def test_start_fails_in_runtime(paths, busybox_oci):
    err = _failed_start(paths, xml_for(busybox_oci, ["/no/such/binary"]),
                        errors.CannotCreateVM)
    assert "/no/such/binary" in str(err)
    assert err.code == 9


def test_crun_where_the_host_shape_allows(paths, busybox_oci):
    """crun 1.8 runs containers on pure cgroup v2 (EL9) and refuses hybrid
    hosts whose v2 side lists a controller (these CI machines): it is in
    caps, and runs a VM, exactly where the shape allows it."""
    avail = runtimes.probe(paths)["crun"]
    xml = xml_for(busybox_oci, ["sleep", "1000"], runtime="crun")
    if cgroups.Hierarchy().version == 2:
        assert avail.available, "%s: %s" % (host_shape(), avail.reason)
        ctr = create(xml, paths=paths)
        assert ctr.refresh() == constants.UP
        ctr.destroy(gracefulAttempts=0)
    else:
        assert not avail.available
        assert "hybrid" in avail.reason, avail.reason
        ctr = Container.from_xml(xml, paths=paths)
        with pytest.raises(errors.CannotCreateVM) as e:
            ctr.run()
        assert "crun" in str(e.value)
        assert Container.load_all(paths=paths) == []


@pytest.mark.runtime
def test_self_check_with_the_run_dir_on_a_nodev_mount(paths, tmp_path,
                                                      runtime):
    """The run dir, where the self-check's rootfs lives, is on /run, which
    systemd mounts nodev (every EL host): the self-check passes there, as a
    real container runs there (make check-el9-live found runc refused)."""
    nodev = tmp_path / "nodev"
    nodev.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nodev,nosuid,size=16m",
                    "tmpfs", str(nodev)], check=True)
    try:
        on_nodev = dataclasses.replace(paths, run_dir=str(nodev / "run"))
        assert runtimes.driver(runtime, on_nodev).self_check() is None
    finally:
        subprocess.run(["umount", str(nodev)], check=True)


def test_bad_xml_claims_nothing(paths):
    with pytest.raises(errors.InvalidParameter):
        create("<domain>", paths=paths)
    assert Container.load_all(paths=paths) == []

"""Shared fixtures: paths in a private tree, real images, leak checks.

Tests that start real containers use ``paths``: a run dir and a storage dir
of their own and a cgroup parent of their own, so they never meet the
host's real containers; ``leakcheck`` then proves that nothing is left.
"""

import dataclasses
import os
import signal
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from vdsm_container import config, runtimes

from . import leaks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference")
BUILD_IMAGE = os.path.join(REPO, "contrib", "build-busybox-image")


def host_shape():
    """The host shape the tests run on, as tests and skips name it: the
    cgroup layout and whether systemd is PID 1 (EL9 is "cgroup v2, systemd
    PID 1"; these CI machines "cgroup v1 (hybrid), no systemd")."""
    from vdsm_container.runtimes import proc
    from vdsm_container.stats import cgroups
    layout = "cgroup v2" if cgroups.Hierarchy().version == 2 else \
        "cgroup v1 (hybrid)" if os.path.exists(
            "/sys/fs/cgroup/unified/cgroup.controllers") else "cgroup v1"
    return "%s, %s" % (layout, "systemd PID 1" if proc.systemd_booted()
                       else "no systemd")


# A test that takes one of these (a private tree for real containers, their
# leak check, a runtime) or is marked runtime or network needs root and
# the runtimes: it gets the ``root_container`` marker.  The Python 3.9 run
# of ``make check`` (vdsm on EL9 runs 3.9) takes the others:
# ``-m "not root_container"``.
ROOT_CONTAINER_FIXTURES = frozenset(("paths", "userns_paths", "leakcheck",
                                     "runtime"))
ROOT_CONTAINER_MARKERS = ("runtime", "network")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ROOT_CONTAINER_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or any(item.get_closest_marker(m)
                       for m in ROOT_CONTAINER_MARKERS):
            item.add_marker(pytest.mark.root_container)


def pytest_report_header(config):
    return "host shape: %s" % host_shape()


def reference(*parts):
    """A file of ../shared/reference, or skip saying why."""
    path = os.path.join(SHARED_REFERENCE, *parts)
    if not os.path.exists(path):
        pytest.skip("%s not found: ../shared/reference is absent beside "
                    "the repository, so this schema check cannot run" % path)
    return path


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("images")


def _build(image_dir, name, fmt="oci", ref="busybox:latest"):
    path = os.path.join(str(image_dir), name)
    if not os.path.exists(path):
        subprocess.run([BUILD_IMAGE, path, fmt, ref], check=True)
    return path


@pytest.fixture(scope="session")
def busybox_oci(image_dir):
    """An OCI image archive of busybox, built offline."""
    return _build(image_dir, "busybox-oci.tar")


@pytest.fixture(scope="session")
def busybox_docker(image_dir):
    """The same image as a docker-archive."""
    return _build(image_dir, "busybox-docker.tar", "docker",
                  "docker.io/library/busybox:1.36")


@pytest.fixture
def paths(tmp_path):
    parent = "vdsm-containers-test-%s.slice" % uuid.uuid4().hex[:8]
    p = config.Paths(run_dir=str(tmp_path / "run"),
                     storage_dir=str(tmp_path / "storage"),
                     cgroup_parent=parent, stop_timeout=2.0)
    yield p
    # After leakcheck has judged: destroy what a failed test left running,
    # so that one failure doesn't cascade into the next tests.
    from vdsm_container.container import Container
    for ctr in Container.load_all(paths=p):
        try:
            ctr.destroy(gracefulAttempts=0)
        except Exception:
            pass
    # The parent cgroup is per test: remove it once its children are gone.
    leaks.remove_cgroup_parent(parent)


@pytest.fixture
def leakcheck(paths):
    """Fail the test if it leaves a mount, cgroup, runtime state, process
    or file of a container VM behind."""
    before = leaks.snapshot(paths)
    yield
    after = leaks.snapshot(paths)
    leaks.assert_same(before, after)


@pytest.fixture
def userns_paths(paths):
    """``paths`` moved to a tree a user namespace's root can walk down
    (pytest's own tmp tree is private to root, and a container in a user
    namespace runs as an unprivileged host uid), leak-checked like
    ``paths``."""
    base = tempfile.mkdtemp(prefix="vdsm-container-userns-", dir="/var/tmp")
    os.chmod(base, 0o711)
    moved = dataclasses.replace(paths, run_dir=base + "/run",
                                storage_dir=base + "/storage")
    before = leaks.snapshot(moved)
    yield moved
    after = leaks.snapshot(moved)
    shutil.rmtree(base, ignore_errors=True)
    leaks.assert_same(before, after)


@pytest.fixture
def fs_volume(tmp_path):
    """A raw file volume holding an ext4 filesystem, as on a file domain:
    what a VM's other disk brings to ``containerVolumes``."""
    path = str(tmp_path / "volume.raw")
    with open(path, "wb") as f:
        f.truncate(16 * 1024 ** 2)
    subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)
    return path


def bundle_of(ctr):
    """The container's files on the host (its backend runs in-process)."""
    return ctr.backend.bundle(ctr.id)


def in_container(ctr, path="/"):
    """``path`` as the running container sees it, from the host: its
    rootfs is mounted in its own mount namespace only
    (``Bundle.release_host_mounts``)."""
    pid = bundle_of(ctr).pid()
    if ctr.spec.runtime == "runsc":
        # The sandbox's root is not the container's: its gofer's is.
        pid = driver_of(ctr).gofer_pid(bundle_of(ctr))
    return "/proc/%d/root/%s" % (pid, path.lstrip("/"))


def driver_of(ctr):
    """The runtime driver running the container."""
    return ctr.backend.driver(ctr.spec.runtime)


def wait_log(ctr, text, timeout=20, times=1):
    """The container's log once ``text`` is in it ``times`` times; fails
    after ``timeout`` seconds with the log's tail."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        try:
            with open(ctr.log_path(), errors="replace") as f:
                out = f.read()
        except FileNotFoundError:
            out = ""
        if out.count(text) >= times:
            return out
        time.sleep(0.05)
    raise AssertionError("%r not %d times in the log: %r"
                         % (text, times, out[-2000:]))


def status_check_until_ended(backend, vm_id, timeout=10):
    """Status checks (``HostBackend.observe`` without sampling) of
    ``vm_id`` until one finds its container no longer running, or
    ``timeout`` s pass: the last observation, for the test to judge."""
    deadline = time.monotonic() + timeout
    while True:
        seen = backend.observe([vm_id])[vm_id]
        if "runtime" in seen and seen["runtime"].status != "running" \
                or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


_probed = {}     # runtime -> Availability, probed once per session


@pytest.fixture(params=["runc", "crun", "runsc"])
def runtime(request, paths):
    """Each OCI runtime in turn.  crun 1.8 runs on pure cgroup v2 (EL9) but
    refuses hybrid hosts: there its tests skip, saying so and on which
    shape, rather than pass without running.  runsc (gVisor) runs where
    its probe finds a platform (ptrace works everywhere)."""
    name = request.param
    if name != "runc":
        if name not in _probed:
            _probed[name] = runtimes.probe(paths, only=(name,))[name]
        avail = _probed[name]
        if not avail.available:
            pytest.skip("%s cannot run containers on this host (%s): %s"
                        % (name, host_shape(), avail.reason))
    return name


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as under a terminal, even where the
    suite started with SIGINT ignored (a background job): Python keeps an
    inherited SIG_IGN, and a test's real SIGINT would then do nothing."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)

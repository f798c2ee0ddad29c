"""The kernel settings mark-host raises (vdsm_container/vdsm/hostsysctl.py):
where they come from, that they are only raised, and, on cgroup v2, that
a container started past root's inotify limit loses conmon's watch of its
memory.events until mark-host has run."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.container import Container, create
from vdsm_container.spec import domxml
from vdsm_container.stats import cgroups
from vdsm_container.vdsm import hostsysctl

from .conftest import REPO, bundle_of, host_shape

KEY = "fs.inotify.max_user_instances"
PACKAGE_FILE = os.path.join(REPO, "contrib", "vdsm",
                            "50-vdsm-container.sysctl")


def _proc_tree(tmp_path, value):
    d = tmp_path / "sys" / "fs" / "inotify"
    d.mkdir(parents=True)
    (d / "max_user_instances").write_text("%d\n" % value)
    return str(tmp_path / "sys"), d / "max_user_instances"


def test_package_file_holds_the_defaults():
    """The shipped sysctl.d file and the defaults of a pip install agree."""
    with open(PACKAGE_FILE) as f:
        assert hostsysctl.parse(f.read()) == hostsysctl.DEFAULTS


def test_the_spec_ships_the_file():
    with open(os.path.join(REPO, "vdsm-container.spec")) as f:
        spec = f.read()
    assert "contrib/vdsm/50-vdsm-container.sysctl" in spec
    assert "%{_sysctldir}/50-vdsm-container.conf" in spec


def test_an_admins_file_takes_the_packages_place(tmp_path):
    etc, usr = tmp_path / "etc", tmp_path / "usr"
    for d in (etc, usr):
        d.mkdir()
    dirs = (str(etc), str(usr))
    assert hostsysctl.wanted(dirs) == (hostsysctl.DEFAULTS, None)
    (usr / hostsysctl.FILE_NAME).write_text("%s = 4096\n" % KEY)
    assert hostsysctl.wanted(dirs) == ({KEY: 4096},
                                       str(usr / hostsysctl.FILE_NAME))
    (etc / hostsysctl.FILE_NAME).write_text(
        "# mine\n; also mine\nkernel.pid_max = 99\n-fs/inotify/"
        "max_user_instances=512\n")
    assert hostsysctl.wanted(dirs) == ({KEY: 512},
                                       str(etc / hostsysctl.FILE_NAME))


def test_raised_never_lowered(tmp_path):
    proc_sys, path = _proc_tree(tmp_path, 128)
    assert hostsysctl.apply({KEY: 8192}, proc_sys) == {
        KEY: {"was": 128, "now": 8192}}
    assert path.read_text() == "8192\n"
    path.write_text("100000\n")
    assert hostsysctl.apply({KEY: 8192}, proc_sys) == {
        KEY: {"was": 100000, "now": 100000}}
    assert path.read_text() == "100000\n"


def test_an_unwritable_setting_is_reported_not_raised(tmp_path):
    res = hostsysctl.apply({KEY: 8192}, str(tmp_path / "nothing"))
    assert list(res) == [KEY] and "error" in res[KEY]


def _conmon_watches(ctr, timeout):
    """True once the container's conmon holds an inotify instance (it must
    run: oomwatch.watching says True of one that has exited)."""
    from vdsm_container.runtimes import oomwatch
    with open(bundle_of(ctr).conmon_pid_file) as f:
        pid = int(f.read())
    assert os.path.exists("/proc/%d/fd" % pid), "conmon %d is gone" % pid
    return oomwatch.watching(pid, wait=timeout)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_conmon_keeps_its_watch_once_mark_host_ran(paths, busybox_oci,
                                                   tmp_path, caplog):
    if cgroups.Hierarchy().version != 2:
        pytest.skip("conmon watches memory.events with inotify on cgroup "
                    "v2 only (this host: %s); runs in make check-el9's VM"
                    % host_shape())
    real = "/proc/sys/fs/inotify/max_user_instances"
    with open(real) as f:
        saved = f.read()
    env = dict(os.environ, PYTHONPATH=REPO,
               VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    made = []

    def start():
        made.append(create(domxml.build(
            str(uuid.uuid4()), "inotify", "runc", busybox_oci,
            command=["sleep", "1000"]), paths=paths))
        assert made[-1].refresh() == constants.UP
        return made[-1]

    try:
        # Below what root holds already (systemd alone holds several):
        # as on a host with ~120 containers at the default of 128.
        with open(real, "w") as f:
            f.write("1\n")
        lost = start()
        # Up, and conmon said nothing (its stderr is /dev/null): it runs
        # on without the watch; the driver says so in vdsm.log.
        time.sleep(1)
        assert not _conmon_watches(lost, timeout=0)
        warned = [r.getMessage() for r in caplog.records
                  if r.name == "vdsm_container.runtimes.oomwatch"]
        assert len(warned) == 1 and lost.id in warned[0]
        assert "fs.inotify.max_user_instances = 1" in warned[0]
        out = subprocess.run(
            [sys.executable, "-m", "vdsm_container", "mark-host",
             "--hooks-dir", str(tmp_path / "hooks"),
             "--sysctl-dir", str(tmp_path / "none")],
            env=env, stdout=subprocess.PIPE, universal_newlines=True,
            check=True).stdout
        assert json.loads(out)["sysctl"]["settings"][KEY] == {
            "was": 1, "now": hostsysctl.DEFAULTS[KEY]}
        caplog.clear()
        assert _conmon_watches(start(), timeout=10)
        assert not [r for r in caplog.records
                    if r.name == "vdsm_container.runtimes.oomwatch"]
    finally:
        with open(real, "w") as f:
            f.write(saved)
        for ctr in made:
            Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)


def test_check_says_when_conmon_has_no_watch(caplog):
    """oomwatch on processes of the test's own: one without an inotify
    instance is reported, one with it and one that has exited are not."""
    from vdsm_container.runtimes import oomwatch
    bare = subprocess.Popen(["sleep", "30"])
    try:
        assert oomwatch.check("vm-a", bare.pid, wait=0.1) is False
    finally:
        bare.kill()
        bare.wait()
    assert oomwatch.check("vm-b", bare.pid, wait=0.1) is True   # exited
    watcher = subprocess.Popen([sys.executable, "-c", (
        "import ctypes, sys, time\n"
        "assert ctypes.CDLL(None).inotify_init() >= 0\n"
        "print('ok', flush=True)\n"
        "time.sleep(30)")], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert watcher.stdout.readline() == "ok\n"
        assert oomwatch.check("vm-c", watcher.pid, wait=0.1) is True
    finally:
        watcher.kill()
        watcher.wait()
    warned = [r.getMessage() for r in caplog.records
              if r.name == "vdsm_container.runtimes.oomwatch"]
    assert len(warned) == 1 and "vm-a" in warned[0]

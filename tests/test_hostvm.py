"""Where a container's processes go on each host shape.

On EL9 (systemd as PID 1, cgroup v2, as in tests/hostvm) runc's systemd
driver puts the container in ``vdsm-container-<vmId>.scope`` under the
cgroup parent slice, which systemd nests in the slices its name's prefixes
name, and conmon runs in a scope of its own; elsewhere (these CI machines:
no systemd) the cgroupfs driver makes ``/<parent>/<scope>`` as named and
conmon stays in its caller's cgroup.  Each test asserts what its shape
must show; none skips on either.
"""

import os
import uuid

import pytest

from vdsm_container.container import create
from vdsm_container.runtimes import proc
from vdsm_container.spec import domxml
from vdsm_container.stats import cgroups
from vdsm_container.vdsm import hostmark

from .conftest import bundle_of, driver_of, host_shape

SYSTEMD = proc.systemd_booted()


def test_slice_path_as_systemd_nests_it():
    assert cgroups.slice_path("vdsm-containers.slice") == \
        "/vdsm.slice/vdsm-containers.slice"
    assert cgroups.slice_path("a-b-c.slice") == \
        "/a.slice/a-b.slice/a-b-c.slice"
    assert cgroups.slice_path("machine.slice") == "/machine.slice"
    assert cgroups.slice_path("-.slice") == "/"
    assert cgroups.parent_relpath("vdsm-containers.slice", False) == \
        "/vdsm-containers.slice"
    assert cgroups.relpath("a-b.slice", "x", systemd=True) == \
        "/a.slice/a-b.slice/vdsm-container-x.scope"


def test_unit_environment_is_the_callers():
    env = {"PATH": "/bin", "A": "1", "NOTIFY_SOCKET": "/run/x",
           "INVOCATION_ID": "abc", "BAD": "two\nlines"}
    assert proc.unit_environment(env) == ["--setenv=A=1",
                                          "--setenv=PATH=/bin"]


def _cgroup_of(pid, version):
    rel = cgroups.of_pid(pid, version)
    assert rel, "no cgroup for pid %d" % pid
    return rel


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_container_and_conmon_cgroups(paths, busybox_oci):
    vm_id = str(uuid.uuid4())
    ctr = create(domxml.build(vm_id, "shape", "runc", busybox_oci,
                              memory_mib=64, command=["sleep", "1000"]),
                 paths=paths)
    hierarchy = cgroups.Hierarchy()
    bundle = bundle_of(ctr)
    try:
        version = hierarchy.version
        real = _cgroup_of(bundle.pid(), version)
        # The driver reads and removes the cgroup the container is in.
        assert driver_of(ctr).cgroup_path(bundle) == real
        assert hierarchy.read(real) is not None
        with open(bundle.conmon_pid_file) as f:
            conmon = _cgroup_of(int(f.read()), version)
        parent = cgroups.parent_relpath(paths.cgroup_parent, SYSTEMD)
        if SYSTEMD:
            # vdsm-containers-test-<hex>.slice, nested by systemd.
            assert real == "/vdsm.slice/vdsm-containers.slice/" \
                "vdsm-containers-test.slice/%s/vdsm-container-%s.scope" % (
                    paths.cgroup_parent, vm_id), host_shape()
            assert conmon == "%s/vdsm-container-conmon-%s.scope" % (
                parent, vm_id), host_shape()
        else:
            assert real == "/%s/vdsm-container-%s.scope" % (
                paths.cgroup_parent, vm_id), host_shape()
            assert conmon == _cgroup_of(os.getpid(), version), host_shape()
    finally:
        ctr.destroy(gracefulAttempts=0)
    assert not os.path.isdir(hierarchy.path(real))


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DROP_IN = os.path.join(REPO, "contrib", "vdsm", "50-vdsm-container.conf")


def test_drop_in_commands():
    """The drop-in runs mark-host as root ('+') before vdsm's own command
    line, which it replaces with the launcher's."""
    with open(DROP_IN) as f:
        lines = [ln.strip() for ln in f
                 if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "[Service]"
    assert [ln for ln in lines if ln.startswith("ExecStartPre=")] == [
        "ExecStartPre=+/usr/bin/vdsm-container mark-host"]
    starts = [ln for ln in lines if ln.startswith("ExecStart=")]
    assert starts[0] == "ExecStart=" and len(starts) == 2
    assert starts[1].endswith('"/usr/libexec/vdsm-container/'
                              'vdsmd-containers"')


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_drop_in_under_systemd(paths, tmp_path):
    """The drop-in on a unit that runs as an unprivileged user, as vdsmd
    runs as vdsm: systemd runs its ExecStartPre as root, with systemd's
    environment (not a shell's), and mark-host marks the host."""
    if not SYSTEMD:
        pytest.skip("needs systemd as PID 1 (this host: %s); runs in "
                    "make check-el9's VM" % host_shape())
    import subprocess
    import sys
    hooks = tmp_path / "hooks"
    wrapper = tmp_path / "vdsm-container"
    # /usr/bin/vdsm-container as the package installs it: this checkout,
    # in the test's own run dir and cgroup parent.
    wrapper.write_text(
        "#!/bin/sh\nexec env PYTHONPATH=%s VDSM_CONTAINER_RUN_DIR=%s "
        "VDSM_CONTAINER_CGROUP_PARENT=%s %s -m vdsm_container \"$@\" "
        "--hooks-dir %s\n" % (REPO, paths.run_dir, paths.cgroup_parent,
                               sys.executable, hooks))
    wrapper.chmod(0o755)
    unit = "vdsm-container-droptest-%s.service" % uuid.uuid4().hex[:8]
    unit_dir = "/run/systemd/system"
    with open(DROP_IN) as f:
        drop_in = "".join(
            ln.replace("/usr/bin/vdsm-container", str(wrapper)) for ln in f
            if not ln.startswith("ExecStart="))     # vdsm is not here
    os.makedirs(os.path.join(unit_dir, unit + ".d"))
    try:
        with open(os.path.join(unit_dir, unit), "w") as f:
            f.write("[Service]\nType=oneshot\nUser=nobody\n"
                    "ExecStart=/bin/true\n")
        with open(os.path.join(unit_dir, unit + ".d",
                               "50-vdsm-container.conf"), "w") as f:
            f.write(drop_in)
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        # mark-host marks from the verdicts kept (runtimes/probecache.py),
        # never probing before vdsmd: the caps command probes and keeps
        # them, for the same run dir and cgroup parent.
        subprocess.run([sys.executable, "-m", "vdsm_container", "caps"],
                       check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONPATH=REPO,
                                VDSM_CONTAINER_RUN_DIR=paths.run_dir,
                                VDSM_CONTAINER_CGROUP_PARENT=paths
                                .cgroup_parent))
        out = subprocess.run(["systemctl", "start", unit],
                             stderr=subprocess.PIPE, universal_newlines=True)
        assert out.returncode == 0, out.stderr
        hook = hostmark.hook_path(str(hooks))
        assert os.path.exists(hook)
        assert os.stat(hook).st_uid == 0
    finally:
        subprocess.run(["systemctl", "stop", unit])
        os.unlink(os.path.join(unit_dir, unit + ".d",
                               "50-vdsm-container.conf"))
        os.rmdir(os.path.join(unit_dir, unit + ".d"))
        os.unlink(os.path.join(unit_dir, unit))
        subprocess.run(["systemctl", "daemon-reload"], check=True)

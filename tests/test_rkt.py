"""The rkt driver against tests/doubles/rkt, a scripted DOUBLE of rkt
1.30's command line whose outputs follow the real rkt's: the exact command
lines the driver runs, and the failures a real rkt can't be made to
produce on demand.  tests/test_rkt_real.py runs the driver against a real
rkt."""

import io
import json
import os
import signal
import subprocess
import tarfile
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.linux import pidinfo
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.container import Container, create
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes import rkt, rktstatus, watch
from .conftest import bundle_of, driver_of, status_check_until_ended

DOUBLE = os.path.join(os.path.dirname(__file__), "doubles", "rkt")

pytestmark = pytest.mark.usefixtures("leakcheck")


@pytest.fixture
def double(monkeypatch, tmp_path):
    log = tmp_path / "rkt-calls.jsonl"
    monkeypatch.setenv("VDSM_CONTAINER_RKT", DOUBLE)
    monkeypatch.setenv("RKT_DOUBLE_LOG", str(log))
    for knob in ("RKT_DOUBLE_FAIL", "RKT_DOUBLE_EXIT",
                 "RKT_DOUBLE_EXIT_AFTER", "RKT_DOUBLE_EXIT_WHEN",
                 "RKT_DOUBLE_IGNORE_STOP"):
        monkeypatch.delenv(knob, raising=False)

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]
    return calls


@pytest.fixture
def aci(tmp_path):
    """A small ACI (image manifest + rootfs/), with garbage after it, as on
    a rounded-up volume."""
    path = tmp_path / "app.aci"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        manifest = json.dumps({"acKind": "ImageManifest",
                               "acVersion": "0.8.11",
                               "name": "example.com/app"}).encode()
        info = tarfile.TarInfo("manifest")
        info.size = len(manifest)
        t.addfile(info, io.BytesIO(manifest))
        d = tarfile.TarInfo("rootfs")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
    path.write_bytes(buf.getvalue() + os.urandom(4096))
    return str(path)


def xml(image, insecure=True, command=("/bin/app", "--serve"), **kw):
    custom = {"containerInsecure": "true"} if insecure else {}
    custom.update(kw.pop("custom", {}))
    return domxml.build(str(uuid.uuid4()), "rkt-vm", "rkt", image,
                        memory_mib=128, vcpus=2, command=list(command),
                        custom=custom, **kw)


def test_probe(double, monkeypatch, paths):
    a = rkt.Driver.probe(paths)
    assert (a.available, a.version) == (True, "1.30.0")
    monkeypatch.setenv("RKT_DOUBLE_FAIL", "version")
    a = rkt.Driver.probe(paths)
    assert not a.available and "cannot determine version" in a.reason
    monkeypatch.delenv("VDSM_CONTAINER_RKT")
    monkeypatch.setenv("PATH", "/nonexistent")
    a = rkt.Driver.probe(paths)
    assert not a.available and "not found" in a.reason


def test_parse_status_as_documented():
    text = ("state=exited\ncreated=2016-01-26 14:23:34.631 +0100 CET\n"
            "started=2016-01-26 14:23:34.744 +0100 CET\npid=16964\n"
            "exited=true\napp-redis=0\napp-etcd=1\n")
    st = rktstatus.parse_status(text)
    assert st["state"] == "exited" and st["pid"] == "16964"
    assert st["apps"] == {"redis": 0, "etcd": 1}


def test_exact_command_line(double, paths, aci, tmp_path):
    ctr = Container.from_xml(xml(aci, custom={"containerEnv": "A=1"}),
                             paths=paths)
    bundle_of(ctr).create_dirs()
    mounts = [{"destination": "/data", "source": "/mnt/v0",
               "type": "bind", "options": ["rbind", "ro"]}]
    argv = driver_of(ctr).prepare(bundle_of(ctr), ctr.spec, None,
                                  mounts=mounts)
    root = paths.runtime_root("rkt")
    assert argv == [
        DOUBLE, "--dir=" + root, "--insecure-options=image", "run",
        "--uuid-file-save=" + os.path.join(bundle_of(ctr).dir, "rkt.uuid"),
        "--net=none", "--hostname=rkt-vm", "--set-env=A=1",
        "--volume=vol0,kind=host,source=/mnt/v0,readOnly=true",
        os.path.join(bundle_of(ctr).dir, "image.aci"),
        "--memory=128M", "--cpu=2000m",
        "--user-annotation=org.ovirt.vm.id=" + ctr.id,
        "--mount=volume=vol0,target=/data",
        "--exec=/bin/app", "--", "--serve"]
    # The image copy stops at the end of the tar: the tail is gone.
    copied = open(os.path.join(bundle_of(ctr).dir, "image.aci"), "rb").read()
    assert copied.endswith(b"\0" * 1024)
    assert len(copied) < os.path.getsize(aci)
    bundle_of(ctr).teardown()
    ctr.backend.store.release(ctr.id)


def test_secure_by_default(double, paths, aci):
    """An image volume without a signature is refused before rkt runs (a
    real rkt says only "open .../image.aci.asc: no such file")."""
    ctr = Container.from_xml(xml(aci, insecure=False), paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert "carries no signature" in str(e.value)
    assert "containerInsecure=true" in str(e.value)
    assert [c for c in double() if "run" in c] == []
    assert Container.load_all(paths=paths) == []


def test_lifecycle(double, paths, aci):
    ctr = create(xml(aci), paths=paths)
    assert ctr.lastStatus == constants.UP
    pid = bundle_of(ctr).pid() or ctr.getStats()["pid"]
    assert int(pid) > 0
    assert ctr.refresh() == constants.UP
    uuid_ = open(os.path.join(bundle_of(ctr).dir, "rkt.uuid")).read()
    ctr.destroy()
    root = "--dir=" + paths.runtime_root("rkt")
    assert all(c[0] == root for c in double())
    names = [next(a for a in c if not a.startswith("--")) for c in double()]
    assert names[0] == "run"
    assert ["stop", "rm", "gc"] == [n for n in names if n in
                                    ("stop", "rm", "gc")]
    assert [c for c in double() if "rm" in c][0][-1] == uuid_
    assert "--grace-period=0s" in [c for c in double() if "gc" in c][0]


def test_stop_then_force(double, paths, aci, monkeypatch):
    monkeypatch.setenv("RKT_DOUBLE_IGNORE_STOP", "1")
    ctr = create(xml(aci), paths=paths)
    time.sleep(0.3)
    ctr.destroy()
    stops = [c for c in double() if "stop" in c]
    assert "--force" not in stops[0] and "--force" in stops[1]


def wait_down(ctr, timeout=10):
    deadline = time.monotonic() + timeout
    while ctr.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.05)
    return ctr.getStats()


@pytest.mark.parametrize("exit_after", [None, "0"], ids=["ran", "quick"])
def test_exit_status_reported(double, paths, aci, monkeypatch, exit_after):
    """The app's status is the VM's exit status; a pod that ran and exited
    before the driver first looked ("quick") was started all the same: Up,
    then Down with its app's status, not a failed create."""
    monkeypatch.setenv("RKT_DOUBLE_EXIT", "3")
    if exit_after is not None:
        monkeypatch.setenv("RKT_DOUBLE_EXIT_AFTER", exit_after)
    ctr = create(xml(aci), paths=paths)
    assert ctr.lastStatus == constants.UP
    stats = wait_down(ctr)
    assert stats["exitCode"] == constants.ERROR
    assert "status 3" in stats["exitMessage"]
    ctr.destroy()


def test_status_round_follows_the_pod_process(double, paths, aci,
                                              monkeypatch, tmp_path):
    """rkt writes no exit file: a status check of a pod that runs as the
    last look found it reads the pod's process, not ``rkt status``; once
    the pod exits, the next status checks see it Down with its status,
    without a sampling round."""
    exit_now = tmp_path / "exit-now"
    monkeypatch.setenv("RKT_DOUBLE_EXIT", "3")
    monkeypatch.setenv("RKT_DOUBLE_EXIT_WHEN", str(exit_now))
    backend = HostBackend(paths)
    vm = xml(aci)
    vm_id = domxml.parse(vm).vm_id
    backend.start(vm)
    try:
        first = backend.observe([vm_id])[vm_id]
        assert first["runtime"].status == "running"
        asked = len([c for c in double() if "status" in c])
        assert backend.observe([vm_id])[vm_id] == {"same": True}
        assert backend.observe([vm_id])[vm_id] == {"same": True}
        assert len([c for c in double() if "status" in c]) == asked
        exit_now.touch()
        seen = status_check_until_ended(backend, vm_id)
        assert "runtime" in seen, "the pod's exit went unseen: %s" % seen
        assert seen["runtime"].status == "stopped"
        assert seen["runtime"].exit_code == 3
        assert "runtime" in backend.observe([vm_id])[vm_id]
    finally:
        backend.stop(vm_id, 0)


def test_process_watch_ends_with_its_process():
    """A pod process that ended is seen ended though not reaped (a zombie:
    ``rkt run`` is our own child where systemd is not PID 1)."""
    child = subprocess.Popen(["sleep", "1000"])
    try:
        w = watch.Process(child.pid)
        assert not w.ended()
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pidinfo.running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists("/proc/%d" % child.pid)    # not reaped
        assert w.ended()
    finally:
        child.kill()
        child.wait()
    assert w.ended() and watch.Process(child.pid).ended()


def test_run_failure_leaves_nothing(double, paths, aci, monkeypatch):
    monkeypatch.setenv("RKT_DOUBLE_FAIL", "run")
    ctr = Container.from_xml(xml(aci), paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    # What rkt said (its stderr, kept out of the container's log).
    assert "image not found" in str(e.value)
    assert ctr.lastStatus == constants.DOWN


def test_nics_refused_before_anything(double, paths, aci):
    ctr = Container.from_xml(xml(aci, nics=[("br0", "56:6f:00:00:00:01")]),
                             paths=paths)
    with pytest.raises(errors.UnsupportedOperation):
        ctr.run()
    assert double() == []

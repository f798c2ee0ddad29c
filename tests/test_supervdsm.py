"""The root side as vdsmd reaches it through supervdsm: every answer
crosses a pickle, vdsm errors come back with their codes, only the
backend's verbs run, and the root side trusts no vmId or field it did not
check."""

import pickle
import socket
import threading
import types
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.host.backend import HostBackend
from vdsm_container.spec import domxml
from vdsm_container.vdsm import supervdsm


class PicklingProxy:
    """supervdsm's proxy: arguments and answers cross a socket pickled."""

    def __init__(self, backend):
        self.backend = backend
        self.calls = []

    def vdsm_container(self, method, *args):
        self.calls.append(method)
        method, args = pickle.loads(pickle.dumps((method, args)))
        answer = supervdsm.serve(self.backend, method, args)
        return pickle.loads(pickle.dumps(answer))


@pytest.fixture
def proxy(paths):
    return PicklingProxy(HostBackend(paths))


@pytest.fixture
def remote(paths, proxy):
    return supervdsm.SupervdsmBackend(paths, proxy=proxy)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_lifecycle_through_the_proxy(remote, proxy, busybox_oci):
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "p", "runc", busybox_oci,
                       command=["sleep", "1000"])
    state = remote.start(xml)
    assert state["status"] == constants.UP and state["pid"] > 0
    assert "xml" not in state
    seen = remote.observe([vm_id], sample=True)[vm_id]
    assert seen["runtime"].status == "running"
    assert seen["cgroup"] is not None
    remote.pause(vm_id)
    assert remote.observe([vm_id])[vm_id]["runtime"].status == "paused"
    remote.resume(vm_id)
    remote.stop(vm_id, 0)
    with pytest.raises(errors.NoSuchVM) as e:
        remote.load(vm_id)
    assert e.value.code == 1
    assert proxy.calls == ["start", "observe", "pause", "observe",
                           "resume", "stop", "load"]


def test_failed_start_carries_the_error(remote, tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"x" * 4096)
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "p", "runc", str(bad), command=["true"])
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        remote.start(xml)
    assert e.value.code == 17
    with pytest.raises(errors.NoSuchVM):
        remote.load(vm_id)      # nothing recorded, nothing left


def test_only_backend_verbs(proxy):
    answer = proxy.vdsm_container("__init__")
    assert answer["error"]["code"] == errors.InvalidParameter.code
    answer = proxy.vdsm_container("store")
    assert answer["error"]["code"] == errors.InvalidParameter.code


@pytest.mark.parametrize("vm_id", [
    "/etc", "../../etc", "", "6d1c7e4a", str(uuid.uuid4()).upper()])
def test_vm_ids_are_checked(remote, vm_id):
    with pytest.raises(errors.InvalidParameter):
        remote.stop(vm_id, 0)


def test_caller_writes_vm_state_fields_only(remote, paths):
    vm_id = str(uuid.uuid4())
    with pytest.raises(errors.InvalidParameter):
        remote.save(vm_id, {"spec": {"runtime": "runc"}})
    with pytest.raises(errors.NoSuchVM):
        remote.save(vm_id, {"status": constants.UP})


def test_unexpected_errors_become_general_exception(paths):
    class Broken:
        def load_all(self):
            raise RuntimeError("boom")
    answer = supervdsm.serve(Broken(), "load_all", ())
    assert answer["error"]["code"] == 100
    assert "boom" in answer["error"]["message"]


class RestartedSupervdsm:
    """vdsm's proxy after supervdsmd restarted under a live vdsmd: the first
    call fails as lib/vdsm/common/supervdsm.py's ProxyCaller does (``fail``),
    then calls work once ``_connect`` ran (or ProxyCaller reconnected)."""

    def __init__(self, fail):
        self.fail = fail
        self.connects = 0
        self.calls = 0
        # multiprocessing's per-thread connection (BaseProxy._tls).
        self._svdsm = types.SimpleNamespace(
            _tls=types.SimpleNamespace(connection="dead socket"))

    def _connect(self):
        self.connects += 1

    def vdsm_container(self, method, *args):
        self.calls += 1
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        return {"result": [method, list(args)]}


@pytest.mark.parametrize("fail, reconnects", [
    (BrokenPipeError(32, "Broken pipe"), True),
    (EOFError(), True),
    (FileNotFoundError(2, "No such file or directory"), True),
    # ProxyCaller reconnected before raising this: its connection is good.
    (RuntimeError("Broken communication with supervdsm. Failed call to "
                  "vdsm_container"), False),
])
def test_call_survives_a_supervdsmd_restart(paths, fail, reconnects,
                                            listening):
    proxy = RestartedSupervdsm(fail)
    remote = supervdsm.SupervdsmBackend(paths, proxy=proxy,
                                        address=listening)
    assert remote.pause("vm") == ["pause", ["vm"]]
    assert (proxy.connects, proxy.calls) == (int(reconnects), 2)
    # The dead per-thread connection is gone, else every later call from
    # this thread would fail on it.
    assert hasattr(proxy._svdsm._tls, "connection") is not reconnects


def test_other_errors_are_not_retried(paths):
    proxy = RestartedSupervdsm(RuntimeError("something else"))
    remote = supervdsm.SupervdsmBackend(paths, proxy=proxy)
    with pytest.raises(RuntimeError):
        remote.pause("vm")
    assert (proxy.connects, proxy.calls) == (0, 1)


@pytest.fixture
def listening(tmp_path):
    """supervdsmd's socket, accepting connections."""
    path = str(tmp_path / "svdsm.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    yield path
    server.close()


@pytest.mark.parametrize("left", ["no socket", "a killed server's socket"])
def test_no_reconnect_while_supervdsmd_is_away(paths, tmp_path, left):
    """vdsm's ``_connect`` panics (kills vdsmd) after three tries a second
    apart: while supervdsmd does not listen, the call fails on its own."""
    path = str(tmp_path / "svdsm.sock")
    if left != "no socket":
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(path)
        dead.close()
    proxy = RestartedSupervdsm(FileNotFoundError(2, "No such file"))
    remote = supervdsm.SupervdsmBackend(paths, proxy=proxy, address=path,
                                        reconnect_wait=0.6)
    with pytest.raises(errors.GeneralException) as e:
        remote.observe(["vm"])
    assert e.value.code == 100
    assert path in str(e.value) and "observe not done" in str(e.value)
    assert (proxy.connects, proxy.calls) == (0, 1)


def test_reconnect_waits_for_supervdsmd_to_listen(paths, tmp_path):
    path = str(tmp_path / "svdsm.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def come_back():
        server.bind(path)
        server.listen(8)

    class Proxy(RestartedSupervdsm):
        def _connect(self):
            # What vdsm's _connect would find: it panics unless this holds.
            self.found_listening = supervdsm._listening(path)
            super()._connect()

    later = threading.Timer(1.0, come_back)
    later.start()
    try:
        proxy = Proxy(EOFError())
        remote = supervdsm.SupervdsmBackend(paths, proxy=proxy, address=path,
                                            reconnect_wait=30)
        assert remote.resume("vm") == ["resume", ["vm"]]
        assert (proxy.connects, proxy.calls) == (1, 2)
        assert proxy.found_listening
    finally:
        later.cancel()
        later.join()
        server.close()

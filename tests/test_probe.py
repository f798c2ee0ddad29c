"""The runtimes' probes never hold vdsm's start up (issue #39): verdicts kept
per runtime binary and kernel (runtimes/probecache.py), probes in the
background, caps and VM.create while one runs (vdsm/probing.py)."""

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from vdsm_container import errors, probestore, runtimes
from vdsm_container.container import Container
from vdsm_container.runtimes import base, probecache
from vdsm_container.spec import domxml
from vdsm_container.runtimes import rkt
from vdsm_container.vdsm import caps, hostmark, markhost, probing
from vdsm_container.vdsm import vmcontainer

OK = base.Availability("runc", True, "", "1.1")


class Counting:
    """A runtime probe that counts its runs and can be held."""

    def __init__(self, answer=OK):
        self.answer = answer
        self.calls = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, name):
        self.calls.append(name)
        assert self.release.wait(10)
        return base.Availability(name, self.answer.available,
                                 self.answer.reason, self.answer.version)


@pytest.fixture
def host(tmp_path, monkeypatch, paths):
    """A runc binary of the test's own, the kernel and boot as chosen."""
    (tmp_path / "bin").mkdir()
    for name in ("runc", "runsc"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
    binary = tmp_path / "bin" / "runc"
    state = {"release": "6.1.0-test", "boot": "boot-1"}
    monkeypatch.setattr(
        probestore, "program",
        lambda name: str(tmp_path / "bin" / name)
        if name in ("runc", "runsc") else None)
    monkeypatch.setattr(probestore, "HELPERS", {})
    monkeypatch.setattr(probestore, "kernel_release",
                        lambda: state["release"])
    monkeypatch.setattr(probestore, "boot_id", lambda: state["boot"])
    state["binary"] = binary
    state["paths"] = paths
    return state


def settled(prober, wait=10):
    deadline = time.monotonic() + wait
    result = prober.status(wait)
    while any(a.probing for a in result.values()):
        assert time.monotonic() < deadline, result
        result = prober.status(deadline - time.monotonic())
    return result


def test_unchanged_binary_not_probed_again(host):
    probe = Counting()
    assert settled(probecache.Prober(host["paths"], probe=probe,
                                     names=("runc",)))["runc"].available
    # A new process (vdsmd and supervdsmd restarted): the kept verdict.
    again = Counting()
    result = probecache.Prober(host["paths"], probe=again,
                               names=("runc",)).status()
    assert result["runc"] == OK
    assert (probe.calls, again.calls) == (["runc"], [])


def test_changed_binary_probed_again(host):
    settled(probecache.Prober(host["paths"], probe=Counting(),
                              names=("runc",)))
    host["binary"].write_text("#!/bin/sh\n# runc 1.2\n")    # size, mtime
    again = Counting(base.Availability("runc", False, "broken"))
    prober = probecache.Prober(host["paths"], probe=again, names=("runc",))
    assert prober.status()["runc"].probing
    assert settled(prober)["runc"].reason == "broken"
    assert again.calls == ["runc"]


def test_replaced_binary_same_size_and_mtime_probed_again(host):
    settled(probecache.Prober(host["paths"], probe=Counting(),
                              names=("runc",)))
    st = os.stat(host["binary"])
    new = host["binary"].parent / "runc.new"
    new.write_text("#!/bin/sh\n")
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, host["binary"])                         # inode
    again = Counting()
    settled(probecache.Prober(host["paths"], probe=again, names=("runc",)))
    assert again.calls == ["runc"]


@pytest.mark.parametrize("what", ["release", "boot"])
def test_changed_kernel_probed_again(host, what):
    settled(probecache.Prober(host["paths"], probe=Counting(),
                              names=("runc",)))
    host[what] += "-new"
    again = Counting()
    settled(probecache.Prober(host["paths"], probe=again, names=("runc",)))
    assert again.calls == ["runc"]


def test_absent_runtime_answered_at_once(host, monkeypatch):
    """No runtime at all: nothing probes in the background, the answer is
    final at once, and the plugin stays off (caps adds nothing)."""
    host["binary"].unlink()
    probe = Counting(base.Availability("runc", False, "not found"))
    result = probecache.Prober(host["paths"], probe=probe,
                               names=("runc",)).status()
    assert not result["runc"].probing
    assert caps.additional_features(result) == []
    assert not os.path.exists(probecache.cache_path(host["paths"]))


def test_probe_runs_in_the_background(host):
    probe = Counting()
    probe.release.clear()
    prober = probecache.Prober(host["paths"], probe=probe, names=("runc",))
    t0 = time.monotonic()
    first = prober.status()
    assert time.monotonic() - t0 < 1
    assert first["runc"].probing and not first["runc"].available
    assert prober.status()["runc"].probing          # one probe, not two
    probe.release.set()
    assert settled(prober)["runc"] == OK
    assert probe.calls == ["runc"]


def test_cached_runs_no_probe(host):
    """mark-host's view (before vdsmd starts): kept verdicts only."""
    assert probecache.cached(host["paths"], ("runc",)) == {"runc": None}
    assert caps.capable({"runc": None}) is None
    settled(probecache.Prober(host["paths"], probe=Counting(),
                              names=("runc",)))
    verdicts = probecache.cached(host["paths"], ("runc",))
    assert verdicts == {"runc": OK}
    assert caps.capable(verdicts) is True
    assert caps.capable({"runc": base.Availability("runc", False)}) is False


def test_unusable_verdict_kept_by_the_process_only(host):
    """A self-check that failed (a loaded host) is not believed until the
    next reboot: the next supervdsmd probes again."""
    probe = Counting(base.Availability("runc", False, "init-p: reset"))
    prober = probecache.Prober(host["paths"], probe=probe, names=("runc",))
    assert settled(prober)["runc"].reason == "init-p: reset"
    assert settled(prober)["runc"].reason == "init-p: reset"
    assert probe.calls == ["runc"]          # a vdsmd restart: not again
    assert probecache.cached(host["paths"], ("runc",)) == {"runc": None}
    again = Counting()
    assert settled(probecache.Prober(host["paths"], probe=again,
                                     names=("runc",)))["runc"] == OK
    assert again.calls == ["runc"]


def test_one_probe_at_a_time_runsc_last(host):
    """Two self-checks at once in one process share a container name."""
    running, most, order = [], [], []

    def probe(name):
        running.append(name)
        most.append(len(running))
        order.append(name)
        time.sleep(0.1)
        running.remove(name)
        return base.Availability(name, True)

    verdicts = []
    prober = probecache.Prober(
        host["paths"], probe=probe, names=("runc", "runsc"),
        on_change=lambda name, avail, now: verdicts.append((name, now)))
    assert [a.probing for a in prober.status().values()] == [True, True]
    # An ask that waits returns with the first verdict, not the last.
    first = prober.status(5)
    assert (first["runc"].probing, first["runsc"].probing) == (False, True)
    settled(prober)
    assert (max(most), order) == (1, ["runc", "runsc"])
    # The marker's view when each ended: runc known, runsc not yet.
    assert verdicts[0][0] == "runc" and verdicts[0][1]["runsc"] is None
    assert caps.capable(verdicts[0][1]) is True
    assert all(verdicts[1][1].values())


def test_mark_host_from_the_kept_verdicts(host, tmp_path):
    """The drop-in's ExecStartPre: never a probe; the hook as the kept
    verdicts say, left as it is while one is not known."""
    hooks = str(tmp_path / "hooks")
    paths = host["paths"]
    hostmark.mark(True, hooks)
    out = markhost.run(paths, hooks, [str(tmp_path / "none")],
                       str(tmp_path / "sys"))
    assert (out["installed"], out["probing"]) == (True, ["runc", "runsc"])
    assert out["additionalFeatures"] == []
    hostmark.mark(False, hooks)
    assert markhost.run(paths, hooks, [str(tmp_path / "none")],
                        str(tmp_path / "sys"))["installed"] is False
    settled(probecache.Prober(paths, probe=Counting(), names=("runc",)))
    out = markhost.run(paths, hooks, [str(tmp_path / "none")],
                       str(tmp_path / "sys"))
    assert out["installed"] and hostmark.is_marked(hooks)
    assert out["additionalFeatures"] == ["containers", "containers_runc"]
    assert markhost.capable({"runc": False, "rkt": False}) is False


def test_mark_host_imports_no_driver():
    """What every vdsmd start pays for it: no driver, image or container
    module is loaded."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n"
         "import vdsm_container.__main__\n"
         "from vdsm_container.vdsm import markhost\n"
         "print(' '.join(sorted(m for m in sys.modules\n"
         "      if m.startswith('vdsm_container'))))"],
        check=True, stdout=subprocess.PIPE, universal_newlines=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    loaded = out.stdout.split()
    assert "vdsm_container.vdsm.markhost" in loaded
    heavy = [m for m in loaded if (m.split(".") + [""])[1] in (
        "runtimes", "container", "image", "bundle", "cli", "host")]
    assert heavy == []


def test_store_knows_the_runtimes_as_they_are(monkeypatch, tmp_path):
    assert probestore.NAMES == runtimes.names()
    for name in runtimes.names():
        binary = getattr(runtimes.driver_class(name), "binary", None)
        assert binary in (None, name)
    monkeypatch.setenv("VDSM_CONTAINER_RKT", str(tmp_path / "rkt"))
    assert probestore.program("rkt") == rkt._binary()


# --- vdsmd's side: caps and VM.create while a probe runs -------------------

PROBING = base.Availability("runsc", False, "probing", probing=True)
RUNSC_OK = base.Availability("runsc", True, "platform ptrace", "2023")


def test_caps_while_probing():
    assert caps.additional_features({"runc": OK, "runsc": PROBING}) == [
        "containers", "containers_runc"]
    assert caps.additional_features({"runsc": PROBING}) == ["containers"]
    assert caps.probing({"runc": OK, "runsc": PROBING}) == ["runsc"]


class Backend:
    """The root side: answers ``probe(wait)`` from a list."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = threading.Event()

    def probe(self, wait=0.0):
        self.asked.set()
        if len(self.answers) > 1:
            return self.answers.pop(0)
        time.sleep(min(wait, 0.05))
        return self.answers[0]


def test_features_follow_the_probes_and_engine_is_told():
    events = []
    rt = probing.Runtimes(Backend({"runc": OK, "runsc": RUNSC_OK}),
                          {"runc": OK, "runsc": PROBING},
                          notify=events.append)
    assert rt.features() == ["containers", "containers_runc"]
    rt.start()
    rt.wait_all(5)
    assert rt.features() == ["containers", "containers_runc",
                             "containers_runsc"]
    assert rt.probing() == []
    assert events == ["|net|host_conn|no_id"]


def _params(image, runtime="runsc"):
    return {"xml": domxml.build(str(uuid.uuid4()), "c", runtime, image,
                                command=["true"])}


def test_create_waits_for_the_probe(paths, busybox_oci):
    rt = probing.Runtimes(Backend({"runsc": PROBING}), {"runsc": PROBING})
    done = threading.Timer(0.3, rt.update, args=({"runsc": RUNSC_OK},))
    done.start()
    t0 = time.monotonic()
    ctr = vmcontainer.make_container(Container, None, _params(busybox_oci),
                                     None, rt)
    assert 0.2 < time.monotonic() - t0 < 5
    assert ctr.spec.runtime == "runsc"


def test_create_refused_when_the_probe_ends_unusable(paths, busybox_oci):
    rt = probing.Runtimes(Backend({}), {"runsc": PROBING})
    threading.Timer(0.1, rt.update, args=({"runsc": base.Availability(
        "runsc", False, "kvm: timed out; ptrace: failed")},)).start()
    with pytest.raises(errors.CannotCreateVM) as e:
        vmcontainer.make_container(Container, None, _params(busybox_oci),
                                   None, rt)
    assert "ptrace: failed" in str(e.value)


def test_create_refused_while_still_probing(paths, busybox_oci,
                                            monkeypatch):
    monkeypatch.setattr(probing, "CREATE_WAIT", 0.2)
    rt = probing.Runtimes(Backend({"runsc": PROBING}), {"runsc": PROBING})
    params = _params(busybox_oci)
    with pytest.raises(errors.CannotCreateVM) as e:
        vmcontainer.make_container(Container, None, params, None, rt)
    assert e.value.code == 9
    assert "still being probed" in str(e.value)
    assert e.value.info()["code"] == 9


def test_create_for_a_runtime_probed_already_does_not_wait(paths,
                                                          busybox_oci):
    rt = probing.Runtimes(Backend({}), {"runc": OK, "runsc": PROBING})
    t0 = time.monotonic()
    vmcontainer.make_container(Container, None,
                               _params(busybox_oci, "runc"), None, rt)
    assert time.monotonic() - t0 < 0.5


def test_create_waits_before_clientif_takes_its_lock(paths, busybox_oci,
                                                     monkeypatch):
    """clientIF.createVm holds vm_start_stop_lock while it calls ``Vm``
    (the factory) and API.py's VM.destroy takes it for every VM: the wait
    is before (``await_runtime``), the factory under the lock never
    waits."""
    monkeypatch.setattr(probing, "CREATE_WAIT", 5)
    rt = probing.Runtimes(Backend({}), {"runsc": PROBING})
    params = _params(busybox_oci)
    t0 = time.monotonic()
    with pytest.raises(errors.CannotCreateVM):
        vmcontainer.make_container(Container, None, params, None, rt,
                                   probe_wait=0)
    assert time.monotonic() - t0 < 1
    plain = {"xml": "<domain><uuid>%s</uuid></domain>" % uuid.uuid4()}
    vmcontainer.await_runtime(plain, rt)                    # at once
    vmcontainer.await_runtime(params, rt, recover=True)     # at once
    assert time.monotonic() - t0 < 1
    threading.Timer(0.3, rt.update, args=({"runsc": RUNSC_OK},)).start()
    vmcontainer.await_runtime(params, rt)
    assert 0.2 < time.monotonic() - t0 < 4
    vmcontainer.make_container(Container, None, params, None, rt,
                               probe_wait=0)

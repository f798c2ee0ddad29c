"""What keeps a sampler round cheap at a thousand containers (issue #17):
the record is parsed once and then followed by a stat, a round carries no
spec back, small files are read with plain syscalls, and each round says
in the log what it cost.  Figures are in ``make bench-scale``; these tests
check behaviour only."""

import logging
import os
import signal
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.host.backend import HostBackend
from vdsm_container.spec import domxml
from vdsm_container.vdsm import vmcontainer

from .conftest import status_check_until_ended


def test_read_text_reads_past_one_chunk(tmp_path):
    path = tmp_path / "big"
    text = "".join("line %d\n" % i for i in range(20000))     # > 64 KiB
    path.write_text(text)
    assert files.read_text(str(path)) == text
    with pytest.raises(FileNotFoundError):
        files.read_text(str(tmp_path / "missing"))


@pytest.fixture
def sleeper(paths, busybox_oci):
    """``(backend, vmId)``: a runc container that sleeps, started through
    a ``HostBackend`` of its own; stopped at the end unless the test did."""
    backend = HostBackend(paths)
    vm_id = str(uuid.uuid4())
    backend.start(domxml.build(vm_id, "c", "runc", busybox_oci,
                               command=["sleep", "1000"]))
    yield backend, vm_id
    try:
        backend.stop(vm_id, 0)
    except errors.NoSuchVM:
        pass


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_observe_follows_a_rewritten_record_without_the_spec(paths, sleeper):
    backend, vm_id = sleeper
    first = backend.observe([vm_id])[vm_id]
    assert first["state"]["status"] == constants.UP
    # The caller has the spec; a round doesn't carry it back.
    assert "spec" not in first["state"] and "xml" not in first["state"]
    # Another process (the command) records a change: the next round
    # sees it, though the record was parsed before.
    other = HostBackend(paths)
    other.save(vm_id, {"status": constants.PAUSED, "statusTime": 7})
    again = backend.observe([vm_id])[vm_id]
    assert again["state"]["status"] == constants.PAUSED
    assert again["state"]["statusTime"] == 7
    # The full record (recovery) still has the spec.
    assert backend.load(vm_id)["spec"]["vm_id"] == vm_id
    backend.stop(vm_id, 0)
    assert backend.observe([vm_id])[vm_id] == {"gone": True}
    assert vm_id not in backend.records._seen


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_status_check_skips_what_did_not_change(paths, sleeper):
    backend, vm_id = sleeper
    first = backend.observe([vm_id])[vm_id]
    assert first["runtime"].status == "running"
    # Running as before, same record, no exit status: two stats.
    assert backend.observe([vm_id])[vm_id] == {"same": True}
    # A sampling round always looks at everything.
    assert backend.observe([vm_id], sample=True)[vm_id]["cgroup"]
    # A record written by another process: looked at again.
    HostBackend(paths).save(vm_id, {"statusTime": 9})
    again = backend.observe([vm_id])[vm_id]
    assert again["state"]["statusTime"] == 9
    assert backend.observe([vm_id])[vm_id] == {"same": True}
    # The container ends behind our back (conmon writes its exit
    # status): seen by a status check, without a sampling round.
    os.kill(first["runtime"].pid, signal.SIGKILL)
    seen = status_check_until_ended(backend, vm_id)
    assert seen["runtime"].status == "stopped"
    assert backend.observe([vm_id])[vm_id]["runtime"].status == "stopped"


def test_container_keeps_its_state_on_same(paths):
    from vdsm_container.container import Container
    vm_id = str(uuid.uuid4())
    spec = domxml.parse(domxml.build(vm_id, "c", "runc", "/x",
                                     command=["true"]))
    ctr = Container(spec, backend=CountingBackend(), paths=paths,
                    state={"vmId": vm_id, "status": constants.UP})
    ctr.apply({"same": True})
    assert ctr.lastStatus == constants.UP


class Cif:
    def __init__(self):
        self.vmContainer = {}

    def getVMs(self):
        return dict(self.vmContainer)


class CountingBackend:
    def __init__(self):
        self.calls = []

    def observe(self, vm_ids, sample=False):
        self.calls.append((list(vm_ids), sample))
        return {vm_id: {"gone": True} for vm_id in vm_ids}


def test_sample_all_is_one_call_and_says_how_many(paths):
    from vdsm_container.container import Container
    backend = CountingBackend()
    cif = Cif()
    assert vmcontainer.sample_all(cif, backend) == 0
    assert backend.calls == []
    for _ in range(3):
        vm_id = str(uuid.uuid4())
        spec = domxml.parse(domxml.build(vm_id, "c", "runc", "/x",
                                         command=["true"]))
        cif.vmContainer[vm_id] = Container(spec, backend=backend,
                                           paths=paths)
    assert vmcontainer.sample_all(cif, backend, take_sample=True) == 3
    assert len(backend.calls) == 1
    assert sorted(backend.calls[0][0]) == sorted(cif.vmContainer)
    assert backend.calls[0][1] is True


class LostBackend:
    """supervdsmd stopped while the call was in flight, or raised."""

    def __init__(self, error):
        self.error = error

    def observe(self, vm_ids, sample=False):
        raise self.error


@pytest.mark.parametrize("error, level", [
    (EOFError(), "WARNING"),
    (ConnectionResetError(104, "Connection reset by peer"), "WARNING"),
    (RuntimeError("boom"), "ERROR"),
])
def test_a_round_that_lost_supervdsmd_is_a_warning(paths, caplog, error,
                                                   level):
    """A restart of supervdsmd is not the plugin's error: the next round
    reconnects.  Anything else stays an ERROR (the live log check)."""
    from vdsm_container.container import Container
    backend = LostBackend(error)
    cif = Cif()
    vm_id = str(uuid.uuid4())
    spec = domxml.parse(domxml.build(vm_id, "c", "runc", "/x",
                                     command=["true"]))
    cif.vmContainer[vm_id] = Container(spec, backend=backend, paths=paths)
    with caplog.at_level(logging.DEBUG, logger="vdsm_container"):
        assert vmcontainer.sample_all(cif, backend) == 1
    levels = [r.levelname for r in caplog.records
              if r.name == "vdsm_container.vdsm.vmcontainer"]
    assert levels == [level]


def test_report_section_replaced(tmp_path):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    from bench.scale import write_section
    report = tmp_path / "report.md"
    report.write_text("# bench\n")
    write_section(str(report), "scale", "one\n")
    write_section(str(report), "live", "live\n")
    write_section(str(report), "scale", "two\n")
    text = report.read_text()
    assert text.startswith("# bench\n")
    assert "two\n" in text and "one\n" not in text and "live\n" in text
    assert text.count("<!-- scale -->") == 1

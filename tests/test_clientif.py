"""The plugin inside clientIF, with a small clientIF double; and the
results vdsm would return, checked against vdsm's API schema."""

import os
import threading
import time
import uuid

import pytest

from vdsm_container.vdsm import caps
from vdsm_container.vdsm import vmcontainer as clientif
from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.container import Container
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes.base import Availability

from .vdsmschema import Schema
from .conftest import bundle_of


class ClientIF:
    """The part of lib/vdsm/clientIF.py's clientIF the plugin uses."""

    def __init__(self):
        self.vmContainer = {}
        self.vm_container_lock = threading.Lock()
        # held by API.py's VM.destroy and by createVm, for the whole verb
        self.vm_start_stop_lock = threading.Lock()
        self.events = []

    def getVMs(self):
        with self.vm_container_lock:
            return self.vmContainer.copy()

    def getAllVmStats(self):
        return [v.getStats() for v in self.getVMs().values()]

    def notify(self, event_id, params=None):
        self.events.append((event_id, params))

    def createVm(self, params, paths, availability):
        """clientIF.createVm with the plugin's factory in place of Vm."""
        with self.vm_start_stop_lock:
            vm = clientif.make_container(Container, self, params,
                                         HostBackend(paths), availability)
            vm.run()
            with self.vm_container_lock:
                self.vmContainer[vm.id] = vm
            return vm

    def destroy(self, vm_id, waiting):
        """API.py ``VM.destroy``: under vm_start_stop_lock, the VM looked
        up in vmContainer.  Sets ``waiting`` when it must wait for the
        lock, or once it is done."""
        if not self.vm_start_stop_lock.acquire(blocking=False):
            waiting.set()
            self.vm_start_stop_lock.acquire()
        try:
            vm = self.vmContainer.get(vm_id)
            if vm is not None:
                vm.destroy(gracefulAttempts=0)
        finally:
            self.vm_start_stop_lock.release()
            waiting.set()


RUNC_OK = {"runc": Availability("runc", True, "", "1.1")}


def params_for(image, command=("sleep", "1000"), **kw):
    return {"xml": domxml.build(str(uuid.uuid4()), "c", "runc", image,
                                command=list(command), **kw)}


def test_wants_container(busybox_oci):
    assert clientif.wants_container(params_for(busybox_oci))
    plain = {"xml": "<domain><uuid>%s</uuid></domain>" % uuid.uuid4()}
    assert not clientif.wants_container(plain)
    assert not clientif.wants_container({})


def test_incoming_migration_refused(paths, busybox_oci):
    params = params_for(busybox_oci)
    params["_srcDomXML"] = params["xml"]
    with pytest.raises(errors.MigrationError):
        clientif.make_container(Container, ClientIF(), params,
                                HostBackend(paths), RUNC_OK)


def test_unusable_runtime_refused(paths, busybox_oci):
    avail = {"runc": Availability("runc", False, "runc not found in PATH")}
    with pytest.raises(errors.CannotCreateVM) as e:
        clientif.make_container(Container, ClientIF(), params_for(
            busybox_oci), paths, avail)
    assert "runc not found" in str(e.value)


def test_features():
    assert caps.additional_features({}) == []
    assert caps.additional_features({
        "runc": Availability("runc", True), "crun": Availability("crun",
                                                                 False),
        "rkt": Availability("rkt", True)}) == [
            "containers", "containers_rkt", "containers_runc"]


def test_features_match_vdsm_schema():
    schema = Schema()
    prop = [p for p in schema.types["VdsmCapabilities"]["properties"]
            if p["name"] == "additionalFeatures"][0]
    problems = []
    schema._check(prop["type"], caps.additional_features(RUNC_OK),
                  "additionalFeatures", problems)
    assert problems == []


def test_schema_checker_catches_errors():
    schema = Schema()
    assert schema.check("ExitedVmStats", {"vmId": "x"})     # missing fields
    assert schema.check("VmStats", {"status": "Up", "vmId": "x",
                                    "cpuUser": 3.0})


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_stats_validate_against_vdsm_schema(paths, busybox_oci):
    schema = Schema()
    cif = ClientIF()
    up = cif.createVm(params_for(busybox_oci), paths, RUNC_OK)
    down = cif.createVm(params_for(busybox_oci, ("sh", "-c", "exit 2")),
                        paths, RUNC_OK)
    deadline = time.monotonic() + 10
    while down.refresh() != constants.DOWN and time.monotonic() < deadline:
        time.sleep(0.05)
    clientif.sample_all(cif, HostBackend(paths))
    time.sleep(0.1)
    clientif.sample_all(cif, HostBackend(paths))
    all_stats = cif.getAllVmStats()
    assert {s["status"] for s in all_stats} == {"Up", "Down"}
    for stats in all_stats:
        assert schema.check("VmStats", stats) == [], stats
    for ctr in (up, down):
        ctr.destroy(gracefulAttempts=0)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_recovery_after_restart(paths, busybox_oci):
    first = ClientIF()
    ctr = first.createVm(params_for(busybox_oci), paths, RUNC_OK)
    exited = first.createVm(params_for(busybox_oci, ("true",)), paths,
                            RUNC_OK)
    time.sleep(0.3)
    # vdsm restarts: a new clientIF knows nothing until recovery.
    second = ClientIF()
    recovered = clientif.recover(Container, second, HostBackend(paths))
    assert sorted(recovered) == sorted([ctr.id, exited.id])
    assert second.vmContainer[ctr.id].lastStatus == constants.UP
    assert second.vmContainer[exited.id].lastStatus == constants.DOWN
    assert second.vmContainer[ctr.id].getStats()["pid"] == \
        str(bundle_of(ctr).pid())
    # Recovering again adds nothing twice.
    assert clientif.recover(Container, second, HostBackend(paths)) == []
    for v in second.getVMs().values():
        v.destroy(gracefulAttempts=0)


class DestroyDuringLoad(HostBackend):
    """A backend whose record listing is overtaken by a VM.destroy of
    ``victim`` from an API thread (the issue's 1000 sequential destroys
    after a vdsmd restart, while vdsm re-ran its recovery)."""

    victim = None

    def load_all(self):
        records = super().load_all()
        if self.victim is not None:
            waiting = threading.Event()
            self.destroyer = threading.Thread(
                target=self.cif.destroy, args=(self.victim, waiting))
            self.destroyer.start()
            waiting.wait()      # destroyed, or blocked on the API's lock
            self.victim = None
        return records


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_recovery_again_never_brings_back_a_destroyed_vm(paths, busybox_oci):
    """vdsm reruns recovery (clientIF ``_recoverExistingVms`` under
    ``function.retry``) while its API serves: a destroy between the
    records' read and their registration must not leave the destroyed VM
    registered, listed Up in Host.getAllVmStats."""
    first = ClientIF()
    ctr = first.createVm(params_for(busybox_oci), paths, RUNC_OK)
    cif = ClientIF()
    backend = DestroyDuringLoad(paths)
    backend.cif = cif
    assert clientif.recover(Container, cif, backend) == [ctr.id]
    backend.victim = ctr.id
    clientif.recover(Container, cif, backend)
    backend.destroyer.join()
    assert [s["vmId"] for s in cif.getAllVmStats()] == []
    assert HostBackend(paths).load_all() == {}


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_sampler_reports_exit_as_event(paths, busybox_oci):
    cif = ClientIF()
    ctr = cif.createVm(params_for(busybox_oci, ("sh", "-c", "sleep 0.3")),
                       paths, RUNC_OK)
    event = "|virt|VM_status|%s" % ctr.id

    def statuses():
        return [p[ctr.id]["status"] for e, p in cif.events if e == event]

    # Rounds until the exit shows (a bound for a failure, not a timing).
    deadline = time.monotonic() + 30
    while "Down" not in statuses() and time.monotonic() < deadline:
        time.sleep(0.2)
        clientif.sample_all(cif, HostBackend(paths))
    assert statuses() == ["Up", "Down"]
    down = [p[ctr.id] for e, p in cif.events if e == event][-1]
    assert down["exitCode"] == constants.NORMAL
    ctr.destroy()


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_destroy_during_the_background_start_ends_down(paths, busybox_oci):
    """vdsm's ``_destroy_requested``: a destroy that arrives while VM.create
    still starts the container ends Down, with no Up event before or
    after."""
    cif = ClientIF()
    ctr = clientif.make_container(Container, cif, params_for(busybox_oci),
                                  HostBackend(paths), RUNC_OK)
    ctr.start_in_background()
    ctr.destroy(gracefulAttempts=0)
    assert ctr.lastStatus == constants.DOWN
    statuses = [p[ctr.id]["status"] for e, p in cif.events
                if e == "|virt|VM_status|%s" % ctr.id]
    assert statuses == [constants.DOWN]
    assert HostBackend(paths).load_all() == {}


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_recovery_survives_an_unreadable_record(paths, busybox_oci):
    """A record of an older format, or a truncated one, is that VM Down
    with the reason; the others come back; destroy removes it."""
    first = ClientIF()
    good = first.createVm(params_for(busybox_oci), paths, RUNC_OK)
    bad = first.createVm(params_for(busybox_oci), paths, RUNC_OK)
    record = os.path.join(paths.vm_run_dir(bad.id), "state.json")
    with open(record) as f:
        text = f.read()
    with open(record, "w") as f:
        f.write(text[:len(text) // 2])
    second = ClientIF()
    backend = HostBackend(paths)
    assert sorted(clientif.recover(Container, second, backend)) == \
        sorted([good.id, bad.id])
    assert second.vmContainer[good.id].lastStatus == constants.UP
    lost = second.vmContainer[bad.id]
    assert lost.lastStatus == constants.DOWN
    assert "can't be read" in lost.status()["exitMessage"]
    assert Schema().check("VmStats", lost.getStats()) == []
    for v in list(second.getVMs().values()):
        v.destroy(gracefulAttempts=0)
    assert backend.load_all() == {}

"""The plugin inside clientIF, with a small clientIF double; and the
results vdsm would return, checked against vdsm's API schema."""

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
from vdsm_container.runtimes.base import Availability

from .vdsmschema import Schema


class ClientIF:
    """The part of lib/vdsm/clientIF.py's clientIF the plugin uses."""

    def __init__(self):
        self.vmContainer = {}
        self.vm_container_lock = threading.Lock()
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
        vm = clientif.make_container(Container, self, params, paths,
                                     availability)
        vm.run()
        with self.vm_container_lock:
            self.vmContainer[vm.id] = vm
        return vm


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
        clientif.make_container(Container, ClientIF(), params, paths,
                                RUNC_OK)


def test_unusable_runtime_refused(paths, busybox_oci):
    avail = {"runc": Availability("runc", False, "runc not found in PATH")}
    with pytest.raises(errors.CreateError) as e:
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
    clientif.sample_all(cif)
    time.sleep(0.1)
    clientif.sample_all(cif)
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
    recovered = clientif.recover(Container, second, paths)
    assert sorted(recovered) == sorted([ctr.id, exited.id])
    assert second.vmContainer[ctr.id].lastStatus == constants.UP
    assert second.vmContainer[exited.id].lastStatus == constants.DOWN
    assert second.vmContainer[ctr.id].getStats()["pid"] == \
        str(ctr.bundle.pid())
    # Recovering again adds nothing twice.
    assert clientif.recover(Container, second, paths) == []
    for v in second.getVMs().values():
        v.destroy(gracefulAttempts=0)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_sampler_reports_exit_as_event(paths, busybox_oci):
    cif = ClientIF()
    ctr = cif.createVm(params_for(busybox_oci, ("sh", "-c", "sleep 0.3")),
                       paths, RUNC_OK)
    time.sleep(0.6)
    clientif.sample_all(cif)
    event = "|virt|VM_status|%s" % ctr.id
    statuses = [p[ctr.id]["status"] for e, p in cif.events if e == event]
    assert statuses == ["Up", "Down"]
    down = [p[ctr.id] for e, p in cif.events if e == event][-1]
    assert down["exitCode"] == constants.NORMAL
    ctr.destroy()

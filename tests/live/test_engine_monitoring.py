"""What the live vdsmd tells Engine about a container over its whole life,
read by Engine's own code (tests/engine/monitoring.py runs
VdsBrokerObjectsBuilder, VmManager.isLatestData and VmAnalyzer.analyze):
every Host.getAllVmStats poll and VM_status event, with a plain VM beside
the container, through create, Up, pause/cont, a vdsmd restart, shutdown,
destroy, and a crash; and Host.getCapabilities.  Engine drops, misparses
or fails on none of them, and reaches the outcomes it must: a shutdown is
a normal Down, a crash VM_DOWN_ERROR, each followed by Engine's Destroy.

Polls come far more often than Engine's 15 s: more chances to catch data
out of order, never fewer."""

import os
import signal
import time

from vdsm import client

from ..engine.monitoring import EngineMonitor
from .conftest import WAIT, connect, services


class Watch:
    """Engine's two feeds of one host, in the order they arrive: the
    events received so far, then one poll."""

    def __init__(self, cli, events):
        self.cli = cli
        self.events = events
        self.engine = EngineMonitor()
        self._fed = 0
        self.polls = 0
        self.last = {}

    def step(self):
        self.events._drain()
        seen = self.events._seen
        for method, params in seen[self._fed:]:
            if method.startswith("|virt|VM_status|"):
                self.engine.event(params)
        self._fed = len(seen)
        stats = self.cli.Host.getAllVmStats()
        self.polls += 1
        self.last = {s["vmId"]: s for s in stats}
        self.engine.poll(stats)

    def until(self, vm_id, status):
        """Step until a poll lists ``vm_id`` in ``status`` (a bound for a
        failure, not a timing assertion)."""
        deadline = time.monotonic() + WAIT
        while True:
            self.step()
            if self.last.get(vm_id, {}).get("status") == status:
                return self.last[vm_id]
            assert time.monotonic() < deadline, (
                "%s never %s; last %s; findings %s" % (
                    vm_id, status, self.last.get(vm_id),
                    self.engine.findings))
            time.sleep(0.2)

    def destroy(self, vm_id):
        self.cli.VM.destroy(vmID=vm_id)
        self.engine.destroyed_now(vm_id)
        for _ in range(3):
            self.step()


def _down_outcome(engine, vm_id):
    """What VmAnalyzer did with the first Down it analyzed (event or poll):
    Engine's row moved to Down there, so later reports change nothing."""
    for _, r in engine.results:
        if r["vmId"] == vm_id and r.get("status") == "Down" and r["latest"]:
            return r
    raise AssertionError("Engine analyzed no Down of %s" % vm_id)


def test_engine_reads_the_capabilities(cli):
    """Host.getCapabilities into Engine's VDS (GetCapabilitiesVDSCommand:
    VdsBrokerObjectsBuilder.updateVDSDynamicData)."""
    caps = cli.Host.getCapabilities()
    vds = EngineMonitor().caps(caps)
    features = set(vds["additionalFeatures"])
    assert "containers" in features
    assert {f for f in caps["additionalFeatures"]
            if f.startswith("containers_")} <= features
    assert "containers_runc" in features


def test_engine_takes_every_poll_and_event(made, cli, events):
    watch = Watch(cli, events)
    plain = made.plain_vm()
    watch.engine.created(plain)
    watch.until(plain, "Up")

    vm_id = made.container(wait_up=False)
    watch.engine.created(vm_id)
    watch.step()                            # listed from VM.create on
    acpi = watch.until(vm_id, "Up")["acpiEnable"]
    cli.VM.pause(vmID=vm_id)
    watch.until(vm_id, "Paused")
    cli.VM.cont(vmID=vm_id)
    watch.until(vm_id, "Up")

    services("restart", "vdsmd")
    events.subscribe()
    watch.cli = made.cli = connect()
    watch.until(vm_id, "Up")
    watch.until(plain, "Up")

    watch.cli.VM.shutdown(vmID=vm_id)
    watch.until(vm_id, "Down")
    shut = _down_outcome(watch.engine, vm_id)
    watch.destroy(vm_id)

    crashed = made.container(wait_up=False)
    watch.engine.created(crashed)
    pid = int(watch.until(crashed, "Up")["pid"])
    os.kill(pid, signal.SIGKILL)
    down = watch.until(crashed, "Down")
    assert down["exitCode"] == 1
    crash = _down_outcome(watch.engine, crashed)
    watch.destroy(crashed)
    try:
        watch.destroy(plain)
    except client.ServerError as e:
        # vdsm can't finish a plain VM's destroy with its storage side off
        # (test_live.test_plain_vm_beside_containers): not Engine's case
        assert "inappropriateDevices" in str(e), e
        watch.engine.running.discard(plain)
        made.forget_half_destroyed(plain)

    assert watch.engine.findings == []
    assert shut["exitStatus"] == "Normal" and "VM_DOWN" in shut["audit"]
    assert "VM_DOWN_ERROR" not in shut["audit"]
    assert crash["exitStatus"] == "Error"
    assert "VM_DOWN_ERROR" in crash["audit"]
    assert shut["commands"] == crash["commands"] == ["Destroy"]
    assert acpi == "true"       # Engine writes <acpi/> (VmStatic.acpiEnable)
    # Engine analyzed the polls and the events, not just received them.
    assert watch.engine.analyzed["poll"] >= watch.polls
    # Every event was analyzed, or skipped by isLatestData after a newer
    # poll (benign: under TCG in the hostvm polls overtake more events).
    assert watch.engine.analyzed["event"] + len(watch.engine.benign) >= 8
    assert watch.engine.analyzed["event"] >= 4
    watch.cli.close()

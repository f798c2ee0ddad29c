"""Two live vdsm hosts sharing a storage domain (issue #35): the vdsm side
of ``ovirt-container drain`` and ``move`` as Engine drives it.

Host A is the live host (the root namespaces); host B is tests/live/hostb:
the same daemons in mount and network namespaces of their own, reached at
10.35.0.2:54321.  The data domain is a LOCALFS domain on a file system
under hostb's shared mount, the same directory on both, A its SPM (host id
1), B connected to the pool as host id 2: sanlock holds both hosts'
delta leases on the domain's ids file, as on two machines.

A container VM with a NIC (Engine's MAC, from tests/data's domain XML) on
a bridge each host has, and a data volume: up on A, where it writes a
file on the volume; shut down (Engine's ShutdownVm: VM.shutdown, Down,
then VM.destroy) and nothing of it left on A; created on B from the same
XML: Up, the file there, the MAC the same, its stats and events taken by
Engine's monitoring rules (tests/engine/monitoring.py).  Then a crash of
B's vdsmd (SIGKILL) right after VM.create: after its recovery, exactly
one copy of the VM, reported the same by the poll and the events.
"""

import os
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from vdsm import client

from . import storage
from .conftest import (HERE, WAIT, Events, connect, container_xml,
                       finish_dc, stats, vm_list)
from .test_engine_monitoring import Watch

HOSTB = os.path.join(HERE, "hostb")
B_ADDR = "10.35.0.2"
SHARED = "/var/tmp/vdsm-twohosts"
BRIDGE = "live35br"
# No ';' in it: Engine's custom properties can't carry one (their
# separator; containerCommand's regex refuses it).
COMMAND = ["sh", "-c", '(test -e /data/marker && cp /data/marker /data/seen '
           '|| echo written-on-A > /data/marker) && sleep 100000 & '
           'trap "exit 0" TERM && wait']


def hostb(*args, capture=False):
    return subprocess.run([HOSTB] + list(args), check=True,
                          stdout=subprocess.PIPE if capture else None,
                          text=True).stdout


def connect_b():
    deadline = time.monotonic() + WAIT
    while True:
        try:
            cli = client.connect(B_ADDR, 54321, use_tls=False, timeout=60)
            cli.Host.ping2()
            return cli
        except (client.ServerError, client.ConnectionError,
                client.TimeoutError, OSError) as e:
            if time.monotonic() > deadline:
                raise AssertionError("host B never answered: %s" % e) \
                    from e
            time.sleep(0.5)


class EventsB(Events):
    def subscribe(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = connect_b()
        self.client.subscribe("jms.queue.events", self._queue)


pytestmark = pytest.mark.skipif(
    os.path.isdir("/run/systemd/system"),
    reason="tests/live/hostb starts B's daemons by tests/live/services "
    "without systemd; with systemd as PID 1 it would start A's units")


@pytest.fixture(scope="module")
def two(image):
    """Both hosts up, the domain on both: (dc on A, dc on B).  Undone in
    reverse order, whatever was made."""
    undo = []
    try:
        hostb("start")
        undo.append(lambda: hostb("stop"))
        for cmd in (["ip", "link", "add", BRIDGE, "type", "bridge"],
                    ["ip", "link", "set", BRIDGE, "up"]):
            subprocess.run(cmd, check=True)
            hostb("exec", *cmd)
        undo.append(lambda: subprocess.run(["ip", "link", "del", BRIDGE]))
        fs = storage.LocalFS(parent=SHARED)
        undo.append(fs.remove)
        cli_a = connect()
        dc_a = storage.DataCenter(cli_a, fs.path)
        undo.append(lambda: finish_dc(dc_a, cli_a))
        dc_a.build()
        cli_b = connect_b()
        undo.append(cli_b.close)
        dc_b = dc_a.on(cli_b, host_id=2)
        undo.append(dc_b.destroy)   # B's pool and server; A's run dir stays
        dc_b.connect_server()
        dc_b.connect_pool()
        yield dc_a, dc_b
    finally:
        errors = []
        for step in reversed(undo):
            try:
                step()
            except Exception as e:
                errors.append(repr(e))
        assert errors == []


def _mac(xml):
    return ET.fromstring(xml).find("devices/interface/mac").get("address")


def _macs(cli, vm_id):
    """The VM's NIC MACs in its stats, once the plugin has sampled them
    (a bound for a failure, not a timing assertion)."""
    deadline = time.monotonic() + WAIT
    while True:
        network = stats(cli, vm_id).get("network") or {}
        if network or time.monotonic() > deadline:
            return [n["macAddr"] for n in network.values()]
        time.sleep(0.5)


def _left_on_a(vm_id, dc, disks):
    """What of the VM host A still has."""
    left = []
    if vm_id in vm_list(connect()):
        left.append("vdsm lists it")
    for img_id in disks:
        if os.path.lexists(storage.prepared_link(dc, img_id)):
            left.append("image %s prepared" % img_id)
    if os.path.exists("/run/vdsm-container/vms/%s" % vm_id):
        left.append("its run directory")
    out = subprocess.run(["vdsm-container", "list"], stdout=subprocess.PIPE,
                         text=True).stdout
    if vm_id in out:
        left.append("the plugin lists it: %s" % out)
    return left


def _listed_on_b(vm_id):
    """Copies of the VM on B: vdsm's list, the plugin's (with orphans)."""
    import json
    plugin = json.loads(hostb("exec", "vdsm-container", "list",
                              capture=True))      # with B's paths
    listed = connect_b().Host.getVMList(onlyUUID=False)
    return ([v["vmId"] for v in listed if v["vmId"] == vm_id],
            [e for e in plugin if e["vmId"] == vm_id])


def test_move_by_restart_then_a_crash_of_b_in_the_start(two, image, events):
    dc_a, dc_b = two
    img = dc_a.create_volume(storage.volume_size_for(image))
    dc_a.upload(*img, image)
    data = dc_a.create_volume(32 * storage.MIB)
    path = dc_a.prepare(*data)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)
    finally:
        dc_a.teardown(*data)
    vm_id = str(uuid.uuid4())
    xml = container_xml(vm_id, "live-2h-%s" % vm_id[:8], "/nonexistent",
                        COMMAND, {"containerVolumes": "ua-%s:/data" % data[0]},
                        bridge=BRIDGE, volumes={"sda": img, "sdb": data},
                        dc=dc_a)

    try:
        _move_and_crash(dc_a, dc_b, img, data, vm_id, xml, events)
    finally:
        for connect_to in (connect, connect_b):
            try:
                connect_to().VM.destroy(vmID=vm_id)
            except client.ServerError:
                pass        # not there: as it should be


def _move_and_crash(dc_a, dc_b, img, data, vm_id, xml, events):
    mac = _mac(xml)
    # Up on A, which writes the marker; then Engine's shutdown.
    cli_a = connect()
    cli_a.VM.create(vmID=vm_id, vmParams={"xml": xml})
    events.wait_status(vm_id, "Up")
    assert _macs(cli_a, vm_id) == [mac]
    cli_a.VM.shutdown(vmID=vm_id)
    events.wait_status(vm_id, "Down")
    cli_a.VM.destroy(vmID=vm_id)
    assert _left_on_a(vm_id, dc_a, (img[0], data[0])) == []

    # Created on B from the same XML, watched by Engine's rules.
    events_b = EventsB()
    watch = Watch(connect_b(), events_b)
    watch.engine.created(vm_id, macs=[mac], image_ids=[img[0], data[0]])
    watch.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    watch.until(vm_id, "Up")
    assert _macs(watch.cli, vm_id) == [mac]
    watch.cli.VM.shutdown(vmID=vm_id)
    watch.until(vm_id, "Down")
    watch.destroy(vm_id)
    seen = subprocess.run(["debugfs", "-R", "cat /seen",
                           dc_a.volume_path(*data)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout
    assert seen.strip() == "written-on-A"

    # B's vdsmd killed in the middle of the start: once the plugin has
    # begun making the container (its run directory is there; vdsmd waits
    # on supervdsmd), then started again.  (Killed earlier, while vdsm
    # still prepares the disks, no container is begun: after the restart
    # vdsm lists no VM, Engine's proceedDisappearedVm sets it Down, and
    # the volumes stay prepared on B: seen once, not tested here.)
    watch.engine.created(vm_id, macs=[mac], image_ids=[img[0], data[0]])
    watch.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    deadline = time.monotonic() + WAIT
    while subprocess.run([HOSTB, "exec", "test", "-e",
                          "/run/vdsm-container-hostb/vms/" + vm_id]
                         ).returncode != 0:
        assert time.monotonic() < deadline, "B's plugin never began it"
        time.sleep(0.01)
    pid = int(hostb("exec", "cat", "/run/vdsm/vdsmd.pid", capture=True))
    hostb("exec", "kill", "-%d" % signal.SIGKILL, str(pid))
    hostb("exec", os.path.join(HERE, "services"), "start", "vdsmd")
    events_b.subscribe()
    watch.cli = dc_b.cli = connect_b()
    # Engine, seeing the host up again, connects it to its pool
    # (InitVdsOnUpCommand: ConnectStoragePool); vdsm's recovery waits
    # for it before it is done with the VMs' disks.
    dc_b.connect_server()
    dc_b.connect_pool()
    watch.until(vm_id, "Up")
    try:
        assert _listed_on_b(vm_id)[0] == [vm_id]
        plugin = _listed_on_b(vm_id)[1]
        assert [(e["status"], e.get("orphan", False)) for e in plugin] == \
            [("Up", False)]
        assert _left_on_a(vm_id, dc_a, (img[0], data[0])) == []
        for _ in range(3):
            watch.step()
        assert watch.last[vm_id]["status"] == "Up"
        assert watch.engine.findings == []
    finally:
        events_b.client.close()

"""The container's stats as Engine's monitoring takes them: Engine's own
VdsBrokerObjectsBuilder, VmManager.isLatestData and VmAnalyzer.analyze
(tests/engine/monitoring.py runs them), finding the defects this plugin
had (each case feeds the old shape and the current one) and giving the
outcomes Engine must reach (a crash is VM_DOWN_ERROR and a Destroy)."""

import time
import uuid

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container.stats import vmstats
from vdsm_container.stats.cgroups import Sample
from vdsm_container import verbs

from .engine import libvirt_xml
from .engine.monitoring import EngineMonitor

IMAGE_IDS = {"domainID": str(uuid.uuid4()), "poolID": str(uuid.uuid4()),
             "imageID": str(uuid.uuid4()), "volumeID": str(uuid.uuid4())}
MAC = "00:1A:4A:16:01:51"       # as an admin may type it


def _xml(vm_id, acpi=True):
    """Engine's XML (LibvirtVmXmlBuilder) for a container VM with its image
    disk on a file domain and a NIC on ovirtmgmt."""
    return libvirt_xml.vm_xml(libvirt_xml.container(
        vm_id, "mon", [("containerType", "runc"),
                       ("containerImage", "busybox:latest")],
        [libvirt_xml.disk(IMAGE_IDS["imageID"], IMAGE_IDS["volumeID"],
                          IMAGE_IDS["domainID"], boot=True)],
        [libvirt_xml.nic(MAC)], acpi=acpi, poolId=IMAGE_IDS["poolID"]))


def _sample(t, n):
    return Sample(timestamp=t, cpu_usage_ns=n, cpu_user_ns=n // 2,
                  cpu_system_ns=n // 4, io_read_bytes=n, io_write_bytes=n,
                  io_read_ops=n, io_write_ops=n)


def _running(spec, sizes=None):
    t = time.monotonic()
    return vmstats.running(spec, {"status": constants.UP, "pid": 7},
                           _sample(t - 2, 10), _sample(t, 30),
                           sizes={spec.image_disk.path: (4096, 8192)})


def _event(vm_id, status, notify_time):
    """A VM_status event as vdsm's yajsonrpc sends it (_add_notify_time)."""
    return {vm_id: {"status": status}, "notify_time": notify_time}


def test_old_status_time_clock_makes_engine_drop_every_poll():
    """statusTime in monotonic ms (the old status_time) is older than any
    notify_time on vdsm's event clock: after the first event Engine skips
    every poll of the VM."""
    vm_id = str(uuid.uuid4())
    engine = EngineMonitor()
    engine.created(vm_id)
    engine.event(_event(vm_id, "Up", vmstats.event_time()))
    old = str(int(time.monotonic() * 1000))
    engine.poll([{"vmId": vm_id, "status": "Up", "statusTime": old}])
    assert len(engine.findings) == 1
    assert "newer VM data was already processed" in engine.findings[0]
    assert engine.analyzed == {"event": 1, "poll": 0}


def test_polls_and_events_interleaved_are_all_analyzed():
    vm_id = str(uuid.uuid4())
    spec = domxml.parse(_xml(vm_id))
    engine = EngineMonitor()
    engine.created(vm_id, macs=[MAC], image_ids=[IMAGE_IDS["imageID"]])
    for status in ("Up", "Paused", "Up"):
        engine.event(_event(vm_id, status, vmstats.event_time()))
        engine.poll([_running(spec)])
    assert engine.findings == []
    assert engine.analyzed == {"event": 3, "poll": 3}


def test_status_time_is_on_the_event_clock():
    before = vmstats.event_time()
    stamped = int(vmstats.status_time())
    assert before <= stamped <= vmstats.event_time()
    assert stamped >= 2 ** 31 - 1


def test_acpi_enable_follows_the_domain_xml():
    on = domxml.parse(_xml(str(uuid.uuid4())))
    off = domxml.parse(_xml(str(uuid.uuid4()), acpi=False))
    assert (on.acpi, off.acpi) == (True, False)
    assert _running(on)["acpiEnable"] == "true"
    assert _running(off)["acpiEnable"] == "false"


def test_disk_entry_has_image_id_and_true_size():
    vm_id = str(uuid.uuid4())
    spec = domxml.parse(_xml(vm_id))
    disk = _running(spec)["disks"]["sda"]
    assert disk["imageID"] == IMAGE_IDS["imageID"]
    assert disk["truesize"] == "8192" and disk["apparentsize"] == "4096"
    # Without the metadata ids the disk is no vdsm image: no imageID.
    plain = domxml.parse(domxml.build(str(uuid.uuid4()), "p", "runc", "/x"))
    assert "imageID" not in vmstats.disks(
        plain, None, _sample(1.0, 1), {})["sda"]


def test_engine_finds_a_disk_without_image_id():
    vm_id = str(uuid.uuid4())
    stats = _running(domxml.parse(_xml(vm_id)))
    del stats["disks"]["sda"]["imageID"]      # the old disk entry
    engine = EngineMonitor()
    engine.created(vm_id, image_ids=[IMAGE_IDS["imageID"]])
    engine.poll([stats])
    assert ["imageID" in f for f in engine.findings] == [True]


def test_mac_is_reported_as_engine_sent_it():
    """Engine stores and writes MACs lowercased (NetworkInterface
    .setMacAddress): the NIC's stats carry the XML's MAC as it is."""
    spec = domxml.parse(_xml(str(uuid.uuid4())))
    assert spec.nics[0].mac == MAC.lower()


def test_engine_finds_nic_traps():
    vm_id = str(uuid.uuid4())
    engine = EngineMonitor()
    engine.created(vm_id, macs=[MAC])
    nic = {"name": "vnet0", "macAddr": MAC, "rx": "10", "tx": "5",
           "rxDropped": "0", "txDropped": "0", "speed": "1000",
           "sampleTime": time.monotonic()}
    poll = {"vmId": vm_id, "status": "Up",
            "statusTime": str(vmstats.event_time()), "network": {"n": nic}}
    engine.poll([poll])
    assert engine.findings == []
    # Engine lowercases both MACs (NetworkInterface.setMacAddress): the
    # case is no trap; another MAC is.
    engine.poll([dict(poll, statusTime=str(vmstats.event_time()),
                      network={"n": dict(nic, macAddr=MAC.lower())})])
    assert engine.findings == []
    engine.poll([dict(poll, statusTime=str(vmstats.event_time()),
                      network={"n": dict(nic, macAddr="00:1a:4a:16:01:52")})])
    later = dict(nic, rx="2000", sampleTime=nic["sampleTime"] + 2)
    del later["tx"]
    engine.poll([dict(poll, statusTime=str(vmstats.event_time()),
                      network={"n": later})])
    assert len(engine.findings) == 2
    assert "matches none" in engine.findings[0]
    assert "NullPointerException" in engine.findings[1]


def test_engine_finds_disappeared_and_destroyed_vms():
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    engine = EngineMonitor()
    engine.created(gone)
    engine.created(kept)
    engine.destroyed_now(kept)
    engine.poll([{"vmId": kept, "status": "Up",
                  "statusTime": str(vmstats.event_time())}])
    assert sorted(f.split(":")[0] for f in engine.findings) == \
        sorted(["poll %s" % gone, "poll %s" % kept])


def test_get_external_data_answers_as_for_a_vm_without_data():
    """vm.py getExternalData with engine_hash '' and no data: Engine's
    SaveVmExternalDataCommand marks it finished, nothing to store."""
    class Vm:
        id = "x"
    for kind in ("tpm", "nvram"):
        answer = verbs.get_external_data(Vm(), kind)
        assert answer == {"status": {"code": 0, "message": "Done"},
                          "data": {"hash": ""}}


def _down(vm_id, code, reason, message):
    return vmstats.exited(vm_id, {"exitCode": code, "exitReason": reason,
                                  "exitMessage": message})


def test_crash_is_down_error_and_engine_destroys_it():
    """A container that died (exitCode 1) seen by VmAnalyzer over Engine's
    row Up: proceedDownVm audits VM_DOWN_ERROR and sends Destroy."""
    vm_id = str(uuid.uuid4())
    spec = domxml.parse(_xml(vm_id))
    engine = EngineMonitor()
    engine.created(vm_id, macs=[MAC], image_ids=[IMAGE_IDS["imageID"]])
    engine.poll([_running(spec)])
    assert engine.last(vm_id)["dbStatus"] == "Up"
    engine.poll([_down(vm_id, constants.ERROR, constants.GENERIC_ERROR,
                       "container exited (killed by SIGKILL)")])
    down = engine.last(vm_id)
    assert (down["status"], down["exitStatus"]) == ("Down", "Error")
    assert "VM_DOWN_ERROR" in down["audit"]
    assert down["commands"] == ["Destroy"]
    assert down["dbStatus"] == "Down"
    assert engine.findings == []


def test_shutdown_is_a_normal_down():
    vm_id = str(uuid.uuid4())
    engine = EngineMonitor()
    engine.created(vm_id)
    engine.event(_event(vm_id, "Up", vmstats.event_time()))
    engine.poll([_down(vm_id, constants.NORMAL, constants.USER_SHUTDOWN,
                       "User shut down from within the guest")])
    down = engine.last(vm_id)
    assert (down["status"], down["exitStatus"]) == ("Down", "Normal")
    assert "VM_DOWN_ERROR" not in down["audit"]
    assert "VM_DOWN" in down["audit"]
    assert down["commands"] == ["Destroy"]
    assert engine.findings == []


def test_unknown_status_is_unassigned_in_engine():
    vm_id = str(uuid.uuid4())
    engine = EngineMonitor()
    engine.created(vm_id)
    engine.event(_event(vm_id, "Starting", vmstats.event_time()))
    assert engine.last(vm_id)["status"] == "Unassigned"
    assert any("Illegal VM status" in f for f in engine.findings)


def test_engine_reads_the_features_into_its_vds():
    """Host.getCapabilities' additionalFeatures as GetCapabilitiesVDSCommand
    reads them (VdsBrokerObjectsBuilder.updateVDSDynamicData): Engine's VDS
    has ``containers`` and ``containers_<runtime>`` for each usable one."""
    from vdsm_container.runtimes.base import Availability
    from vdsm_container.vdsm import caps
    names = ("runc", "crun", "runsc", "rkt")
    features = caps.additional_features(
        {n: Availability(n, True) for n in names})
    # vdsm's own features come first (lib/vdsm/host/caps.py); the plugin
    # extends the list (plugin.caps_get).
    vdsm_caps = {"additionalFeatures": ["libvirt_reset_vm"] + features,
                 "cpuSpeed": "2400.000", "HBAInventory": {"iSCSI": [],
                                                          "FC": []}}
    vds = EngineMonitor().caps(vdsm_caps)
    assert set(vds["additionalFeatures"]) >= {
        "containers"} | {"containers_%s" % n for n in names}


def test_numbers_go_as_strings_or_engine_loses_them():
    """VdsBrokerObjectsBuilder.assignDoubleValue takes a Double or a
    String: elapsedTime as a JSON integer (a whole second) is null in
    Engine.  The plugin sends strings, as vdsm does."""
    vm_id = str(uuid.uuid4())
    stats = _running(domxml.parse(_xml(vm_id)))
    assert isinstance(stats["elapsedTime"], str)
    engine = EngineMonitor()
    engine.created(vm_id, macs=[MAC], image_ids=[IMAGE_IDS["imageID"]])
    engine.poll([stats])
    assert engine.findings == []
    assert engine.last(vm_id)["elapsedTime"] is not None
    engine.poll([dict(stats, elapsedTime=12,
                      statusTime=str(vmstats.status_time()))])
    assert [f for f in engine.findings if "elapsedTime 12" in f]

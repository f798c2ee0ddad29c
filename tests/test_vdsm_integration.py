"""The plugin inside the real vdsm: VM verbs through vdsm.rpc.Bridge and
vdsm.API, on real runc containers.

These tests import oVirt/vdsm.  vdsm is not on PyPI nor in Debian: to run
them, put a fetched vdsm's lib/ on PYTHONPATH (see docs/testing.rst,
"Testing against vdsm").  Without it they skip, saying so.
"""

import logging
import os
import signal
import threading
import time
import uuid

import pytest

try:
    from vdsm import clientIF as clientif_mod
    from vdsm.rpc import Bridge
    from vdsm.virt import vm as vdsm_vm
except ImportError as e:     # pragma: no cover - depends on the host
    pytest.skip("vdsm is not importable (%s): put oVirt/vdsm's lib/ on "
                "PYTHONPATH to run the integration tests" % e,
                allow_module_level=True)

from vdsm_container import constants
from vdsm_container.bundle import quota
from vdsm_container.spec import domxml
from vdsm_container.host.backend import HostBackend
from vdsm_container.vdsm import plugin as vdsm_plugin
from vdsm_container.vdsm import vmcontainer
from vdsm_container.vdsm.vm import VdsmContainer
from vdsm_container.runtimes.base import Availability

from .engine import libvirt_xml
from .test_verbs import API_VM_CALLS
from .vdsmschema import Schema

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


@pytest.fixture
def cif(paths, monkeypatch):
    """vdsm's own clientIF class, without its servers and libvirt."""
    cif = object.__new__(clientif_mod.clientIF)
    cif.vmContainer = {}
    cif.vm_container_lock = threading.Lock()
    cif.vm_start_stop_lock = threading.Lock()
    cif._recovery = False
    cif.irs = None
    cif.log = logging.getLogger("test.cif")
    cif.events = []
    cif.notify = lambda event_id, params=None: cif.events.append(
        (event_id, params))
    monkeypatch.setattr(clientif_mod.clientIF, "_instance", cif)
    plugin = vdsm_plugin.install(paths=paths, availability={
        "runc": Availability("runc", True, "", "test")})
    assert plugin is not None
    yield cif
    vdsm_plugin.uninstall()
    for v in list(cif.vmContainer.values()):
        v.destroy(gracefulAttempts=0)


@pytest.fixture
def bridge():
    return Bridge.DynamicBridge()


def call(bridge, method, **params):
    result = bridge.dispatch(method)(**params)
    # Host.getAllVmStats wraps its result to keep it out of the logs.
    return getattr(result, "value", result)


def wait_for(bridge, vm_id, status, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = call(bridge, "VM.getStats", vmID=vm_id)[0]
        if stats["status"] == status:
            return stats
        vmcontainer.sample_all(clientif_mod.clientIF._instance,
                               vdsm_plugin._plugin.backend)
        time.sleep(0.05)
    raise AssertionError("%s never became %s" % (vm_id, status))


def test_container_is_a_vdsm_vm():
    assert issubclass(VdsmContainer, vdsm_vm.Vm)
    # Every verb API.py calls is the Container's, not libvirt-bound Vm code.
    for name in API_VM_CALLS:
        owner = next(c for c in VdsmContainer.__mro__
                     if name in c.__dict__)
        assert owner is not vdsm_vm.Vm, name


def test_background_attributes(paths, busybox_oci):
    """What vdsm's periodic operations, recovery and API read on every VM."""
    idle = VdsmContainer.from_xml(domxml.build(
        str(uuid.uuid4()), "idle", "runc", busybox_oci, command=["true"]),
        paths=paths)
    assert idle.monitorable is False
    assert idle.isMigrating() is False
    assert idle.isDomainReadyForCommands() is False
    assert idle.io_tune_values() == []
    assert idle.domain.xml == idle.xml and "<domain" in idle.xml
    assert idle.guestAgent.isResponsive() is False
    assert idle.isDomainRunning() is False
    assert idle.last_disk_hotplug() is None
    assert idle.cpu_policy() == "none" and idle.pinned_cpus() == {}
    assert idle.hugepagesz == idle.nr_hugepages == 0
    assert idle.mem_size_mb() == idle.spec.memory_kib // 1024
    assert idle.maybe_kill_paused() is None
    # periodic.py's NVRAM and TPM monitors: vdsm's own Vm method answers.
    assert idle.update_external_data("tpm") is None
    assert idle.update_external_data("nvram") is None
    # Recovery calls preparePaths on every VM; without a clientIF, no-op.
    assert idle.preparePaths() is None


def test_cpu_figures_match_vdsm_vmstats(paths):
    """Our cgroup-based cpu() against vdsm's own on the same numbers."""
    from vdsm.virt import vmstats as vdsm_vmstats
    from vdsm_container.stats import vmstats
    from vdsm_container.stats.cgroups import Sample
    first = Sample(timestamp=0.0, cpu_usage_ns=10**9, cpu_user_ns=4 * 10**8,
                   cpu_system_ns=10**8)
    last = Sample(timestamp=2.0, cpu_usage_ns=4 * 10**9,
                  cpu_user_ns=16 * 10**8, cpu_system_ns=3 * 10**8)
    bulk = [{"cpu.user": s.cpu_user_ns, "cpu.system": s.cpu_system_ns,
             "cpu.time": s.cpu_usage_ns} for s in (first, last)]
    theirs = vdsm_vmstats.cpu({}, bulk[0], bulk[1], 2.0)
    ours = vmstats.cpu(first, last)
    assert float(ours["cpuSys"]) == round(theirs["cpuSys"], 2)
    assert float(ours["cpuUser"]) == round(theirs["cpuUser"], 2)
    assert ours["cpuUsage"] == theirs["cpuUsage"]


def test_create_stats_migrate_destroy(cif, bridge, busybox_oci):
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "vdsm-int", "runc", busybox_oci,
                       command=["sleep", "1000"])
    created = call(bridge, "VM.create", vmID=vm_id, vmParams={"xml": xml})
    assert created["vmId"] == vm_id
    assert isinstance(cif.vmContainer[vm_id], VdsmContainer)
    stats = wait_for(bridge, vm_id, constants.UP)
    schema = Schema()
    vmcontainer.sample_all(cif, vdsm_plugin._plugin.backend)
    all_stats = call(bridge, "Host.getAllVmStats")
    assert [s["vmId"] for s in all_stats] == [vm_id]
    for s in all_stats + [stats]:
        assert schema.check("VmStats", s) == []
    # Migration: vdsm's error 12, nothing changed.
    with pytest.raises(Exception) as e:
        call(bridge, "VM.migrate", vmID=vm_id, params={"dst": "h2"})
    assert getattr(e.value, "code", None) == 12
    assert call(bridge, "VM.getStats", vmID=vm_id)[0]["status"] == "Up"
    # A refused verb is never code 100.
    with pytest.raises(Exception) as e:
        call(bridge, "VM.hotplugDisk", vmID=vm_id,
             params={"vmId": vm_id, "drive": {}})
    assert getattr(e.value, "code", None) == 45
    listed = call(bridge, "Host.getVMList")
    assert [v["vmId"] for v in listed] == [vm_id]
    call(bridge, "VM.destroy", vmID=vm_id)
    assert cif.vmContainer == {}
    statuses = [p[vm_id]["status"] for ev, p in cif.events
                if ev == "|virt|VM_status|%s" % vm_id]
    assert statuses[-1] == "Down" and "Up" in statuses


def test_bad_xml_is_vdsm_error(cif, bridge, busybox_oci):
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "bad", "runc", busybox_oci,
                       command=["true"]).replace(
        "<ovirt-vm:containerType>runc", "<ovirt-vm:containerType>lxc")
    with pytest.raises(Exception) as e:
        call(bridge, "VM.create", vmID=vm_id, vmParams={"xml": xml})
    assert getattr(e.value, "code", None) == 91
    assert cif.vmContainer == {}


def test_plain_vms_still_get_vdsm_vm(cif, monkeypatch):
    made = []
    plugin = vdsm_plugin._plugin
    monkeypatch.setattr(plugin, "_orig_vm",
                        lambda c, p, r=False: made.append(p) or "a Vm")
    plain = {"vmId": str(uuid.uuid4()),
             "xml": "<domain><uuid>%s</uuid></domain>" % uuid.uuid4()}
    assert clientif_mod.Vm(cif, plain) == "a Vm"
    assert made == [plain]


def test_recovery_after_vdsm_restart(cif, paths, busybox_oci, bridge):
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "rec", "runc", busybox_oci,
                       command=["sleep", "1000"])
    call(bridge, "VM.create", vmID=vm_id, vmParams={"xml": xml})
    wait_for(bridge, vm_id, constants.UP)
    cif.vmContainer.clear()          # vdsm restarted: it knows nothing
    vmcontainer.recover(VdsmContainer, cif, HostBackend(paths))
    assert cif.vmContainer[vm_id].lastStatus == constants.UP
    assert call(bridge, "VM.getStats", vmID=vm_id)[0]["status"] == "Up"


def test_containers_are_recovered_once(cif, monkeypatch):
    """vdsm re-runs recovery.all_domains every 5 s while a later step of
    clientIF._recoverExistingVms fails (function.retry; with irs off,
    _waitForStoragePool always does): containers are recovered once."""
    plugin = vdsm_plugin._plugin
    reads = []
    monkeypatch.setattr(plugin, "_orig_all_domains", lambda cif: None)
    monkeypatch.setattr(plugin.backend, "load_all",
                        lambda: reads.append(1) or {})
    monkeypatch.setattr(plugin, "_thread", "running")    # no sampler here
    for _ in range(3):
        plugin.all_domains(cif)
    assert reads == [1]


def test_event_clock_is_vdsms():
    """statusTime on vdsm's own event clock (common/time.event_time), the
    clock of every event's notify_time (yajsonrpc _add_notify_time)."""
    from vdsm.common import time as vdsm_time
    from vdsm_container.stats import vmstats
    before = vdsm_time.event_time()
    stamped = int(vmstats.status_time())
    assert before <= stamped <= vdsm_time.event_time()


def test_caps_get_adds_features(cif, monkeypatch):
    plugin = vdsm_plugin._plugin
    monkeypatch.setattr(plugin, "_orig_caps_get",
                        lambda: {"additionalFeatures": ["libgfapi_supported"]})
    from vdsm.host import caps
    assert caps.get()["additionalFeatures"] == [
        "libgfapi_supported", "containers", "containers_runc"]


def test_install_logs_versions_and_the_layer_default(paths, caplog):
    """vdsm.log at start-up says which runtime, conmon and umoci versions
    run here and the writable layer's default as it applies."""
    import shutil
    import subprocess
    caplog.set_level(logging.INFO)
    assert vdsm_plugin.install(paths=paths, availability={
        "runc": Availability("runc", True, "", "9.8.7")}) is not None
    try:
        text = caplog.text
    finally:
        vdsm_plugin.uninstall()
    line = [ln for ln in text.splitlines()
            if "Container tool versions: " in ln][0]
    assert "runc 9.8.7" in line
    for tool in ("conmon", "umoci"):
        if shutil.which(tool):
            first = subprocess.run([tool, "--version"], check=True,
                                   stdout=subprocess.PIPE,
                                   universal_newlines=True).stdout
            assert "%s %s" % (tool, first.split()[2]) in line
    assert "Container writable layer default: %d MiB" % min(
        paths.disk_size_mib, quota.filesystem_mib(paths.storage_dir)) in text


def test_no_runtime_changes_nothing(paths):
    before = (clientif_mod.Vm, vdsm_plugin._caps.get)
    assert vdsm_plugin.install(paths=paths, availability={
        "runc": Availability("runc", False, "not here")}) is None
    assert (clientif_mod.Vm, vdsm_plugin._caps.get) == before


def test_nic_stats_reach_vdsm(cif, bridge, busybox_oci):
    import subprocess
    name = "vcbr%s" % uuid.uuid4().hex[:6]
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        vm_id = str(uuid.uuid4())
        xml = domxml.build(vm_id, "nic", "runc", busybox_oci,
                           command=["sleep", "1000"],
                           nics=[(name, "56:6f:00:ab:cd:01")],
                           custom={"containerNetwork":
                                   "static:198.18.99.5/24"})
        call(bridge, "VM.create", vmID=vm_id, vmParams={"xml": xml})
        wait_for(bridge, vm_id, constants.UP)
        vmcontainer.sample_all(cif, vdsm_plugin._plugin.backend)
        stats = call(bridge, "VM.getStats", vmID=vm_id)[0]
        assert stats["guestIPs"] == "198.18.99.5"
        nics = list(stats["network"].values())
        assert nics[0]["macAddr"] == "56:6f:00:ab:cd:01"
        assert Schema().check("VmStats", stats) == []
        call(bridge, "VM.destroy", vmID=vm_id)
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)


class RecordingIrs:
    """vdsm's storage side (hsm) as clientIF.prepareVolumePath and
    teardownVolumePath call it: prepareImage answers where the volume is
    now (here: the test's image, at another path than Engine's XML names),
    and every call is recorded."""

    def __init__(self, prepared_path):
        self.prepared_path = prepared_path
        self.calls = []

    def prepareImage(self, sd_id, sp_id, img_id, vol_id):
        self.calls.append(("prepareImage", sd_id, sp_id, img_id, vol_id))
        return {"status": {"code": 0}, "path": self.prepared_path,
                "info": {"type": "FILE", "path": self.prepared_path},
                "imgVolumesInfo": []}

    def teardownImage(self, sd_id, sp_id, img_id, vol_id=None):
        self.calls.append(("teardownImage", sd_id, sp_id, img_id))
        return {"status": {"code": 0}}


STORAGE_IDS = {"domainID": "3c1e2b11-8f0d-4a63-9f3a-d7b5a3b45a5c",
               "poolID": "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
               "imageID": "6f1c0b2a-3d4e-4f5a-8b9c-0d1e2f3a4b5c",
               "volumeID": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"}


# Where Engine's LibvirtVmXmlBuilder puts a file domain's volume
# (VmInfoBuildUtils.getPathToImage): it exists only once prepared.
ENGINE_PATH = ("/rhev/data-center/%(poolID)s/%(domainID)s/images/"
               "%(imageID)s/%(volumeID)s" % STORAGE_IDS)


def _storage_xml(command):
    """Engine's XML (LibvirtVmXmlBuilder) for a container whose image disk
    is the volume STORAGE_IDS names on a file domain."""
    return libvirt_xml.vm_xml(libvirt_xml.container(
        None, "stor", [("containerType", "runc"),
                       ("containerImage", "busybox:latest"),
                       ("containerCommand", " ".join(command))],
        [libvirt_xml.disk(STORAGE_IDS["imageID"], STORAGE_IDS["volumeID"],
                          STORAGE_IDS["domainID"], boot=True)], [],
        poolId=STORAGE_IDS["poolID"]))


def _up_with_storage(paths, cif):
    """A container started as vdsm starts a VM, its image disk a volume
    (Engine's drive metadata) at ENGINE_PATH; Up, or the test fails."""
    xml = _storage_xml(["sleep", "1000"])
    ctr = VdsmContainer.from_xml(xml, backend=HostBackend(paths), cif=cif)
    ctr.start_in_background()
    deadline = time.monotonic() + 30
    while ctr.refresh() != constants.UP and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ctr.lastStatus == constants.UP, ctr.status()
    return ctr


def test_storage_prepared_and_torn_down_as_for_vms(paths, busybox_oci):
    """vm.py _preparePathsForDrives / _cleanupDrives, with vdsm's real
    clientIF.prepareVolumePath and teardownVolumePath."""
    cif = object.__new__(clientif_mod.clientIF)
    cif.irs = RecordingIrs(busybox_oci)
    cif.log = logging.getLogger("test.cif")
    cif.vmContainer = {}
    cif.vm_container_lock = threading.Lock()
    cif.notify = lambda event_id, params=None: None
    engine_path = ENGINE_PATH
    ctr = _up_with_storage(paths, cif)
    ids = tuple(STORAGE_IDS[k] for k in ("domainID", "poolID", "imageID",
                                         "volumeID"))
    assert cif.irs.calls == [("prepareImage",) + ids]
    # The container started from the prepared path, not Engine's.
    assert busybox_oci in ctr.xml and engine_path not in ctr.xml
    ctr.destroy(gracefulAttempts=0)
    assert cif.irs.calls[-1] == ("teardownImage",) + ids[:3]


def test_failed_start_tears_storage_down(paths, tmp_path):
    cif = object.__new__(clientif_mod.clientIF)
    bad = tmp_path / "not-an-image"
    bad.write_bytes(b"x" * 4096)
    cif.irs = RecordingIrs(str(bad))
    cif.log = logging.getLogger("test.cif")
    cif.notify = lambda event_id, params=None: None
    xml = _storage_xml(["true"])
    ctr = VdsmContainer.from_xml(xml, backend=HostBackend(paths), cif=cif)
    assert ctr.run()["status"]["code"] == 0     # Vm.run: starts behind
    ctr._start_thread.join()
    assert ctr.lastStatus == constants.DOWN
    assert "image" in ctr.status()["exitMessage"]
    assert [c[0] for c in cif.irs.calls] == ["prepareImage",
                                             "teardownImage"]


def test_crashed_container_tears_storage_down_before_down(paths,
                                                          busybox_oci):
    """vdsm's ``Vm._onQemuDeath``: ``releaseVm`` (the drives torn down)
    before ``setDownStatus``; Engine, told Down, finds a block domain's LV
    already deactivated."""
    cif = object.__new__(clientif_mod.clientIF)
    cif.irs = RecordingIrs(busybox_oci)
    cif.log = logging.getLogger("test.cif")
    at_down = []

    def notify(event_id, params=None):
        for stats in (params or {}).values():
            if stats.get("status") == constants.DOWN:
                at_down.append(list(cif.irs.calls))
    cif.notify = notify
    ctr = _up_with_storage(paths, cif)
    try:
        os.kill(int(ctr.getStats()["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while ctr.refresh() != constants.DOWN and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctr.lastStatus == constants.DOWN, ctr.status()
        assert at_down and [c[0] for c in at_down[0]] == [
            "prepareImage", "teardownImage"]
    finally:
        ctr.destroy(gracefulAttempts=0)
    assert [c[0] for c in cif.irs.calls] == ["prepareImage",
                                             "teardownImage"]


def test_supervdsm_entry_point_is_exposed(paths, monkeypatch):
    """contrib/vdsm's module, as supervdsmd loads it: vdsm's @expose marks
    the one entry point, and it serves the backend's verbs only."""
    monkeypatch.setenv("VDSM_CONTAINER_RUN_DIR", paths.run_dir)
    monkeypatch.setenv("VDSM_CONTAINER_STORAGE_DIR", paths.storage_dir)
    from vdsm_container.vdsm import supervdsm_api
    monkeypatch.setattr(supervdsm_api, "_host", None)
    assert getattr(supervdsm_api.vdsm_container, "exposed_api", False)
    assert supervdsm_api.vdsm_container("load_all") == {"result": {}}
    refused = supervdsm_api.vdsm_container("store")
    assert refused["error"]["code"] == 91


class _NoVms:
    def getVMs(self):
        return {}


class _NoBackend:
    def observe(self, vm_ids, sample=False):
        raise AssertionError("no container: no call")


def test_plugin_rounds_are_logged(caplog):
    p = vdsm_plugin.Plugin(_NoBackend(), {})
    cif = _NoVms()
    caplog.set_level(logging.DEBUG, logger=vdsm_plugin.log.name)
    p._stop.wait = _stop_after(p, 2)
    p._sample_loop(cif, 2 * vdsm_plugin.STATUS_INTERVAL)
    rounds = [r.getMessage() for r in caplog.records
              if " round: " in r.getMessage()]
    assert rounds[0].startswith("status round: 0 containers in ")
    assert rounds[1].startswith("sampling round: 0 containers in ")


def _stop_after(p, rounds):
    left = [rounds]

    def wait(timeout):
        left[0] -= 1
        return left[0] < 0
    return wait

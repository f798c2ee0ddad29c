"""Every VM verb is served or refused with vdsm's error, never code 100."""

import os
import time

import pytest

from vdsm_container import constants
from vdsm_container.vdsm import domain
from vdsm_container import errors
from vdsm_container import verbs
from vdsm_container.container import Container
from vdsm_container.linux import mounts

from .test_container import started, xml_for  # noqa: F401 (fixture)
from .conftest import bundle_of, driver_of, in_container

# The methods lib/vdsm/API.py (class VM, oVirt/vdsm fd4b0df20) calls on a Vm
# object; test_vdsm_integration re-reads them from the real API.py.
API_VM_CALLS = (
    "changeCD changeFloppy cont destroy getExternalData migrateStatus "
    "getStats updateDevice hotplugNic hotplugHostdev hotunplugHostdev "
    "hotunplugNic hotplugDisk hotunplugDisk hotplugLease hotunplugLease "
    "hotplugMemory hotunplugMemory setNumberOfCpus updateVmPolicy migrate "
    "migrateChangeParams migrateCancel waitForMigrationDestinationPrepare "
    "diskReplicateStart diskReplicateFinish diskSizeExtend pause reset "
    "setTicket shutdown set_destroy_on_reboot freeze thaw start_backup "
    "stop_backup backup_info delete_checkpoints redefine_checkpoints "
    "list_checkpoints dump_checkpoint snapshot setBalloonTarget "
    "setCpuTuneQuota io_tune_values setIoTune io_tune_policy "
    "setCpuTunePeriod getDiskAlignment merge refresh_disk screenshot "
    "status"
).split()


def test_every_api_verb_is_served_or_refused():
    missing = [n for n in API_VM_CALLS
               if n not in verbs.SERVED and n not in verbs.REFUSED]
    assert missing == []
    for name in API_VM_CALLS:
        assert callable(getattr(Container, name)), name


@pytest.fixture
def idle(paths, busybox_oci):
    """A Container object that was never started: refusals need no more."""
    return Container.from_xml(xml_for(busybox_oci, ["true"]), paths=paths)


@pytest.mark.parametrize("name", sorted(verbs.REFUSED))
def test_refused_with_vdsm_error(idle, paths, name):
    cls = verbs.REFUSED[name][0]
    with pytest.raises(cls) as e:
        getattr(idle, name)({"some": "params"})
    assert e.value.code == cls.code != 100
    assert e.value.response()["status"]["code"] == cls.code
    assert not os.path.exists(paths.run_dir)    # nothing touched


def test_no_guest_agent():
    agent = verbs.NoGuestAgent()
    assert agent.isResponsive() is False
    with pytest.raises(errors.NonResponsiveGuestAgent):
        agent.desktopLock()


def test_domain_facade(idle):
    dom = domain.ContainerDomain(idle)
    assert dom.UUIDString() == idle.id
    assert dom.name() == idle.name
    assert dom.XMLDesc(0) == idle.xml
    assert dom.isActive() == 0
    assert dom.state(0) == [domain.VIR_DOMAIN_NOSTATE, 0]
    assert dom.info()[1] == idle.spec.memory_kib
    assert dom.controlInfo() == [domain.VIR_DOMAIN_CONTROL_OK, 0, 0]
    for name in domain.UNSUPPORTED:
        with pytest.raises(domain.libvirtError) as e:
            getattr(dom, name)()
        assert e.value.get_error_code() == \
            domain.VIR_ERR_OPERATION_UNSUPPORTED


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_facade_follows_the_container(started):  # noqa: F811
    ctr = started()
    dom = domain.ContainerDomain(ctr)
    assert dom.state() == [domain.VIR_DOMAIN_RUNNING,
                           domain.VIR_DOMAIN_RUNNING_BOOTED]
    assert dom.ID() == bundle_of(ctr).pid()
    ctr.pause()
    assert dom.state()[0] == domain.VIR_DOMAIN_PAUSED
    ctr.cont()
    dom.destroyFlags()
    assert dom.state()[0] == domain.VIR_DOMAIN_SHUTOFF


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_reset_restarts_the_process(started):  # noqa: F811
    # Not in /tmp: runsc mounts a tmpfs of its own sandbox there.
    ctr = started(("sh", "-c", "echo started >> /boots; sleep 1000"))
    first = bundle_of(ctr).pid()
    assert ctr.reset()["status"]["code"] == 0
    assert ctr.lastStatus == constants.UP
    second = bundle_of(ctr).pid()
    assert second and second != first
    # The new process writes its line when it runs, which a loaded machine
    # may delay: wait for it (a bound for a failure, not a timing).
    path = in_container(ctr, "/boots")
    deadline = time.monotonic() + 30
    while True:
        with open(path) as f:
            boots = f.read()
        if boots.count("started") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert boots.count("started") == 2      # the writable layer stayed
    assert ctr.refresh() == constants.UP


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_a_reset_that_fails_leaves_nothing_mounted(started,  # noqa: F811
                                                   monkeypatch):
    """A reset mounts the rootfs again for the new run; when that run
    can't start, the VM is Down (ResetFailed) and the mounts are not left
    on the host: destroy then leaves nothing (leakcheck)."""
    ctr = started()
    driver = driver_of(ctr)

    def refuse(bundle):
        assert mounts.mounted_under(bundle.storage_dir), \
            "the rootfs was not mounted again for the new run"
        raise errors.CannotCreateVM("refused by the test")

    monkeypatch.setattr(driver, "start", refuse)
    with pytest.raises(errors.ResetFailed):
        ctr.reset()
    assert ctr.lastStatus == constants.DOWN
    assert mounts.mounted_under(bundle_of(ctr).storage_dir) == []
    ctr.destroy(gracefulAttempts=0)

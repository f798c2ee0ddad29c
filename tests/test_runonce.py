"""Run Once "start paused" on a container VM (issue #37 item 4).

Engine's flow: Run Once with "Start in paused mode" sets the VM's
runAndPause; LibvirtVmXmlBuilder.writeRunAndPauseMetadata writes
``<ovirt-vm:launchPaused>true</ovirt-vm:launchPaused>`` into the XML's
``<metadata><ovirt-vm:vm>`` of VM.create (and "false" for every other
start); vdsm (virt/vm.py ``Vm.__init__``) starts the domain with
VIR_DOMAIN_START_PAUSED and reports it Paused.  Engine's Resume
(ResumeVmCommand -> ResumeVDSCommand) then sends VM.cont.
"""

import os
import time
import uuid

import pytest

from vdsm_container import constants, errors
from vdsm_container.container import Container, create
from vdsm_container.host import admission
from vdsm_container.runtimes import base
from vdsm_container.spec import domxml
from vdsm_container.stats import cgroups

from .conftest import bundle_of, driver_of, in_container


def paused_xml(image, value="true", runtime="runc"):
    xml = domxml.build(str(uuid.uuid4()), "run-once", runtime, image,
                       command=["sh", "-c", "touch /ran; sleep 1000"])
    return xml.replace(
        "</ovirt-vm:vm>",
        "<ovirt-vm:launchPaused>%s</ovirt-vm:launchPaused></ovirt-vm:vm>"
        % value)


def frozen(ctr):
    h = cgroups.Hierarchy()
    rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
    if h.version == 2:
        with open(os.path.join(h.path(rel), "cgroup.freeze")) as f:
            return f.read().strip() == "1"
    with open(os.path.join(h.path(rel, "freezer"), "freezer.state")) as f:
        return f.read().strip() == "FROZEN"


@pytest.mark.parametrize("text, paused", [
    ("true", True), ("True", True), ("1", True), ("false", False),
    ("0", False), ("", False), ("yes", False), (None, False)])
def test_launch_paused_read_as_vdsm_reads_it(busybox_oci, text, paused):
    """conv.tobool(md.get('launchPaused', False))."""
    xml = paused_xml(busybox_oci, text) if text is not None else \
        domxml.build(str(uuid.uuid4()), "n", "runc", busybox_oci)
    assert domxml.parse(xml).launch_paused is paused


@pytest.mark.usefixtures("leakcheck")
def test_started_paused_then_resumed(paths, busybox_oci):
    ctr = create(paused_xml(busybox_oci), paths=paths)
    try:
        # Reported Paused from the start, frozen in the cgroup freezer, and
        # it stays so on every look.
        assert ctr.lastStatus == constants.PAUSED
        assert ctr.getStats()["status"] == "Paused"
        assert driver_of(ctr).state(bundle_of(ctr)).status == base.PAUSED
        assert frozen(ctr)
        assert ctr.refresh() == constants.PAUSED
        # Engine's Resume.
        assert ctr.cont()["status"]["code"] == 0
        assert ctr.refresh() == constants.UP
        assert not frozen(ctr)
        # The command goes on (a bound for a failure, not a timing).
        ran = os.path.join(in_container(ctr), "ran")
        deadline = time.monotonic() + 30
        while not os.path.exists(ran) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(ran)
    finally:
        ctr.destroy(gracefulAttempts=0)


@pytest.mark.usefixtures("leakcheck")
def test_launch_paused_false_starts_up(paths, busybox_oci):
    ctr = create(paused_xml(busybox_oci, "false"), paths=paths)
    try:
        assert ctr.lastStatus == constants.UP
        assert not frozen(ctr)
    finally:
        ctr.destroy(gracefulAttempts=0)


def test_refused_where_the_runtime_cannot_freeze(paths, busybox_oci):
    """rkt's driver can't pause: refused before anything is touched."""
    spec = domxml.parse(paused_xml(busybox_oci, runtime="rkt"))
    with pytest.raises(errors.UnsupportedOperation) as e:
        admission.check_supported(spec)
    assert "does not support pause" in str(e.value)
    ctr = Container.from_xml(paused_xml(busybox_oci, runtime="rkt"),
                             paths=paths)
    with pytest.raises(errors.UnsupportedOperation):
        ctr.run()
    assert not os.path.exists(os.path.join(paths.run_dir, "vms", ctr.id))

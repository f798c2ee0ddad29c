"""``VdsmContainer``: a Container that *is* a vdsm ``Vm``.

vdsm's API.py, clientIF and periodic operations handle objects of
lib/vdsm/virt/vm.py ``Vm``; some check ``isinstance``, all read a few of its
attributes.  ``Vm.__init__`` is never called: it opens a libvirt connection
and builds devices from the domain XML, neither of which a container has.
Container's methods come first in the MRO, and every VM verb API.py calls
is defined by Container (served, or refused by ``verbs``), so no
libvirt-bound Vm method is reached through the API.

What this class adds is what vdsm's own code asks of every VM: the
attributes its background operations read, a libvirt-shaped ``_dom``, the
start in a thread (``Vm.run``), and storage prepared through clientIF as
vdsm prepares a VM's drives.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET

from vdsm.common import response
from vdsm.virt import metadata
from vdsm.virt import vm as _vm
from vdsm.virt.domain_descriptor import DomainDescriptor
from vdsm.virt.vmdevices import common as vmdevices_common

from vdsm_container import verbs
from vdsm_container.container import Container
from vdsm_container.vdsm import domain

log = logging.getLogger("vdsm_container.vdsm.vm")


class VdsmContainer(Container, _vm.Vm):
    """A container VM as vdsm's code sees it."""

    # What vdsm's periodic operations and background code read on every VM
    # (lib/vdsm/virt/periodic.py _RunnableOnVm, clientIF): a container has
    # no libvirt domain to monitor, is never migrating, never paused on EIO.
    monitorable = False
    pause_code = None
    post_copy = False
    start_time = 0.0        # qemuguestagent's boot-time probing: long past
    hugepagesz = 0
    nr_hugepages = 0

    def __init__(self, spec, **kwargs):
        Container.__init__(self, spec, **kwargs)
        self.log = logging.getLogger("virt.vm.container")
        self.guestAgent = verbs.NoGuestAgent()
        self._dom = domain.ContainerDomain(self)
        self._domain_xml = domain.DomainXML(self.xml)
        # periodic.py's NVRAM and TPM monitors call update_external_data;
        # a container has neither device, so vdsm's Vm answers None.
        self._external_data = {}
        self._prepared_drives = []

    # vdsm's Vm has these as read-only properties: so must we, for
    # VdsmContainer(Container, Vm) to set them.

    @property
    def name(self):
        return Container.name.fget(self)

    @property
    def domain(self):
        return self._domain_xml

    def run(self):
        """``Vm.run``: start in a thread, answer at once (WaitForLaunch)."""
        self.start_in_background()
        status = self.status()
        status["xml"] = self.xml
        return response.success(vmList=status)

    # Storage, as vdsm's Vm prepares drives (vm.py ``preparePaths``,
    # ``_preparePathsForDrives``; ``_cleanupDrives`` on the way out).

    def preparePaths(self):
        """Recovery (clientIF ``_preparePathsForRecoveredVMs``) calls this
        for every VM it recovered."""
        self.prepare_storage()

    def prepare_storage(self):
        """Prepare every disk through ``cif.prepareVolumePath`` (LV
        activation, links, leases), then point the domain XML at the
        prepared paths: the root side starts from those."""
        if self.cif is None or not self.xml:
            return
        drives = vmdevices_common.storage_device_params_from_domain_xml(
            self.id, DomainDescriptor(self.xml),
            metadata.Descriptor.from_xml(self.xml), self.log)
        prepared = {}
        for drive in drives:
            if self._destroy_requested.is_set():
                break
            drive["path"] = self.cif.prepareVolumePath(drive, self.id)
            self._prepared_drives.append(drive)
            if drive.get("name"):
                prepared[drive["name"]] = drive["path"]
        self.xml = with_disk_paths(self.xml, prepared)
        self._domain_xml = domain.DomainXML(self.xml)

    def setDownStatus(self, code, exitReasonCode, exitMessage=""):
        """Down, its drives released first: vdsm's ``Vm._onQemuDeath``
        calls ``releaseVm`` (-> ``_cleanup`` -> ``_cleanupDrives``) and
        only then ``setDownStatus``, so a crashed VM's volumes are torn
        down (a block domain's LVs deactivated) before Engine hears Down;
        destroy and a failed start have released them already
        (``release_storage`` is idempotent).  What holds the volumes open
        on the host (a qcow2 volume's export, host.qcow) is let go
        first."""
        if self._prepared_drives:
            try:
                self.backend.release_disks(self.id)
            except Exception as e:
                log.warning("Container %s: its disks' exports were not "
                            "stopped before their teardown: %s", self.id, e)
        self.release_storage()
        Container.setDownStatus(self, code, exitReasonCode, exitMessage)

    def release_storage(self):
        while self._prepared_drives:
            drive = self._prepared_drives.pop()
            try:
                self.cif.teardownVolumePath(drive)
            except Exception:
                log.exception("Container %s: teardown of drive %s failed",
                              self.id, drive.get("name"))

    # What vdsm's background code asks of every VM.

    def isMigrating(self):
        return False

    def isDomainReadyForCommands(self):
        return False

    def maybe_kill_paused(self):
        pass

    def isDomainRunning(self):
        # No libvirt domain, no guest agent channel: qemuguestagent skips it.
        return False

    def last_disk_hotplug(self):
        return None

    def cpu_policy(self):
        return "none"       # vdsm.virt.cpumanagement.CPU_POLICY_NONE

    def pinned_cpus(self):
        return {}

    def mem_size_mb(self, current=False):
        if self.spec is None:
            return 0
        kib = self.spec.current_memory_kib if current else \
            self.spec.memory_kib
        return kib // 1024


def with_disk_paths(xml, paths):
    """``xml`` with each disk's source set to ``paths[target dev]``.

    Unchanged (the very string) when every path is already the one the XML
    names, as on file domains; namespace prefixes are kept otherwise.
    """
    root = ET.fromstring(xml)
    changed = False
    for disk in root.iter("disk"):
        target = disk.find("target")
        source = disk.find("source")
        dev = target.get("dev") if target is not None else None
        if dev not in paths or source is None:
            continue
        attr = "dev" if "dev" in source.attrib else "file"
        if source.get(attr) != paths[dev]:
            source.set(attr, paths[dev])
            changed = True
    if not changed:
        return xml
    for prefix, uri in re.findall(r'xmlns:([\w.-]+)="([^"]+)"', xml):
        ET.register_namespace(prefix, uri)
    return ET.tostring(root, encoding="unicode")

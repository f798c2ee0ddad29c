"""The domain XML Engine would send to vdsm for a VM of the fake Engine.

Written in the shape of ovirt-engine's (master, 0111fc63)
backend/manager/modules/vdsbroker/.../builder/vminfo/LibvirtVmXmlBuilder.java,
for the parts a container VM has:

- ``writeVmCustomMetadata``: ``<ovirt-vm:custom>``, one element per custom
  property; ``writeClusterVersionMetadata``;
- ``writeDisks``/``writeDisk``: disks sorted boot disk first, then by
  alias (VmInfoBuildUtils.getSortedDisks); target ``sd`` + letter per
  VirtIO-SCSI index (VmInfoBuildUtils.makeDiskName); source under
  /rhev/data-center/<pool>/<domain>/images/<diskId>/<imageId>
  (getPathToImage); alias ``ua-<diskId>`` (writeAlias,
  generateUserAliasForDevice: a disk's device id is the disk's id); boot
  order on the boot disk; ``<serial>`` the disk id; ``<readonly/>`` and
  ``<shareable/>`` as attached;
- ``writeInterfaces``/``writeInterface``: NICs sorted by MAC address; a NIC
  whose profile has no network is ``;vdsmdummy;`` with link down;
  ``ua-<nicId>`` alias, ``<mac>``, ``<mtu>``;
- ``writeConsole``/``writeSerialConsole``: with the VM's serial console
  enabled, ``<console type='unix'>`` (target serial) and ``<serial
  type='unix'>`` bound at /var/run/ovirt-vmconsole-console/<vmId>.sock
  (``getSerialConsolePath``).

Everything else of a real domain (devices a container ignores) is in
tests/data/engine-container.xml.
"""

import xml.etree.ElementTree as ET

from ovirtsdk4 import types

OVIRT_VM = "http://ovirt.org/vm/1.0"
POOL = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"


def make_disk_name(prefix, index):
    """VmInfoBuildUtils.makeDiskName."""
    dev = ""
    while index > 0:
        dev = chr(ord("a") + index % 26) + dev
        index //= 26
    return prefix + (dev or "a")


def domain_xml(engine, vm_id):
    vm = engine.vms[vm_id]
    ET.register_namespace("ovirt-vm", OVIRT_VM)
    dom = ET.Element("domain", type="kvm")
    ET.SubElement(dom, "name").text = vm.name
    ET.SubElement(dom, "uuid").text = vm.id
    ET.SubElement(dom, "memory").text = str(vm.memory // 1024)
    ET.SubElement(dom, "currentMemory").text = str(vm.memory // 1024)
    sockets = vm.cpu.topology.sockets if vm.cpu else 1
    ET.SubElement(dom, "vcpu", current=str(sockets)).text = str(sockets * 16)
    devices = ET.SubElement(dom, "devices")

    atts = list(engine.attachments.get(vm_id, []))
    atts.sort(key=lambda a: (not a.bootable,
                             engine.disks[a.disk.id].alias))
    sd_index = -1
    for att in atts:
        disk = engine.disks[att.disk.id]
        sd_index += 1
        block = disk.storage_domains[0].storage.type in (
            types.StorageType.ISCSI, types.StorageType.FCP)
        el = ET.SubElement(devices, "disk", snapshot="no",
                           type="block" if block else "file", device="disk")
        ET.SubElement(el, "target", dev=make_disk_name("sd", sd_index),
                      bus="scsi")
        path = "/rhev/data-center/%s/%s/images/%s/%s" % (
            POOL, disk.storage_domains[0].id, disk.id, disk.image_id)
        ET.SubElement(el, "source", {"dev" if block else "file": path})
        ET.SubElement(el, "driver", name="qemu", type="raw",
                      error_policy="stop", cache="none",
                      io="native" if block else "threads")
        ET.SubElement(el, "alias", name="ua-%s" % disk.id)
        if att.bootable:
            ET.SubElement(el, "boot", order="1")
        ET.SubElement(el, "serial").text = disk.id
        if att.read_only:
            ET.SubElement(el, "readonly")
        if disk.shareable:
            ET.SubElement(el, "shareable")

    for nic in sorted(engine.nics.get(vm_id, []),
                      key=lambda n: n.mac.address):
        network = engine.profiles.get(nic.vnic_profile.id) \
            if nic.vnic_profile is not None else None
        el = ET.SubElement(devices, "interface", type="bridge")
        ET.SubElement(el, "model", type="virtio")
        ET.SubElement(el, "link", state="up" if network else "down")
        ET.SubElement(el, "source",
                      bridge=network if network else ";vdsmdummy;")
        ET.SubElement(el, "alias", name="ua-%s" % nic.id)
        ET.SubElement(el, "mac", address=nic.mac.address)
        ET.SubElement(el, "mtu", size="1500")

    if vm.console is not None and vm.console.enabled:
        path = "/var/run/ovirt-vmconsole-console/%s.sock" % vm.id
        for tag in ("console", "serial"):
            el = ET.SubElement(devices, tag, type="unix")
            ET.SubElement(el, "source", path=path, mode="bind")
            target = ET.SubElement(el, "target", port="0")
            if tag == "console":
                target.set("type", "serial")
                ET.SubElement(el, "alias", name="ua-console-%s" % vm.id[:8])

    md = ET.SubElement(ET.SubElement(dom, "metadata"), "{%s}vm" % OVIRT_VM)
    version = engine.clusters[vm.cluster.id].version
    ET.SubElement(md, "{%s}clusterVersion" % OVIRT_VM).text = "%d.%d" % (
        version.major, version.minor)
    custom = ET.SubElement(md, "{%s}custom" % OVIRT_VM)
    for prop in vm.custom_properties or ():
        ET.SubElement(custom, "{%s}%s" % (OVIRT_VM, prop.name)).text = \
            prop.value
    return ET.tostring(dom, encoding="unicode")

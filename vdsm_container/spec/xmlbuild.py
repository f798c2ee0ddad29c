"""The domain XML Engine would send for a container VM, written.

One job: ``vdsm-container run`` and the tests need the XML Engine generates
(ovirt-engine's ``LibvirtVmXmlBuilder``) for a container, so they go through
the same ``domxml.parse`` path as VM.create does.
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET

from vdsm_container import constants

_VM = "{%s}vm" % constants.METADATA_VM_NS
_CUSTOM = "{%s}custom" % constants.METADATA_VM_NS


def build(vm_id, name, runtime, image_path, memory_mib=256, vcpus=1,
          image_ref=None, command=None, nics=(), block=False, custom=None,
          disks=(), acpi=True, console=None):
    """Write the domain XML Engine would send for a container VM.

    ``nics`` is a sequence of ``(bridge, mac)``; ``disks`` of
    ``(path, alias, readonly)`` for volume disks; ``acpi`` writes
    ``<features><acpi/>``; ``console`` a socket path writes Engine's
    serial console (``spec.console``).  ``command`` is a list of
    words; it is quoted so that ``properties.command`` gives it back.
    """
    ET.register_namespace(constants.METADATA_VM_NS_PREFIX,
                          constants.METADATA_VM_NS)
    dom = ET.Element("domain", type="kvm")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "uuid").text = vm_id
    md = ET.SubElement(ET.SubElement(dom, "metadata"), _VM)
    ET.SubElement(md, "{%s}clusterVersion" % constants.METADATA_VM_NS).text \
        = "4.7"
    props = {constants.PROP_TYPE: runtime}
    if image_ref:
        props[constants.PROP_IMAGE] = image_ref
    if command:
        props[constants.PROP_COMMAND] = " ".join(shlex.quote(w)
                                                 for w in command)
    props.update(custom or {})
    cust = ET.SubElement(md, _CUSTOM)
    for key, value in props.items():
        ET.SubElement(cust, "{%s}%s" % (constants.METADATA_VM_NS, key)).text \
            = value
    for tag in ("memory", "currentMemory"):
        ET.SubElement(dom, tag, unit="KiB").text = str(memory_mib * 1024)
    ET.SubElement(dom, "vcpu", placement="static").text = str(vcpus)
    if acpi:
        # LibvirtVmXmlBuilder.writeFeatures: <acpi/> unless the VM's
        # previous run reported acpiEnable "false"
        ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    devices = ET.SubElement(dom, "devices")
    disk = ET.SubElement(devices, "disk", device="disk", snapshot="no",
                         type="block" if block else "file")
    ET.SubElement(disk, "source", {"dev" if block else "file": image_path})
    ET.SubElement(disk, "target", dev="sda", bus="scsi")
    ET.SubElement(disk, "boot", order="1")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "alias", name="ua-image")
    for i, (path, alias, readonly) in enumerate(disks):
        vol = ET.SubElement(devices, "disk", device="disk", snapshot="no",
                            type="file")
        ET.SubElement(vol, "source", file=path)
        ET.SubElement(vol, "target", dev="sd%s" % chr(ord("b") + i),
                      bus="scsi")
        ET.SubElement(vol, "driver", name="qemu", type="raw")
        if readonly:
            ET.SubElement(vol, "readonly")
        ET.SubElement(vol, "alias", name=alias)
    for i, (bridge, mac) in enumerate(nics):
        iface = ET.SubElement(devices, "interface", type="bridge")
        ET.SubElement(iface, "mac", address=mac)
        ET.SubElement(iface, "source", bridge=bridge)
        ET.SubElement(iface, "model", type="virtio")
        ET.SubElement(iface, "link", state="up")
        ET.SubElement(iface, "alias", name="ua-net%d" % i)
    if console:
        # LibvirtVmXmlBuilder.writeSerialConsole, writeConsole
        for tag in ("serial", "console"):
            el = ET.SubElement(devices, tag, type="unix")
            ET.SubElement(el, "source", path=console, mode="bind")
            target = ET.SubElement(el, "target", port="0")
            if tag == "console":
                target.set("type", "serial")
    return ET.tostring(dom, encoding="unicode")

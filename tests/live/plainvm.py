"""A plain VM's domain XML, as the live suite and the scale bench send it to
vdsm: qemu under libvirt, no disk and no OS (the VM lifecycle and vdsm's
handling of it are what matter).  TCG: /dev/kvm on these machines is PVM,
where KVM guests hang.  Free of pytest, so that bench/scale.py can use it.

Written by hand, not by Engine's LibvirtVmXmlBuilder (as the containers'
XML is, conftest.container_xml): Engine writes type='kvm' and a guest's
devices, which this diskless TCG guest must not have.
"""

import xml.etree.ElementTree as ET

VM_NS = "http://ovirt.org/vm/1.0"
ET.register_namespace("ovirt-vm", VM_NS)

# What a plain VM the suite made is called in libvirt: the live host's
# services script removes stale domains by this prefix.
NAME_PREFIX = "live-plain-"


def plain_vm_name(vm_id):
    return NAME_PREFIX + vm_id[:8]


def plain_vm_xml(vm_id, name=None):
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name or plain_vm_name(vm_id)
    ET.SubElement(dom, "uuid").text = vm_id
    for tag in ("memory", "currentMemory"):
        ET.SubElement(dom, tag, unit="KiB").text = str(64 * 1024)
    ET.SubElement(dom, "vcpu", current="1").text = "1"
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    devices = ET.SubElement(dom, "devices")
    balloon = ET.SubElement(devices, "memballoon", model="virtio")
    ET.SubElement(balloon, "alias", name="ua-balloon")
    md = ET.SubElement(ET.SubElement(dom, "metadata"), "{%s}vm" % VM_NS)
    ET.SubElement(md, "{%s}clusterVersion" % VM_NS).text = "4.7"
    return ET.tostring(dom, encoding="unicode")

"""Engine's domain XML -> ContainerSpec, and every bad input's vdsm error.

The XML is Engine's own (tests/engine/libvirt_xml.py: LibvirtVmXmlBuilder
over a VM as Engine's database holds it).  The bad inputs are that XML
edited by hand: Engine never writes them (a hostile or broken client, a
damaged domain), and vdsm must still refuse them with its own error."""

import functools
import xml.etree.ElementTree as ET

import pytest

from vdsm_container.spec import domxml
from vdsm_container import errors

from .engine import libvirt_xml

NS = "{http://ovirt.org/vm/1.0}"
VM_ID = "d7b5a3b4-5a5c-4a63-9f3a-8f0d3c1e2b11"
IMAGE = libvirt_xml.disk(
    disk_id="6f1c0b2a-3d4e-4f5a-8b9c-0d1e2f3a4b5c",
    image_id="9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", boot=True,
    alias="web-image")
DATA_DISK = libvirt_xml.disk(
    disk_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", block=True,
    alias="web-data")
CUSTOM = (
    ("containerType", "runc"),
    ("containerImage", "docker.io/library/nginx:1.25"),
    # no ';' in a custom property: Engine's separator
    ("containerCommand", "nginx -g 'daemon off'"),
    ("containerEnv", 'TZ=UTC GREETING="hello world"'),
    ("containerVolumes", "ua-%s:/var/lib/data" % DATA_DISK["id"]),
    ("containerNetwork", "static:192.0.2.10/24,gw=192.0.2.1|none"))


@functools.lru_cache(maxsize=None)
def engine_xml():
    """A container VM with an image disk on a file domain, a data disk on
    a block domain, two NICs (one unplugged from its link, on a jumbo
    network), CPU shares, as Engine writes its VM.create XML."""
    return libvirt_xml.vm_xml(libvirt_xml.container(
        VM_ID, "web-frontend", CUSTOM, [IMAGE, DATA_DISK], [
            libvirt_xml.nic("56:6f:3a:1b:00:01", "ovirtmgmt"),
            dict(libvirt_xml.nic("56:6f:3a:1b:00:02", "backend", "nic2"),
                 linked=False, mtu=9000)],
        sockets=2, cpuShares=2048))


def edited(edit):
    """Engine's XML with ``edit(root)`` applied: what Engine never sends."""
    root = ET.fromstring(engine_xml())
    edit(root)
    return ET.tostring(root, encoding="unicode")


def custom(root):
    return root.find("./metadata/%svm/%scustom" % (NS, NS))


def set_prop(name, value):
    def edit(root):
        el = custom(root).find(NS + name)
        if value is None:
            custom(root).remove(el)
            return
        if el is None:
            el = ET.SubElement(custom(root), NS + name)
        el.text = value
    return edit


def test_engine_xml():
    spec = domxml.parse(engine_xml())
    assert spec.vm_id == "d7b5a3b4-5a5c-4a63-9f3a-8f0d3c1e2b11"
    assert spec.name == "web-frontend"
    assert spec.runtime == "runc"
    assert spec.image_ref == "docker.io/library/nginx:1.25"
    assert spec.command == ("nginx", "-g", "daemon off")
    assert spec.env == (("TZ", "UTC"), ("GREETING", "hello world"))
    assert spec.memory_kib == 524288
    assert spec.current_memory_kib == 524288
    assert spec.vcpus == 2           # <vcpu current='2'>16</vcpu>
    assert spec.cpu_shares == 2048
    # The cdrom is skipped; the boot disk is the image.
    assert [d.target for d in spec.disks] == ["sda", "sdb"]
    assert spec.image_disk.target == "sda"
    assert spec.image_disk.path.endswith(IMAGE["imageId"])
    assert spec.disks[1].block
    assert [(n.mac, n.bridge, n.link_up, n.mtu) for n in spec.nics] == [
        ("56:6f:3a:1b:00:01", "ovirtmgmt", True, 1500),
        ("56:6f:3a:1b:00:02", "backend", False, 9000)]
    assert spec.volumes[0].mount_path == "/var/lib/data"
    assert [(c.mode, c.address, c.gateway) for c in spec.ip_configs] == [
        ("static", "192.0.2.10/24", "192.0.2.1"), ("none", None, None)]


def test_spec_round_trip():
    spec = domxml.parse(engine_xml())
    assert type(spec).from_dict(spec.to_dict()) == spec


def test_build_is_parsed_back():
    xml = domxml.build("0b0c5a1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b", "c1", "crun",
                       "/images/img.tar", memory_mib=128, vcpus=3,
                       image_ref="busybox:1.36",
                       command=["sh", "-c", "echo 'a b'"],
                       nics=[("br0", "56:6f:00:00:00:01")])
    spec = domxml.parse(xml)
    assert spec.runtime == "crun"
    assert spec.memory_kib == 128 * 1024
    assert spec.vcpus == 3
    assert spec.command == ("sh", "-c", "echo 'a b'")
    assert spec.image_disk.path == "/images/img.tar"
    assert spec.nics[0].bridge == "br0"
    assert domxml.is_container(xml)


def test_is_container():
    assert domxml.is_container(engine_xml())
    assert not domxml.is_container(edited(set_prop("containerType", None)))
    assert not domxml.is_container("not xml")


def drop(path):
    def edit(root):
        parent_path, _, tag = path.rpartition("/")
        parent = root.find(parent_path) if parent_path else root
        for el in parent.findall(tag):
            parent.remove(el)
    return edit


def set_text(path, text):
    def edit(root):
        root.find(path).text = text
    return edit


def set_attr(path, attr, value):
    def edit(root):
        root.find(path).set(attr, value)
    return edit


BAD = [
    # (what, xml or edit, vdsm error class, field named in the error)
    ("not XML", "<domain><name>", errors.InvalidParameter, "xml"),
    ("empty", "", errors.MissingParameter, "xml"),
    ("not a domain", "<vm/>", errors.InvalidParameter, "xml"),
    ("no uuid", drop("uuid"), errors.MissingParameter, "uuid"),
    ("bad uuid", set_text("uuid", "1234"), errors.InvalidParameter, "uuid"),
    ("not a container", set_prop("containerType", None),
     errors.MissingParameter, "containerType"),
    ("unknown runtime", set_prop("containerType", "docker"),
     errors.InvalidParameter, "containerType"),
    ("no image disk", drop("devices/disk"), errors.MissingParameter, "disk"),
    # raw and qcow2 are served (qcow2: host/qcow.py); other formats not.
    ("vmdk image", set_attr("devices/disk[2]/driver", "type", "vmdk"),
     errors.UnsupportedImageFormat, None),
    ("bad MAC", set_attr("devices/interface/mac", "address", "56:6f:zz"),
     errors.InvalidParameter, "interface/mac"),
    ("multicast MAC", set_attr("devices/interface/mac", "address",
                               "01:00:5e:00:00:01"),
     errors.InvalidParameter, "interface/mac"),
    ("no bridge", drop("devices/interface/source"), errors.MissingParameter,
     "interface/source"),
    ("memory 0", set_text("memory", "0"), errors.InvalidParameter, "memory"),
    ("memory not a number", set_text("memory", "lots"),
     errors.InvalidParameter, "memory"),
    ("no memory", drop("memory"), errors.MissingParameter, "memory"),
    ("current above memory", set_text("currentMemory", "9999999"),
     errors.InvalidParameter, "currentMemory"),
    ("vcpu 0", set_attr("vcpu", "current", "0"), errors.InvalidParameter,
     "vcpu"),
    ("bad command", set_prop("containerCommand", "sh -c 'unclosed"),
     errors.InvalidParameter, "containerCommand"),
    ("bad env", set_prop("containerEnv", "1BAD=x"), errors.InvalidParameter,
     "containerEnv"),
    ("volume of unknown disk", set_prop("containerVolumes", "nope:/data"),
     errors.InvalidParameter, "containerVolumes"),
    ("relative volume path", set_prop("containerVolumes",
                                      "ua-1a2b3c4d-5e6f-4a7b-8c9d-"
                                      "0e1f2a3b4c5d:data"),
     errors.InvalidParameter, "containerVolumes"),
    ("volume on the image disk", set_prop("containerVolumes", "sda:/data"),
     errors.InvalidParameter, "containerVolumes"),
    ("bad network", set_prop("containerNetwork", "static:300.1.1.1/24"),
     errors.InvalidParameter, "containerNetwork"),
    ("network count", set_prop("containerNetwork", "static:192.0.2.1/24"),
     errors.InvalidParameter, "containerNetwork"),
    ("bad image ref", set_prop("containerImage", "two words"),
     errors.InvalidParameter, "containerImage"),
    ("network interface", set_attr("devices/interface", "type", "network"),
     errors.InvalidParameter, "interface"),
]


@pytest.mark.parametrize("xml,cls,field", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input(xml, cls, field):
    if callable(xml):
        xml = edited(xml)
    with pytest.raises(cls) as e:
        domxml.parse(xml)
    info = e.value.info()
    assert info["code"] == cls.code
    assert info["message"].startswith(cls.message)
    if field is not None:
        assert e.value.context["field"] == field

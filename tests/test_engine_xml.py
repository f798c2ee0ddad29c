"""What the plugin reads in the VM.create XML Engine's own code writes
(LibvirtVmXmlBuilder, tests/engine/libvirt_xml.py), for every disk kind it
serves (the shareable image disk, volumes on a file and on a block domain),
NICs, the serial console, CPU and disk QoS, under each runtime; and the
custom properties Engine refuses or drops before any XML is written."""

import xml.etree.ElementTree as ET

import pytest

from vdsm_container.spec import domxml

from .engine import java, libvirt_xml

NS = "{http://ovirt.org/vm/1.0}"
IMAGE = libvirt_xml.disk(boot=True, read_only=True, shareable=True,
                         alias="zz-busybox")
DATA = libvirt_xml.disk(alias="data")
LOGS = libvirt_xml.disk(alias="logs", block=True, iotune={
    "maxReadThroughput": 10, "maxWriteIops": 100})


def _vm(runtime, **more):
    custom = [("containerType", runtime),
              ("containerImage", "docker.io/library/busybox:1.36"),
              ("containerCommand", "sleep 3600"),
              ("containerVolumes", "%s:/var/lib/data,%s:/var/log/app"
               % (DATA["id"], LOGS["id"])),
              ("containerNetwork", "dhcp|none")]
    return libvirt_xml.container(
        None, "web-" + runtime, custom, [IMAGE, DATA, LOGS],
        [libvirt_xml.nic("56:6f:3a:1b:00:01", "ovirtmgmt"),
         libvirt_xml.nic("56:6f:3a:1b:00:02", None, "nic2")],
        serial_console=True, sockets=2, cpuShares=1024, **more)


@pytest.mark.parametrize("runtime", ["runc", "crun", "runsc", "rkt"])
def test_engine_xml_of_each_runtime(runtime):
    vm = _vm(runtime)
    xml = libvirt_xml.vm_xml(vm)
    spec = domxml.parse(xml)
    # Engine's drive metadata: the image disk shareable, the others
    # exclusive (no <shared>); "transient" would be a snapshot's volume.
    shared = {d.get("name"): d.findtext(NS + "shared")
              for d in ET.fromstring(xml).iter(NS + "device")
              if d.get("devtype") == "disk"}
    assert shared.pop("sda") == "shared"
    assert list(shared.values()) == [None, None]
    assert spec.runtime == runtime
    assert spec.vm_id == vm["id"]
    # The image disk: Engine's boot disk, read-only and shareable.
    assert spec.image_disk.serial == IMAGE["id"]
    assert spec.image_disk.readonly and not spec.image_disk.block
    assert spec.image_disk.path.endswith(
        "/%s/images/%s/%s" % (IMAGE["domainId"], IMAGE["id"],
                              IMAGE["imageId"]))
    volumes = {path: disk for disk, path in spec.volume_disks}
    assert volumes["/var/lib/data"].serial == DATA["id"]
    assert not volumes["/var/lib/data"].block
    logs = volumes["/var/log/app"]
    assert logs.block and logs.path.startswith(
        "/rhev/data-center/mnt/blockSD/%s/images/%s/" % (LOGS["domainId"],
                                                         LOGS["id"]))
    # Disk QoS: Engine's StorageQos in MB/s, written in bytes/s.
    iotune = dict(logs.iotune)
    assert iotune["read_bytes_sec"] == 10 * 2 ** 20
    assert iotune["write_iops_sec"] == 100
    assert spec.cpu_shares == 1024
    assert spec.vcpus == 2
    assert [(n.mac, n.bridge, n.link_up) for n in spec.nics] == [
        ("56:6f:3a:1b:00:01", "ovirtmgmt", True),
        ("56:6f:3a:1b:00:02", ";vdsmdummy;", False)]
    assert [c.mode for c in spec.ip_configs] == ["dhcp", "none"]
    assert spec.console == \
        "/var/run/ovirt-vmconsole-console/%s.sock" % vm["id"]


def test_engine_refuses_a_value_the_properties_refuse():
    """VmPropertiesUtils against the engine-config tool's regexes: Engine
    refuses the VM (AddVm/UpdateVm) before any VM.create."""
    vm = _vm("docker")
    with pytest.raises(libvirt_xml.Refused):
        libvirt_xml.vm_xml(vm)


def test_without_the_engine_config_step_engine_refuses_every_property():
    """The shipped UserDefinedVMProperties is '' (0000_config.sql): Engine
    knows no container property, so it refuses the VM; the engine-config
    step (contrib/engine-config) is what makes them known."""
    jvm = java.jvm()
    libvirt_xml.configure(jvm)
    jvm.call("config", name="UserDefinedVMProperties", value="",
             version="4.7")
    try:
        with pytest.raises(libvirt_xml.Refused) as e:
            libvirt_xml.vm_xml(_vm("runc"))
        assert "containerType" in str(e.value)
    finally:
        jvm.call("config", name="UserDefinedVMProperties",
                 value=libvirt_xml.user_defined_vm_properties(),
                 version="4.7")

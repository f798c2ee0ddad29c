"""The domain XML Engine sends in VM.create, written by Engine's own code.

Engine's LibvirtVmXmlBuilder.buildCreateVm() (ovirt-engine master
0111fc63, run in the session's JVM by tests/engine/java.py; vdsmc.XmlBuild
says how it is called) over a VM entity built as Engine's database holds
it: vm_static with its custom-properties string, its disks (DiskImage +
DiskVmElement, VirtIO-SCSI) and NICs (with their vNIC profiles and
networks) and their vm_device rows.  The custom properties are first
validated by Engine's VmPropertiesUtils against the UserDefinedVMProperties
value the project's engine-config tool writes
(contrib/engine-config/merge_properties.py over the shipped empty value):
a property Engine would refuse fails here as it would in Engine.

``vm_xml`` builds from a description (see vdsmc.XmlBuild); ``domain_xml``
from a VM of the fake Engine (tests/engine/fake_engine.py), as
ovirt-container created it.
"""

import importlib.util
import os
import uuid

from . import java

HERE = os.path.dirname(os.path.abspath(__file__))
MERGE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "contrib",
                     "engine-config", "merge_properties.py")
POOL = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"
# The cluster levels engine-config lists for UserDefinedVMProperties in a
# fresh Engine (0000_config.sql: every level up to 4.8).
LEVELS = ("4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8")

_configured = set()


def _merge_properties():
    spec = importlib.util.spec_from_file_location("merge_properties", MERGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def user_defined_vm_properties():
    """What contrib/engine-config/container-properties.sh writes at each
    level of a fresh Engine (whose shipped value is '')."""
    return _merge_properties().merge("")


def configure(jvm):
    """engine-config -s UserDefinedVMProperties=... --cver=each level, once
    per JVM (Engine reads it at start: VmPropertiesUtils.init)."""
    if id(jvm) in _configured:
        return
    value = user_defined_vm_properties()
    for level in LEVELS:
        jvm.call("config", name="UserDefinedVMProperties", value=value,
                 version=level)
    _configured.add(id(jvm))


class Refused(AssertionError):
    """Engine's VmPropertiesUtils refused the VM's custom properties."""


def vm_xml(description):
    """Engine's VM.create XML for ``description`` (vdsmc.XmlBuild's
    fields); raises Refused with Engine's validation errors."""
    jvm = java.jvm()
    configure(jvm)
    result, _ = jvm.call("build-xml", vm=description)
    if result["errors"]:
        raise Refused(result["errors"])
    return result["xml"]


def custom_string(props):
    """vm_static's custom-properties string: ``name=value;...`` (the REST
    layer joins a VM's custom properties so, CustomPropertiesParser)."""
    return ";".join("%s=%s" % (k, v) for k, v in props)


def container(vm_id=None, name="ctr", custom=(), disks=(), nics=(),
              serial_console=False, **more):
    """A description of a container VM: ``custom`` (name, value) pairs,
    ``disks`` and ``nics`` as vdsmc.XmlBuild takes them."""
    d = {"id": vm_id or str(uuid.uuid4()), "name": name, "memMb": 512,
         "sockets": 1, "clusterVersion": "4.7", "poolId": POOL,
         "customProperties": custom_string(custom), "disks": list(disks),
         "nics": list(nics), "serialConsole": serial_console}
    d.update(more)
    return d


def disk(disk_id=None, image_id=None, domain_id=None, block=False,
         boot=False, read_only=False, shareable=False, alias="disk",
         iotune=None):
    """A disk attachment as vdsmc.XmlBuild takes it; ``iotune`` is Engine's
    StorageQos (maxThroughput... in MB/s, maxIops...)."""
    return {"id": disk_id or str(uuid.uuid4()),
            "imageId": image_id or str(uuid.uuid4()),
            "domainId": domain_id or str(uuid.uuid4()), "block": block,
            "boot": boot, "readOnly": read_only, "shareable": shareable,
            "alias": alias, "iotune": iotune}


def nic(mac, network="ovirtmgmt", name="nic1", nic_id=None):
    return {"id": nic_id or str(uuid.uuid4()), "mac": mac,
            "network": network, "name": name}


def domain_xml(engine, vm_id):
    """Engine's XML for a VM of the fake Engine, from what ovirt-container
    asked Engine to store (the SDK's types)."""
    from ovirtsdk4 import types     # not on the live suite's python3
    vm = engine.vms[vm_id]
    disks = []
    for att in engine.attachments.get(vm_id, []):
        d = engine.disks[att.disk.id]
        domain = d.storage_domains[0]
        disks.append(disk(
            disk_id=d.id, image_id=d.image_id, domain_id=domain.id,
            block=domain.storage.type in (types.StorageType.ISCSI,
                                          types.StorageType.FCP),
            boot=bool(att.bootable), read_only=bool(att.read_only),
            shareable=bool(d.shareable), alias=d.alias))
    nics = []
    for n in engine.nics.get(vm_id, []):
        network = engine.profiles.get(n.vnic_profile.id) \
            if n.vnic_profile is not None else None
        nics.append(nic(n.mac.address, network, n.name, n.id))
    version = engine.clusters[vm.cluster.id].version
    custom = [(p.name, p.value) for p in vm.custom_properties or ()]
    return vm_xml(container(
        vm.id, vm.name, custom, disks, nics,
        serial_console=vm.console is not None and bool(vm.console.enabled),
        memMb=vm.memory // 2 ** 20 if vm.memory else 512,
        sockets=vm.cpu.topology.sockets if vm.cpu else 1,
        clusterVersion="%d.%d" % (version.major, version.minor)))

"""Engine's domain XML in, a validated ``ContainerSpec`` out.

VM.create carries ``vmParams['xml']``, the libvirt domain XML Engine
generated.  We read the same elements vdsm reads for a VM:

- custom properties from ``<metadata><ovirt-vm:vm><ovirt-vm:custom>``
  (lib/vdsm/virt/metadata.py, ``Descriptor._load``: each child element of
  ``custom`` is one property, its tag the name, its text the value);
- ``<uuid>``, ``<name>``, ``<memory>``, ``<currentMemory>``,
  ``<vcpu>`` and ``<cputune>`` as lib/vdsm/virt/domain_descriptor.py does;
- ``<features><acpi/>``, as ``DomainDescriptor.acpi_enabled`` does: vdsm
  reports it as ``acpiEnable`` and Engine needs it to shut a VM down
  gracefully (``ShutdownVmCommand.canShutdownVm``);
- ``<devices><disk device='disk'>`` and ``<interface type='bridge'>``;
- ``<console type='unix'>``/``<serial type='unix'>``: ``spec.console``.

``xmlbuild.build`` writes the same shape back, for ``vdsm-container run``;
it is re-exported here for the callers that know it by this name.
"""

from __future__ import annotations

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.spec import console
from vdsm_container.spec import imagedisk
from vdsm_container.spec import properties
from vdsm_container.spec import runonce
from vdsm_container.spec.model import ContainerSpec
from vdsm_container.spec.model import Disk
from vdsm_container.spec.model import Nic
from vdsm_container.spec.xmlbuild import build  # noqa: F401 (re-export)

_VM = "{%s}vm" % constants.METADATA_VM_NS
_CUSTOM = "{%s}custom" % constants.METADATA_VM_NS
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
# Bounds of what the domain XML may ask, each from the layer that would
# otherwise refuse it with its own text, or take it as "no limit":
# memory: docker's minimum (daemon/daemon_unix.go linuxMinMemory), below
# which a container can't start; vCPUs: the kernel's KVM_MAX_VCPUS on x86;
# cputune: libvirt's ranges (src/conf/domain_validate.c, and the kernel's
# cgroup v1 cpu.shares bounds MIN_SHARES/MAX_SHARES); iotune: libvirt's
# QEMU_BLOCK_IOTUNE_MAX (src/qemu/qemu_driver.c); blkiotune weight: libvirt's
# [10, 1000]; MTU: what a Linux veth takes.  Bounds from the host (memory,
# vCPUs) are checked where the host is known: ``spec.hostbounds``.
MEMORY_MIN_KIB = 6 * 1024
VCPUS_MAX = 4096
SHARES = (2, 262144)
QUOTA = (1000, 17592186044415)
PERIOD = (1000, 1000000)
IOTUNE_MAX = 10 ** 15
BLKIO_WEIGHT = (10, 1000)
MTU = (68, 65535)

_UNITS = {"b": 1, "bytes": 1, "kib": 1024, "k": 1024, "mib": 1024 ** 2,
          "m": 1024 ** 2, "gib": 1024 ** 3, "g": 1024 ** 3,
          "tib": 1024 ** 4, "t": 1024 ** 4, "kb": 1000, "mb": 1000 ** 2,
          "gb": 1000 ** 3}


def _root(xml):
    if not isinstance(xml, (str, bytes)) or not xml.strip():
        raise errors.missing("xml", "VM.create needs vmParams['xml']")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise errors.invalid("xml", "<not shown>", "not XML: %s" % e) from e
    if root.tag != "domain":
        raise errors.invalid("xml", root.tag, "root element must be <domain>")
    return root


def custom_properties(root):
    """The ``<ovirt-vm:custom>`` properties, as a dict of strings."""
    md = root.find("./metadata/" + _VM)
    custom = md.find(_CUSTOM) if md is not None else None
    if custom is None:
        return {}
    result = {}
    for child in custom:
        name = child.tag.split("}", 1)[-1]
        result[name] = (child.text or "").strip()
    return result


def is_container(xml):
    """True when the domain XML asks for a container (``containerType``).

    Cheap enough to call for every VM.create: vdsm's clientIF uses it to
    pick ``Container`` over ``Vm``.  Malformed XML is not a container; vdsm's
    own Vm code reports that error as it always did.
    """
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, TypeError, ValueError):
        return False
    return constants.PROP_TYPE in custom_properties(root)


def _text(root, path, field, required=True):
    el = root.find(path)
    if el is None or not (el.text or "").strip():
        if required:
            raise errors.missing(field, "<%s> is missing" % path)
        return None
    return el.text.strip()


def _kib(root, tag, required):
    el = root.find("./" + tag)
    if el is None:
        if required:
            raise errors.missing(tag, "<%s> is missing" % tag)
        return None
    unit = el.get("unit", "KiB").lower()
    try:
        value = int((el.text or "").strip())
    except ValueError:
        raise errors.invalid(tag, el.text, "not an integer") from None
    if unit not in _UNITS:
        raise errors.invalid(tag, unit, "unknown unit")
    kib = value * _UNITS[unit] // 1024
    if kib <= 0:
        raise errors.invalid(tag, el.text, "must be positive")
    if tag == "memory" and kib < MEMORY_MIN_KIB:
        raise errors.invalid(tag, el.text, "must be at least %d MiB"
                             % (MEMORY_MIN_KIB // 1024))
    return kib


def _int(el, attr_or_text, field, minimum=1, maximum=None):
    raw = el.get(attr_or_text) if attr_or_text else el.text
    try:
        value = int((raw or "").strip())
    except ValueError:
        raise errors.invalid(field, raw, "not an integer") from None
    if value < minimum:
        raise errors.invalid(field, raw, "must be at least %d" % minimum)
    if maximum is not None and value > maximum:
        raise errors.invalid(field, raw, "must be at most %d" % maximum)
    return value


def _vcpus(root):
    el = root.find("./vcpu")
    if el is None:
        return 1
    # Engine sets <vcpu current='N'>MAX</vcpu> for CPU hotplug: N are online.
    most = _int(el, None, "vcpu", 1, VCPUS_MAX)
    if el.get("current") is not None:
        current = _int(el, "current", "vcpu", 1, VCPUS_MAX)
        if current > most:
            # libvirt's virDomainVcpuParse: "maxvcpus must not be less
            # than current vcpus".
            raise errors.invalid("vcpu", current, "current vCPUs above the "
                                 "maximum (%d)" % most)
        return current
    return most


def _cputune(root):
    tune = root.find("./cputune")
    if tune is None:
        return None, None, None
    values = []
    for tag, (minimum, maximum) in (("shares", SHARES), ("quota", QUOTA),
                                    ("period", PERIOD)):
        el = tune.find(tag)
        if el is None:
            values.append(None)
        elif tag == "quota" and (el.text or "").strip() == "-1":
            values.append(None)   # libvirt: -1 means unlimited
        else:
            values.append(_int(el, None, "cputune/" + tag, minimum,
                               maximum))
    return tuple(values)


IOTUNE_KEYS = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
               "total_iops_sec", "read_iops_sec", "write_iops_sec")


def _iotune(el):
    tune = el.find("iotune")
    if tune is None:
        return ()
    values = []
    for key in IOTUNE_KEYS:
        child = tune.find(key)
        if child is not None:
            value = _int(child, None, "disk/iotune/" + key, 0, IOTUNE_MAX)
            if value:
                values.append((key, value))
    return tuple(values)


def _blkio_weight(root):
    el = root.find("./blkiotune/weight")
    if el is None:
        return None
    return _int(el, None, "blkiotune/weight", *BLKIO_WEIGHT)


# lib/vdsm/virt/utils.py isVdsmImage: a drive is a storage-domain volume when
# its metadata names all four ids.
_VOLUME_IDS = ("domainID", "poolID", "imageID", "volumeID")


def _image_ids(root):
    """target name -> imageID, from each disk's ``<ovirt-vm:device>``
    metadata (metadata.py ``Descriptor``), for the volumes that are vdsm
    images: vmstats.py ``disk_info`` reports imageID for those, and Engine
    drops a disk entry without it (buildVmDiskStatistics)."""
    ns = "{%s}" % constants.METADATA_VM_NS
    ids = {}
    for dev in root.findall("./metadata/%s/%sdevice" % (_VM, ns)):
        if dev.get("devtype") != "disk" or not dev.get("name"):
            continue
        found = {k: (dev.findtext(ns + k) or "").strip() for k in _VOLUME_IDS}
        if all(found.values()):
            ids[dev.get("name")] = found["imageID"]
    return ids


def _disks(root):
    disks = []
    image_ids = _image_ids(root)
    for el in root.findall("./devices/disk"):
        if el.get("device", "disk") not in ("disk", "lun"):
            continue  # cdrom, floppy: nothing a container can use
        src = el.find("source")
        path = None
        block = False
        if src is not None:
            path = src.get("file") or src.get("dev")
            block = src.get("dev") is not None
        target = el.find("target")
        target_dev = target.get("dev") if target is not None else None
        if not path:
            raise errors.invalid("disk", target_dev,
                                 "disk has no <source file> or <source dev>")
        if not target_dev:
            raise errors.missing("disk/target", "disk %s has no <target dev>"
                                 % path)
        boot = el.find("boot")
        alias = el.find("alias")
        serial = el.find("serial")
        driver = el.find("driver")
        disks.append(Disk(
            path=path,
            block=block or el.get("type") == "block",
            target=target_dev,
            alias=alias.get("name") if alias is not None else None,
            serial=((serial.text or "").strip() or None)
            if serial is not None else None,
            readonly=el.find("readonly") is not None,
            boot_order=_int(boot, "order", "disk/boot")
            if boot is not None else None,
            fmt=driver.get("type", "raw") if driver is not None else "raw",
            iotune=_iotune(el),
            image_id=image_ids.get(target_dev),
        ))
    return tuple(disks)


def _nics(root):
    nics = []
    for el in root.findall("./devices/interface"):
        kind = el.get("type")
        mac_el = el.find("mac")
        mac = mac_el.get("address") if mac_el is not None else None
        if kind != "bridge":
            raise errors.invalid("interface", kind,
                                 "only <interface type='bridge'> is "
                                 "supported for containers")
        if not mac or not _MAC.match(mac):
            raise errors.invalid("interface/mac", mac, "bad MAC address")
        if int(mac.split(":")[0], 16) & 1:
            raise errors.invalid("interface/mac", mac,
                                 "multicast MAC address")
        src = el.find("source")
        bridge = src.get("bridge") if src is not None else None
        if not bridge:
            raise errors.missing("interface/source",
                                 "interface %s has no <source bridge>" % mac)
        link = el.find("link")
        mtu = el.find("mtu")
        alias = el.find("alias")
        nics.append(Nic(
            # as Engine sent it: Engine matches NIC stats to its NICs by
            # the exact string (VmAnalyzer.updateInterfaceStatistics)
            mac=mac,
            bridge=bridge,
            link_up=(link.get("state", "up") != "down")
            if link is not None else True,
            mtu=_int(mtu, "size", "interface/mtu", *MTU)
            if mtu is not None else None,
            alias=alias.get("name") if alias is not None else None,
        ))
    return tuple(nics)


def _check_volumes(volumes, disks, image):
    known = {n for d in disks if d is not image for n in d.names()}
    for v in volumes:
        if v.disk not in known:
            raise errors.invalid(constants.PROP_VOLUMES, v.disk,
                                 "no such disk (other than the image); "
                                 "known: %s; %s" % (", ".join(sorted(
                                     known)), imagedisk.COPIED))


def parse(xml):
    """Parse Engine's domain XML into a ``ContainerSpec``.

    Raises a vdsm error (MissingParameter 11, InvalidParameter 91,
    UnsupportedImageFormat 17) that names the offending field.
    """
    root = _root(xml)
    vm_id = _text(root, "./uuid", "uuid")
    try:
        vm_id = str(uuidlib.UUID(vm_id))
    except ValueError:
        raise errors.invalid("uuid", vm_id, "not a UUID") from None
    name = _text(root, "./name", "name", required=False) or vm_id

    props = custom_properties(root)
    if constants.PROP_TYPE not in props:
        raise errors.missing(constants.PROP_TYPE,
                             "not a container VM: no containerType "
                             "custom property")
    runtime = properties.runtime(props[constants.PROP_TYPE])

    memory = _kib(root, "memory", required=True)
    current = _kib(root, "currentMemory", required=False) or memory
    if current > memory:
        raise errors.invalid("currentMemory", current,
                             "larger than <memory> (%d KiB)" % memory)
    shares, quota, period = _cputune(root)

    disks = _disks(root)
    nics = _nics(root)

    def prop(key, parser, *args):
        value = props.get(key)
        return parser(value, *args) if value else None

    volumes = prop(constants.PROP_VOLUMES, properties.volumes) or ()
    image = imagedisk.choose(vm_id, disks, props.get(constants.PROP_IMAGE))
    _check_volumes(volumes, disks, image)
    return ContainerSpec(
        vm_id=vm_id,
        name=name,
        runtime=runtime,
        image_disk=image,
        image_ref=prop(constants.PROP_IMAGE, properties.image_ref),
        command=prop(constants.PROP_COMMAND, properties.command),
        env=prop(constants.PROP_ENV, properties.env) or (),
        memory_kib=memory,
        current_memory_kib=current,
        vcpus=_vcpus(root),
        cpu_shares=shares,
        cpu_quota=quota,
        cpu_period=period,
        blkio_weight=_blkio_weight(root),
        userns=prop(constants.PROP_USERNS, properties.userns) or False,
        disk_size_mib=prop(constants.PROP_DISK_SIZE, properties.disk_size),
        disks=disks,
        nics=nics,
        volumes=volumes,
        ip_configs=properties.network(props.get(constants.PROP_NETWORK, ""),
                                      len(nics)),
        custom=tuple(sorted(props.items())),
        acpi=root.find("./features/acpi") is not None,
        console=console.socket_path(root.find("devices")),
        launch_paused=runonce.launch_paused(root),
    )

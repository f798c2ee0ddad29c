"""The validated, immutable description of one container VM.

Everything downstream (image preparation, the OCI config, the runtime
driver, stats) reads a ``ContainerSpec`` and nothing else, so the domain XML
is parsed and checked exactly once, in ``domxml.parse``.  A spec is plain
data: it can be written to the state file and read back by a new process
(``to_dict``/``from_dict``).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Disk:
    """One ``<disk device='disk'>`` of the domain.

    ``path`` is the volume path vdsm prepared (a file under
    /rhev/data-center/mnt for file domains, a block device for block domains).
    """

    path: str
    block: bool
    target: str
    alias: Optional[str] = None
    serial: Optional[str] = None
    readonly: bool = False
    boot_order: Optional[int] = None
    fmt: str = "raw"
    # <iotune>: libvirt's names (total_bytes_sec, read_iops_sec, ...)
    iotune: Tuple[Tuple[str, int], ...] = ()
    # the storage image it is a volume of (metadata imageID), or None
    image_id: Optional[str] = None

    def names(self):
        """The keys ``containerVolumes`` may use for this disk."""
        return tuple(n for n in (self.alias, self.serial, self.target) if n)


@dataclasses.dataclass(frozen=True)
class Nic:
    """One ``<interface type='bridge'>``: joins ``bridge`` with ``mac``."""

    mac: str
    bridge: str
    link_up: bool = True
    mtu: Optional[int] = None
    alias: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Volume:
    """A disk mounted into the container: ``containerVolumes`` entry."""

    disk: str           # the disk's alias, serial or target name
    mount_path: str     # absolute path inside the container


@dataclasses.dataclass(frozen=True)
class IPConfig:
    """How one NIC gets its address: ``containerNetwork``."""

    mode: str                       # "dhcp", "static" or "none"
    address: Optional[str] = None   # "ADDR/PREFIX" when static
    gateway: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """A container VM, as Engine described it in VM.create."""

    vm_id: str
    name: str
    runtime: str
    image_disk: Disk
    image_ref: Optional[str] = None
    command: Optional[Tuple[str, ...]] = None
    env: Tuple[Tuple[str, str], ...] = ()
    memory_kib: int = 0
    current_memory_kib: int = 0
    vcpus: int = 1
    cpu_shares: Optional[int] = None
    cpu_quota: Optional[int] = None
    cpu_period: Optional[int] = None
    blkio_weight: Optional[int] = None
    userns: bool = False
    # containerDiskSize: the writable layer's limit; None: the host default.
    disk_size_mib: Optional[int] = None
    disks: Tuple[Disk, ...] = ()
    nics: Tuple[Nic, ...] = ()
    volumes: Tuple[Volume, ...] = ()
    ip_configs: Tuple[IPConfig, ...] = ()
    custom: Tuple[Tuple[str, str], ...] = ()
    # <features><acpi/>: reported as acpiEnable (vdsm's Vm.acpi_enabled)
    acpi: bool = False
    # Engine's unix console socket (``spec.console``), or None: no console
    console: Optional[str] = None
    # Run Once "start paused" (``spec.runonce``)
    launch_paused: bool = False

    @property
    def volume_disks(self):
        """The non-image disks, paired with their mount paths."""
        by_name = {}
        for disk in self.disks:
            for n in disk.names():
                by_name.setdefault(n, disk)
        return tuple((by_name[v.disk], v.mount_path) for v in self.volumes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["image_disk"] = _disk(d["image_disk"])
        d["disks"] = tuple(_disk(x) for x in d.get("disks", ()))
        d["nics"] = tuple(Nic(**x) for x in d.get("nics", ()))
        d["volumes"] = tuple(Volume(**x) for x in d.get("volumes", ()))
        d["ip_configs"] = tuple(IPConfig(**x) for x in d.get("ip_configs", ()))
        d["env"] = tuple(tuple(x) for x in d.get("env", ()))
        d["custom"] = tuple(tuple(x) for x in d.get("custom", ()))
        if d.get("command") is not None:
            d["command"] = tuple(d["command"])
        return cls(**d)


def _disk(d):
    d = dict(d)
    d["iotune"] = tuple(tuple(x) for x in d.get("iotune", ()))
    return Disk(**d)

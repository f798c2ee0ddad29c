"""Block I/O tuning: ``<blkiotune>`` and disks' ``<iotune>`` as cgroup
limits (the OCI spec's ``linux.resources.blockIO``).

cgroups throttle per block device, so each disk's limits go to the device
the container's I/O for that disk really reaches: for a volume, the device
it is mounted from (its loop device on a file domain, the LV on a block
domain); for the image disk, the device holding the container's writable
layer.  libvirt's ``total_*`` limits have no cgroup counterpart: they limit
reads and writes each.  The proportional ``weight`` needs an I/O scheduler
that supports it (BFQ/CFQ); where the host has none, it is left out and a
warning says so, rather than failing the start.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("vdsm_container.blockio")

_THROTTLES = {
    "read_bytes_sec": ("throttleReadBpsDevice",),
    "write_bytes_sec": ("throttleWriteBpsDevice",),
    "total_bytes_sec": ("throttleReadBpsDevice", "throttleWriteBpsDevice"),
    "read_iops_sec": ("throttleReadIOPSDevice",),
    "write_iops_sec": ("throttleWriteIOPSDevice",),
    "total_iops_sec": ("throttleReadIOPSDevice", "throttleWriteIOPSDevice"),
}


def device_of(path):
    """(major, minor) of the block device holding ``path``, or None."""
    dev = os.stat(path).st_dev
    if os.major(dev) == 0:
        return None     # no block device (tmpfs, btrfs subvolume...)
    return os.major(dev), os.minor(dev)


def weight_supported(hierarchy):
    if hierarchy.version == 2:
        # The io controller is available (cgroup.controllers); where
        # systemd is PID 1 it is enabled in a subtree only once a unit asks
        # for it, as the runtime does for the container's scope.
        try:
            with open(os.path.join(hierarchy.root,
                                   "cgroup.controllers")) as f:
                return "io" in f.read().split()
        except OSError:
            return False
    blkio = os.path.join(hierarchy.root, "blkio")
    return any(os.path.exists(os.path.join(blkio, n))
               for n in ("blkio.weight", "blkio.bfq.weight"))


def resources(spec, bundle, volume_targets, hierarchy):
    """``blockIO`` for the OCI config, or None when nothing is asked.

    ``volume_targets`` maps a volume disk's path to where it is mounted.
    """
    result = {}
    if spec.blkio_weight:
        if weight_supported(hierarchy):
            result["weight"] = min(1000, spec.blkio_weight)
        else:
            log.warning("Container %s: <blkiotune><weight> ignored: no I/O "
                        "scheduler with weights on this host", spec.vm_id)
    targets = [(spec.image_disk, bundle.upper)]
    targets += [(disk, volume_targets[disk.path])
                for disk, _ in spec.volume_disks]
    for disk, path in targets:
        if not disk.iotune:
            continue
        dev = device_of(path)
        if dev is None:
            log.warning("Container %s: <iotune> of %s ignored: %s is on no "
                        "block device", spec.vm_id, disk.target, path)
            continue
        for key, rate in disk.iotune:
            for field in _THROTTLES[key]:
                entries = result.setdefault(field, [])
                entries[:] = [e for e in entries
                              if (e["major"], e["minor"]) != dev]
                entries.append({"major": dev[0], "minor": dev[1],
                                "rate": rate})
    return result or None


#: The OCI spec's per-device throttles and their keys in cgroup v2's io.max.
_IO_MAX_KEYS = (("throttleReadBpsDevice", "rbps"),
                ("throttleWriteBpsDevice", "wbps"),
                ("throttleReadIOPSDevice", "riops"),
                ("throttleWriteIOPSDevice", "wiops"))


def take_device_limits(resources):
    """Remove the per-device throttles from an OCI config's ``resources``
    and return them as cgroup v2 ``io.max`` lines ("MAJ:MIN rbps=N ..."),
    one per device, for a driver that writes them itself."""
    blkio = resources.get("blockIO") or {}
    per_device = {}
    for field, key in _IO_MAX_KEYS:
        for entry in blkio.pop(field, ()):
            dev = "%d:%d" % (entry["major"], entry["minor"])
            per_device.setdefault(dev, []).append(
                "%s=%d" % (key, entry["rate"]))
    if not blkio:
        resources.pop("blockIO", None)
    return ["%s %s" % (dev, " ".join(limits))
            for dev, limits in sorted(per_device.items())]

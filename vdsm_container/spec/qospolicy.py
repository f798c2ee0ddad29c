"""``VM.updateVmPolicy`` on a container: Engine's CPU and storage QoS.

Engine sends it after every start and on each QoS edit (VmSlaPolicyCommand
-> vdsbroker UpdateVmPolicyVDSCommand.build): ``vcpuLimit`` (a percentage,
as a string) and ``ioTune``, one entry per disk with its ``domainID``,
``poolID``, ``imageID``, ``volumeID`` and the StorageQos limits as
``maximum`` and ``guaranteed`` (the same map: "StorageQos has only one
limit value").  The checks mirror lib/vdsm/virt/vm.py
``Vm.updateVmPolicy``: an empty policy is MissParam, an entry that already
carries ``path`` or ``name`` is skipped, a disk is found by its UUIDs
(``findDriveByUUIDs``), unknown keys are logged and ignored.  vdsm records
the policy for MOM to apply; here the limits go to the container's cgroup
(``host.qos``) and are read back (the verb: ``verbs.update_vm_policy``).
What can't apply is refused, named, and the rest applied; Engine's code
for the refusal is UnsupportedOperation (75), not vdsm's updateVmPolicyErr
(63), which EngineError lacks.
"""

from __future__ import annotations

import logging

from vdsm_container import errors

log = logging.getLogger("vdsm_container.spec.qospolicy")

_UUIDS = ("domainID", "poolID", "imageID", "volumeID")
# vdsm's vmtune.validate_io_tune_params: a total and its read/write parts
# can't both be set.
_EXCLUSIVE = (("total_bytes_sec", "read_bytes_sec", "write_bytes_sec"),
              ("total_iops_sec", "read_iops_sec", "write_iops_sec"))


def _limit(value):
    try:
        limit = int(str(value).strip())
    except ValueError:
        limit = None
    if limit is None or not 1 <= limit <= 100:
        raise errors.invalid("vcpuLimit", value, "a percentage, 1 to 100")
    return limit


def find_disk(spec, entry):
    """The VM's disk with ``entry``'s UUIDs, or None.  Its imageID names it
    (the volume changes with every snapshot); without the XML's metadata,
    the /images/<imageID>/<volumeID> of its path."""
    for disk in (spec.image_disk,) + tuple(spec.disks):
        if disk.image_id:
            if disk.image_id == entry["imageID"]:
                return disk
        elif disk.path.endswith("/images/%s/%s" % (entry["imageID"],
                                                   entry["volumeID"])):
            return disk
    return None


def _maximum(entry, target):
    maximum = entry.get("maximum") or {}
    if not isinstance(maximum, dict):
        raise errors.invalid("ioTune.maximum", maximum, "not a mapping")
    limits = {}
    for key, value in maximum.items():
        try:
            limits[key] = int(value)
        except (TypeError, ValueError):
            raise errors.invalid("ioTune.maximum." + key, value,
                                 "not a number") from None
        if limits[key] < 0:
            raise errors.invalid("ioTune.maximum." + key, value, "negative")
    for total, *parts in _EXCLUSIVE:
        if limits.get(total) and any(limits.get(p) for p in parts):
            raise errors.invalid("ioTune.maximum", maximum, "%s with %s on "
                                 "disk %s" % (total, "/".join(parts), target))
    return limits


def parse(spec, params):
    """The policy for ``host.qos`` from Engine's ``params``."""
    if not params:
        raise errors.MissingParameter("updateVmPolicy got an empty policy.")
    policy = {"vcpuLimit": None, "ioTune": []}
    if "vcpuLimit" in params:
        policy["vcpuLimit"] = _limit(params["vcpuLimit"])
    for entry in params.get("ioTune") or ():
        if "path" in entry or "name" in entry:
            continue
        missing = [k for k in _UUIDS if k not in entry]
        if missing:
            raise errors.missing("ioTune." + missing[0])
        disk = find_disk(spec, entry)
        if disk is None:
            raise errors.InvalidParameter(
                "no disk of the VM has these UUIDs",
                **{k: entry[k] for k in _UUIDS})
        policy["ioTune"].append({"disk": disk.target,
                                 "maximum": _maximum(entry, disk.target)})
    unknown = sorted(set(params) - {"vcpuLimit", "ioTune", "vmId"})
    if unknown:
        log.warning("updateVmPolicy got unknown parameters: %s",
                    ", ".join(unknown))
    return policy

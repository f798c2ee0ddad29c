"""VM.updateVmPolicy's limits, written into a running container's cgroup
and read back (the root side of ``verbs.update_vm_policy``).

Engine sends the policy after every start and on each QoS edit
(ovirt-engine vdsbroker UpdateVmPolicyVDSCommand.build: ``vcpuLimit``, and
``ioTune`` entries of one disk's four UUIDs with ``maximum`` and
``guaranteed``).  vdsm's ``Vm.updateVmPolicy`` (lib/vdsm/virt/vm.py) only
records it in the domain's metadata; MOM then applies it: the CPU limit as
the per-vCPU quota of 04-cputune.policy (vdsm static/etc/vdsm/mom.d), the
disks' ``maximum`` through ``Vm.setIoTune``.  A container has no MOM
guest: the same limits go straight to its cgroup, where create put the
XML's (``bundle.ocispec``, ``bundle.blockio``):

- CPU: 04-cputune.policy gives the VM ``vcpuLimit`` % of the host's CPU
  time (period 100 ms x host CPUs x limit / 100, spread over its vCPUs;
  the period grows when the quota would go below libvirt's 1000 us).  The
  container's cgroup takes the total: cpu.max on v2, cpu.cfs_quota_us and
  cpu.cfs_period_us on v1.
- I/O: each disk's ``maximum`` on the device its I/O reaches
  (``blockio``: the writable layer's loop device for the image disk, the
  volume's loop device or LV for a volume), io.max on v2,
  blkio.throttle.* on v1; 0 lifts a limit, as it does in libvirt.

What can't apply is named in ``refused``; the rest is applied.
"""

from __future__ import annotations

import os

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.bundle import quota
from vdsm_container.linux import loop
from vdsm_container.host import qcow

PERIOD_US = 100000      # 04-cputune.policy defaultPeriod
MIN_QUOTA_US = 1000     # libvirt's (and the policy's) smallest vcpu_quota

# cgroup v2 io.max keys, cgroup v1 files, the libvirt names feeding them.
IO_FIELDS = (
    ("rbps", "blkio.throttle.read_bps_device",
     "read_bytes_sec", "total_bytes_sec"),
    ("wbps", "blkio.throttle.write_bps_device",
     "write_bytes_sec", "total_bytes_sec"),
    ("riops", "blkio.throttle.read_iops_device",
     "read_iops_sec", "total_iops_sec"),
    ("wiops", "blkio.throttle.write_iops_device",
     "write_iops_sec", "total_iops_sec"),
)


def cpu_max(limit_percent, host_cpus=None):
    """(quota, period) of the whole container for ``vcpuLimit``, as
    04-cputune.policy ``check_and_set_quota`` computes it per vCPU (times
    the vCPUs: the container's cgroup holds them all)."""
    host_cpus = host_cpus or os.cpu_count()
    quota = PERIOD_US * host_cpus * limit_percent // 100
    period = PERIOD_US
    if quota < MIN_QUOTA_US:
        multiplier = 1 + MIN_QUOTA_US // max(quota, 1)
        quota, period = quota * multiplier, period * multiplier
    return quota, period


def throttles(maximum):
    """{io.max key: limit (0: none)} of libvirt-named ``maximum``."""
    return {key: int(maximum.get(own) or maximum.get(total) or 0)
            for key, _, own, total in IO_FIELDS}


def update_policy(backend, vm_id, policy):
    """``HostBackend.update_policy``: ``policy`` is ``{"vcpuLimit": N or
    None, "ioTune": [{"disk": target, "maximum": {...}}]}`` (checked by
    the caller; disks named by target, found in the spec recorded here).
    Returns ``{"cpu": (quota, period) read back, "io": {target: {key:
    limit}} read back, "refused": [what could not apply]}``."""
    def act(driver, bundle):
        _, spec = backend.records.read(vm_id)
        return apply(backend.hierarchy, driver, bundle, spec, policy)
    return backend._act(vm_id, act)


def apply(hierarchy, driver, bundle, spec, policy):
    rel = driver.cgroup_path(bundle)
    if not rel or not hierarchy.exists(rel):
        raise errors.UnsupportedOperation(
            "the container's cgroup is not on this host", vmId=spec.vm_id,
            runtime=driver.name)
    result = {"cpu": None, "io": {}, "refused": []}
    if policy.get("vcpuLimit") is not None:
        try:
            asked = cpu_max(int(policy["vcpuLimit"]))
            _write_cpu(hierarchy, rel, *asked)
            result["cpu"] = read_cpu(hierarchy, rel)
            if result["cpu"] != asked:
                result["refused"].append("vcpuLimit %s: the cgroup holds "
                                         "%s, not %s" % (
                                             policy["vcpuLimit"],
                                             result["cpu"], asked))
        except OSError as e:
            result["refused"].append("vcpuLimit %s: %s" % (
                policy["vcpuLimit"], e))
    disks = {d.target: d for d in (spec.image_disk,) + tuple(spec.disks)}
    for entry in policy.get("ioTune", ()):
        disk = disks.get(entry["disk"])
        dev = disk and device(bundle, spec, disk)
        if dev is None:
            result["refused"].append(
                "ioTune of disk %s: the container reads it from no block "
                "device" % entry["disk"])
            continue
        try:
            asked = throttles(entry["maximum"])
            _write_io(hierarchy, rel, dev, asked)
            held = result["io"][disk.target] = read_io(hierarchy, rel, dev)
            if held != asked:
                result["refused"].append("ioTune of disk %s: the cgroup "
                                         "holds %s, not %s" % (
                                             disk.target, held, asked))
        except OSError as e:
            result["refused"].append("ioTune of disk %s: %s" % (
                disk.target, e))
    return result


def device(bundle, spec, disk):
    """'MAJ:MIN' of the device the container's I/O to ``disk`` reaches, or
    None: its writable layer's loop device for the image disk; a mounted
    volume's loop device (file domain) or the device itself (block)."""
    if disk == spec.image_disk:
        devs = loop.devices_of(os.path.join(bundle.storage_dir, quota.IMAGE))
    elif disk not in [d for d, _ in spec.volume_disks]:
        return None
    elif disk.fmt == "qcow2":     # mounted from its export (host.qcow)
        i = [d for d, _ in spec.volume_disks].index(disk)
        devs = loop.devices_of(os.path.join(bundle.storage_dir, qcow.EXPORTS,
                                            str(i)))
    elif disk.block:
        devs = [disk.path]
    else:
        devs = loop.devices_of(disk.path)
    if not devs:
        return None
    rdev = os.stat(devs[0]).st_rdev
    return "%d:%d" % (os.major(rdev), os.minor(rdev))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _write_cpu(hierarchy, rel, quota_us, period_us):
    if hierarchy.version == 2:
        _write(os.path.join(hierarchy.path(rel), "cpu.max"),
               "%d %d" % (quota_us, period_us))
        return
    d = hierarchy.path(rel, "cpu")
    # Lift the quota first: a new period shorter than the old quota fails.
    _write(os.path.join(d, "cpu.cfs_quota_us"), "-1")
    _write(os.path.join(d, "cpu.cfs_period_us"), str(period_us))
    _write(os.path.join(d, "cpu.cfs_quota_us"), str(quota_us))


def read_cpu(hierarchy, rel):
    """(quota, period) the cgroup holds; quota None: no limit."""
    if hierarchy.version == 2:
        quota_us, period_us = files.read_text(
            os.path.join(hierarchy.path(rel), "cpu.max")).split()
    else:
        d = hierarchy.path(rel, "cpu")
        quota_us = files.read_text(os.path.join(d, "cpu.cfs_quota_us"))
        period_us = files.read_text(os.path.join(d, "cpu.cfs_period_us"))
    quota_us = quota_us.strip()
    return (None if quota_us in ("max", "-1") else int(quota_us),
            int(period_us))


def _write_io(hierarchy, rel, dev, limits):
    if hierarchy.version == 2:
        _write(os.path.join(hierarchy.path(rel), "io.max"), "%s %s" % (
            dev, " ".join("%s=%s" % (k, v or "max")
                          for k, v in sorted(limits.items()))))
        return
    d = hierarchy.path(rel, "blkio")
    for key, name, _, _ in IO_FIELDS:
        _write(os.path.join(d, name), "%s %d" % (dev, limits[key]))


def read_io(hierarchy, rel, dev):
    """{io.max key: limit (0: none)} the cgroup holds for device ``dev``."""
    found = {key: 0 for key, _, _, _ in IO_FIELDS}
    if hierarchy.version == 2:
        text = files.read_text(os.path.join(hierarchy.path(rel), "io.max"))
        for line in text.splitlines():
            if line.split()[:1] == [dev]:
                for field in line.split()[1:]:
                    key, _, value = field.partition("=")
                    if key in found and value != "max":
                        found[key] = int(value)
        return found
    d = hierarchy.path(rel, "blkio")
    for key, name, _, _ in IO_FIELDS:
        for line in files.read_text(os.path.join(d, name)).splitlines():
            if line.split()[:1] == [dev]:
                found[key] = int(line.split()[1])
    return found

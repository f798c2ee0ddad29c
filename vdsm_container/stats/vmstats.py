"""Container stats in vdsm's VmStats shape.

Mirrors lib/vdsm/virt/vm.py ``Vm.getStats`` (``_getConfigVmStats``,
``_getRunningVmStats``, ``_getDownVmStats``) and lib/vdsm/virt/vmstats.py
``cpu``/``_usage_percentage``: cpuUser and cpuSys are percentages of one
CPU over the sampling interval, cpuSys counting user+system time as vdsm
does for the qemu process, cpuUser the rest of the cgroup's CPU time.
Values are strings where vdsm's schema (api/vdsm-api.yml, RunningVmStats)
says ``type: string``.

What a container can't have (display, guest agent session) gets the value
vdsm reports for a headless VM without an agent.
"""

from __future__ import annotations

import time

from vdsm_container import constants

# lib/vdsm/virt/vmexitreason.py -> the names vdsm-api.yml's VmExitReason uses
_NS = 10 ** 9


# lib/vdsm/common/time.py event_time(): the base older Engines need
_EVENT_TIME_BASE = 2 ** 31 - 1


def event_time():
    """vdsm's ``vdsm.common.time.event_time``: 2**31 - 1 plus monotonic ms.

    The one clock vdsm orders a VM's news on: ``Vm._get_status_time`` gives
    it as statusTime and yajsonrpc's ``_add_notify_time`` stamps it on every
    event as ``notify_time``.  Engine compares the two
    (``VmManager.isLatestData``): a statusTime on any other clock makes
    every poll after the first event look older than it, and be dropped.
    """
    return _EVENT_TIME_BASE + int(time.monotonic() * 1000)


def status_time():
    """vdsm's ``Vm._get_status_time``: ``event_time()`` as str."""
    return str(event_time())


def _pct(delta_ns, interval):
    # vmstats._usage_percentage: 100 * val / interval / 1000**3
    return 100.0 * delta_ns / interval / _NS


def cpu(first, last):
    """cpuUser, cpuSys, cpuUsage, cpuActual from two cgroup samples.

    As lib/vdsm/virt/vmstats.py ``cpu`` computes them from libvirt's bulk
    stats, whose cpu.user, cpu.system and cpu.time are the cgroup's user
    time, system time and total usage: cpuSys is the user *plus* system
    time of the interval (sic), cpuUser the rest of the total, never below
    zero, and cpuUsage the user plus system time so far.
    """
    stats = {"cpuUser": "0.00", "cpuSys": "0.00", "cpuActual": False}
    if last is not None:
        stats["cpuUsage"] = str(last.cpu_user_ns + last.cpu_system_ns)
    if first is None or last is None:
        return stats
    interval = last.timestamp - first.timestamp
    if interval <= 0:
        return stats
    total = last.cpu_usage_ns - first.cpu_usage_ns
    cpu_sys = (last.cpu_user_ns - first.cpu_user_ns) + \
        (last.cpu_system_ns - first.cpu_system_ns)
    stats["cpuUser"] = "%.2f" % max(0.0, _pct(total - cpu_sys, interval))
    stats["cpuSys"] = "%.2f" % _pct(cpu_sys, interval)
    stats["cpuActual"] = True
    return stats


def memory(spec, last):
    """memUsage (percent of the VM's memory) and memoryStats (KiB)."""
    total_kib = spec.memory_kib
    if last is None:
        return {"memUsage": "0"}
    # Page cache can be reclaimed: count what the container really holds.
    used = max(0, last.memory_usage - last.memory_cache)
    used_kib = used // 1024
    return {
        "memUsage": str(int(100 * used_kib / total_kib)) if total_kib else "0",
        "memoryStats": {
            "mem_total": str(total_kib),
            "mem_unused": str(max(0, total_kib - used_kib)),
            "mem_free": str(max(0, total_kib - used_kib)),
            "mem_cached": str(last.memory_cache // 1024),
            "mem_buffers": "0",
            "swap_in": 0, "swap_out": 0, "majflt": 0, "minflt": 0,
            "pageflt": 0,
        },
    }


def disks(spec, first, last, sizes):
    """VmDiskStats for every disk, as vmstats.py ``disk_stats`` reports
    each drive (``disk_info`` defaults, imageID for vdsm images; rates as
    whole numbers, the schema's uint).

    The cgroup counts the container's I/O as a whole, so it is reported on
    the image disk; the volume disks show "0" as vdsm does for a drive whose
    counters it can't read; latencies are not measured ("0").  truesize is
    the volume's real allocation (vdsm: ``getVolumeSize``'s truesize, which
    Engine stores as the disk's actual size).
    """
    if last is None:
        return {}
    interval = (last.timestamp - first.timestamp) if first else 0

    def rate(attr):
        if not first or interval <= 0:
            return "0"
        return str(max(0, int((getattr(last, attr) - getattr(first, attr))
                              / interval)))

    result = {}
    for disk in spec.disks:
        apparent, true = sizes.get(disk.path, (0, 0))
        entry = {
            "readBytes": "0", "writtenBytes": "0", "readOps": "0",
            "writeOps": "0", "readRate": "0", "writeRate": "0",
            "readLatency": "0", "writeLatency": "0", "flushLatency": "0",
            "apparentsize": str(apparent),
            "truesize": str(true),
        }
        if disk.image_id:
            entry["imageID"] = disk.image_id
        if disk == spec.image_disk:
            entry.update({
                "readBytes": str(last.io_read_bytes),
                "writtenBytes": str(last.io_write_bytes),
                "readOps": str(last.io_read_ops),
                "writeOps": str(last.io_write_ops),
                "readRate": rate("io_read_bytes"),
                "writeRate": rate("io_write_bytes"),
            })
        result[disk.target] = entry
    return result


def running(spec, state, first, last, monitor_response=0, sizes=None):
    """RunningVmStats for a container in ``state`` (a dict, see container).

    ``first``/``last`` are cgroup samples (``cgroups.Sample``) or None.
    """
    stats = {
        "vmId": spec.vm_id,
        "vmName": spec.name,
        "vmType": "kvm",            # the only VmType vdsm's schema has
        "kvmEnable": "false",
        # Vm._getConfigVmStats: from the domain's <features><acpi/>; Engine
        # turns Shutdown into Stop without it (canShutdownVm)
        "acpiEnable": "true" if getattr(spec, "acpi", False) else "false",
        "status": state["status"],
        "statusTime": status_time(),
        "elapsedTime": str(max(0, int(time.time() - state.get(
            "startTime", time.time())))),
        "monitorResponse": str(monitor_response),
        "timeOffset": "0",
        "clientIp": "",
        "pauseCode": "NOERR",
        "pid": str(state.get("pid") or 0),
        "guestIPs": "",
        "guestFQDN": "",
        "username": "",
        "session": "Unknown",
        "guestCPUCount": -1,
        "vcpuCount": str(spec.vcpus),
        "vcpuPeriod": spec.cpu_period or 100000,
        "vcpuQuota": str((spec.cpu_quota or spec.cpu_period or 100000)
                         * spec.vcpus),
        "displayInfo": [],
        "displayPort": "-1",
        "displaySecurePort": "-1",
        "displayIp": "0",
        "network": {},
        "disks": {},
        # No "hash" (devices hash), as vdsm omits it when it has none: with
        # no hash Engine's VmDevicesMonitoring.isVmDevicesChanged never
        # re-reads the devices (a container's never change); a hash that
        # changed would make Engine fetch them, find no controllers, mark
        # its own unplugged and rewrite the VM's OVF every cycle.
    }
    stats.update(cpu(first, last))
    stats.update(memory(spec, last))
    stats["disks"] = disks(spec, first, last, sizes or {})
    return stats


def exited(vm_id, state):
    """ExitedVmStats: vdsm's ``Vm._getDownVmStats``."""
    return {
        "vmId": vm_id,
        "status": constants.DOWN,
        "statusTime": status_time(),
        "exitCode": state.get("exitCode", constants.ERROR),
        "exitReason": state.get("exitReason", constants.GENERIC_ERROR),
        "exitMessage": state.get("exitMessage", ""),
    }

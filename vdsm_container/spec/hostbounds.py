"""Bounds of a container's sizing that come from the host it runs on.

A container's memory and CPU limits are its only ones: a limit above what
the host has is no limit at all (``<memory unit='TiB'>1000000</memory>``
gave a container with none).  The host's size is what vdsm reports to
Engine, which places VMs by it (lib/vdsm/host/caps.py ``get``: ``memSize``
from /proc/meminfo's MemTotal, ``cpuThreads``, the online CPUs): a VM asking
more than that is refused with InvalidParameter (91) naming the field.
Only the vCPUs that are online count (``<vcpu current='N'>``): Engine's
maximum for CPU hotplug is often above the host's CPUs, and harmless.
Overcommit across containers stays allowed, as for VMs.
"""

from __future__ import annotations

import os

from vdsm_container import errors


def host_memory_kib(meminfo="/proc/meminfo"):
    with open(meminfo) as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    raise OSError("no MemTotal in %s" % meminfo)


def host_cpus():
    return os.cpu_count() or 1


def check(spec, memory_kib=None, cpus=None):
    """InvalidParameter when ``spec`` asks more than the host has."""
    memory_kib = memory_kib or host_memory_kib()
    cpus = cpus or host_cpus()
    if spec.memory_kib > memory_kib:
        raise errors.invalid("memory", "%d KiB" % spec.memory_kib,
                             "more than the host's memory (%d MiB)"
                             % (memory_kib // 1024))
    if spec.vcpus > cpus:
        raise errors.invalid("vcpu", spec.vcpus, "more vCPUs than the host "
                             "has CPUs (%d)" % cpus)

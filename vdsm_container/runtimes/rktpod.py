"""Where a rkt pod runs on this host: nspawn's registration, and the cgroup
that carries the VM's limits.

Measured with rkt 1.30 built from its last source (../shared/vendor/rkt):

- stage1 ``host`` runs the pod with the host's systemd-nspawn and always
  passes ``--register=true`` (rkt stage1/init/init.go).  Where PID 1 is not
  systemd there is no system bus and the pod fails ("Failed to open system
  bus").
- rkt's own ``--memory``/``--cpu`` become systemd's ``MemoryLimit=`` and
  ``CPUQuota=`` on the app's unit inside the pod; on a hybrid cgroup v1
  host they were not applied: the app stays in the memory cgroup of the
  process that ran ``rkt run``.

So the driver runs rkt with a ``systemd-nspawn`` wrapper first on its PATH
(``nspawn_dir``), which adds ``--keep-unit``: the pod stays in the cgroup
``rkt run`` was started in (and where systemd is PID 1 nspawn registers
that unit with systemd-machined, rather than a scope of its own); where
PID 1 is not systemd it also replaces ``--register=true`` with
``--register=false``.  ``rkt run`` is started in a cgroup of the driver's
that carries the VM's limits: the transient service's ``MemoryMax=``
(``MemoryLimit=`` on v1) and ``CPUQuota=`` where systemd is PID 1 (with
``Delegate=yes``, which nspawn needs), else a cgroupfs
``/vdsm-containers.slice/vdsm-container-<vmId>.scope`` made here, as runc's
cgroupfs driver would.  Once the pod runs, ``unapplied`` reads the limits
back from the pod's own cgroup: a limit this host did not apply refuses the
VM, by name, rather than running it unlimited.
"""

from __future__ import annotations

import math
import os
import subprocess

from vdsm_container.linux import files
from vdsm_container.runtimes import base, proc
from vdsm_container.stats import cgroups

CPU_PERIOD_US = 100000

# v1 controllers the driver's cgroupfs scope joins: the limits' and the
# ones the stats read (stats.cgroups.Hierarchy._read_v1).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "blkio")

_WRAPPER = """#!/bin/sh
# Written by vdsm-container's rkt driver (vdsm_container/runtimes/rktpod.py):
# stage1 host's nspawn, kept in the cgroup of the driver's unit or scope%s.
for a; do
    shift
    case $a in --register=*%s) ;; *) set -- "$@" "$a" ;; esac
done
exec %s --keep-unit%s "$@"
"""


def nspawn_path():
    for d in ("/usr/bin", "/bin", "/usr/sbin"):
        path = os.path.join(d, "systemd-nspawn")
        if os.access(path, os.X_OK):
            return path
    return None


def nspawn_dir(paths, systemd):
    """A directory holding the ``systemd-nspawn`` wrapper, to put first in
    rkt's PATH; written when missing or different."""
    nspawn = nspawn_path() or "systemd-nspawn"
    if systemd:
        text = _WRAPPER % ("", "|--keep-unit", nspawn, "")
    else:
        text = _WRAPPER % (", unregistered (PID 1 is not systemd)",
                           "|--keep-unit", nspawn, " --register=false")
    # In the storage directory: the run directory's /run is noexec on
    # Debian (rkt failed there: "fork/exec ...: permission denied").
    d = os.path.join(paths.storage_dir, "rkt-nspawn")
    path = os.path.join(d, "systemd-nspawn")
    try:
        if files.read_text(path) == text:
            return d
    except OSError:
        pass
    os.makedirs(d, mode=0o755, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return d


def limits(spec):
    """(memory bytes, CPU quota µs, period µs): the OCI driver's figures
    (bundle.ocispec.build: quota = vCPUs x the per-vCPU quota)."""
    period = spec.cpu_period or CPU_PERIOD_US
    quota = (spec.cpu_quota or period) * spec.vcpus
    return spec.memory_kib * 1024, quota, period


def unit_properties(limit, version):
    """``systemd-run`` properties putting ``limit`` (``limits``) on the
    pod's unit."""
    memory, quota, period = limit
    return ["--property=%s=%d" % ("MemoryMax" if version == 2
                                  else "MemoryLimit", memory),
            "--property=CPUQuota=%d%%" % math.ceil(quota * 100 / period),
            "--property=Delegate=yes"]


def make_scope(hierarchy, rel, limit):
    """Make cgroupfs cgroup ``rel`` with ``limit`` (``limits``); return
    the ``cgroup.procs`` files a process joins it through."""
    memory, quota, period = limit
    if hierarchy.version == 2:
        _enable_v2(hierarchy, rel)
        d = hierarchy.path(rel)
        os.makedirs(d, exist_ok=True)
        _write(os.path.join(d, "memory.max"), memory)
        _write(os.path.join(d, "memory.swap.max"), 0, optional=True)
        _write(os.path.join(d, "cpu.max"), "%d %d" % (quota, period))
        return [os.path.join(d, "cgroup.procs")]
    procs = []
    seen = set()
    for controller in V1_CONTROLLERS:
        # cpu and cpuacct may be one hierarchy, named by symlinks.
        root = os.path.realpath(os.path.join(hierarchy.root, controller))
        if not os.path.isdir(root) or root in seen:
            continue
        seen.add(root)
        d = os.path.join(root, rel.lstrip("/"))
        os.makedirs(d, exist_ok=True)
        procs.append(os.path.join(d, "cgroup.procs"))
    _write(os.path.join(hierarchy.path(rel, "memory"),
                        "memory.limit_in_bytes"), memory)
    cpu = hierarchy.path(rel, "cpu")
    _write(os.path.join(cpu, "cpu.cfs_period_us"), period)
    _write(os.path.join(cpu, "cpu.cfs_quota_us"), quota)
    return procs


def _enable_v2(hierarchy, rel):
    parts = rel.strip("/").split("/")[:-1]
    d = hierarchy.path("/")
    for part in [None] + parts:
        if part:
            d = os.path.join(d, part)
            os.makedirs(d, exist_ok=True)
        _write(os.path.join(d, "cgroup.subtree_control"), "+memory +cpu",
               optional=True)


def _write(path, value, optional=False):
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError:
        if not optional:
            raise


def join_argv(procs, argv):
    """``argv`` run by a shell that first moves itself into ``procs``."""
    script = ('n=$1; shift; while [ "$n" -gt 0 ]; do '
              'echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; '
              'exec "$@"')
    return ["sh", "-c", script, "join", str(len(procs))] + list(procs) + \
        list(argv)


def _cgroup_of(pid, controller):
    """Process ``pid``'s cgroup for ``controller`` (v1), or the unified one
    (``controller`` None)."""
    for line in files.read_text("/proc/%d/cgroup" % pid).splitlines():
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller in controllers.split(","):
            return path
    return None


def _ancestors(rel):
    rel = "/" + rel.strip("/")
    while True:
        yield rel
        if rel == "/":
            return
        rel = os.path.dirname(rel)


def _effective(hierarchy, pid, controller, read):
    """The smallest value ``read(dir)`` gives along the cgroup of ``pid``
    and its ancestors (None where a level sets none)."""
    rel = _cgroup_of(pid, None if hierarchy.version == 2 else controller)
    if rel is None:
        return None
    found = [read(hierarchy.path(r, controller)) for r in _ancestors(rel)]
    found = [v for v in found if v is not None]
    return min(found) if found else None


def _memory_limit(d, version):
    name = "memory.max" if version == 2 else "memory.limit_in_bytes"
    try:
        value = files.read_text(os.path.join(d, name)).strip()
    except OSError:
        return None
    # v1's "unlimited" is a huge page-rounded number.
    if value == "max" or int(value) >= 1 << 62:
        return None
    return int(value)


def _cpu_ratio(d, version):
    try:
        if version == 2:
            quota, period = files.read_text(
                os.path.join(d, "cpu.max")).split()
        else:
            quota = files.read_text(os.path.join(d, "cpu.cfs_quota_us"))
            period = files.read_text(os.path.join(d, "cpu.cfs_period_us"))
        if quota.strip() in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def unapplied(hierarchy, pid, limit):
    """The VM's limits (``limits``) the pod (process ``pid``) is not held
    to, each as the words an error names it with; empty when all are
    applied, None when the pod ended before it could be looked at."""
    memory, quota, period = limit
    v = hierarchy.version
    missing = []
    try:
        mem = _effective(hierarchy, pid, "memory",
                         lambda d: _memory_limit(d, v))
        cpu = _effective(hierarchy, pid, "cpu", lambda d: _cpu_ratio(d, v))
    except OSError:
        return None     # the pod ended meanwhile: nothing to hold
    if mem is None or mem > memory:
        missing.append("memory limit (%d MiB; the pod's cgroup has %s)"
                       % (memory >> 20, "none" if mem is None else
                          "%d MiB" % (mem >> 20)))
    # systemd rounds CPUQuota= to whole percents.
    if cpu is None or cpu > quota / period + 0.01:
        missing.append("CPU limit (%.2f CPUs; the pod's cgroup has %s)"
                       % (quota / period, "none" if cpu is None else
                          "%.2f" % cpu))
    return missing


def cgroup_rel(paths, vm_id, systemd, unit):
    """The cgroup the driver put the pod in: the unit's where systemd is
    PID 1, else its cgroupfs scope."""
    if systemd:
        return "%s/%s" % (cgroups.parent_relpath(paths.cgroup_parent,
                                                 True).rstrip("/"), unit)
    return cgroups.relpath(paths.cgroup_parent, vm_id)


def availability(name, path):
    """Whether rkt at ``path`` can run pods here, with which stage1 and
    why: stage1 host, the default beside a built rkt, the only flavor that
    isolates the pod (fly shares the host's pid namespace and never reports
    the app's exit status), needs the host's systemd-nspawn."""
    if path is None:
        return base.Availability(name, False, "rkt not found in PATH "
                                 "(rkt was discontinued in 2020)")
    try:
        out = proc.run([path, "version"], timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return base.Availability(name, False, "rkt version failed: %s" % e)
    if out.returncode != 0:
        return base.Availability(
            name, False, "rkt version failed: %s" % proc.last_line(
                out.stderr or out.stdout, "exit status %d" % out.returncode))
    version = None
    for line in out.stdout.splitlines():
        if line.startswith("rkt Version:"):
            version = line.split(":", 1)[1].strip()
    if version is None:
        return base.Availability(name, False, "rkt version printed no "
                                 "'rkt Version:' line")
    if nspawn_path() is None:
        return base.Availability(name, False, "stage1 host needs "
                                 "systemd-nspawn (package systemd-container)",
                                 version)
    how = ("registered with systemd-machined" if proc.systemd_booted()
           else "unregistered: PID 1 is not systemd")
    return base.Availability(name, True, "stage1 host: the host's "
                             "systemd-nspawn, %s" % how, version)


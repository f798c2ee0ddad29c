"""Read a container's cgroup, on cgroup v1 (EL8, hybrid) and v2 (EL9).

The runtime places each container in ``vdsm-container-<vmId>.scope`` below
the cgroup parent (``vdsm-containers.slice``).  Where systemd is PID 1 it
does so through its systemd driver, and systemd nests a slice whose name has
dashes in the slices its prefixes name (systemd.slice(5)):
``vdsm-containers.slice`` is ``/vdsm.slice/vdsm-containers.slice``.
Elsewhere the runtime's cgroupfs driver makes ``/<parent>/<scope>`` as
named.  The driver records where the container really is, read from
``/proc/<pid>/cgroup`` once it runs (``of_pid``); ``relpath`` is the same
path computed, for a container that never ran.

``Hierarchy.read(relpath)`` returns one raw sample (counters, not rates):
``vmstats`` turns two samples into vdsm's percentages, the way vdsm's
SampleWindow does for libvirt's bulk stats.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

from vdsm_container.linux import files

_USER_HZ = os.sysconf("SC_CLK_TCK")


def scope_name(vm_id):
    return "vdsm-container-%s.scope" % vm_id


def slice_path(name):
    """Where systemd puts slice ``name``, relative to the hierarchy root:
    ``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice`` (systemd.slice(5);
    ``-.slice`` is the root)."""
    stem = name[:-len(".slice")] if name.endswith(".slice") else name
    if stem in ("", "-"):
        return "/"
    parts = stem.split("-")
    return "/" + "/".join("-".join(parts[:i + 1]) + ".slice"
                          for i in range(len(parts)))


def parent_relpath(parent, systemd):
    """The cgroup parent's path relative to the hierarchy root."""
    if systemd and parent.endswith(".slice") and "/" not in parent:
        return slice_path(parent)
    return "/" + parent.strip("/")


def relpath(parent, vm_id, systemd=False):
    """The container's cgroup path relative to the hierarchy root."""
    return "%s/%s" % (parent_relpath(parent, systemd).rstrip("/"),
                      scope_name(vm_id))


def of_pid(pid, version):
    """The cgroup of process ``pid`` relative to the hierarchy root, from
    /proc/<pid>/cgroup: the unified line on v2, the memory controller's on
    v1 (every controller has the same path there); None if it is gone."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if version == 2 and controllers == "":
            return path
        if version == 1 and "memory" in controllers.split(","):
            return path
    return None


@dataclasses.dataclass
class Sample:
    """Raw counters of one container at ``timestamp`` (monotonic seconds)."""

    timestamp: float
    cpu_usage_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    memory_usage: int = 0
    memory_cache: int = 0
    oom_kills: int = 0
    pids: int = 0
    io_read_bytes: int = 0
    io_write_bytes: int = 0
    io_read_ops: int = 0
    io_write_ops: int = 0


def _read(path, default=None):
    try:
        return files.read_text(path)
    except OSError:
        return default


def _int(path, default=0):
    text = _read(path)
    if text is None:
        return default
    text = text.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return default


def _keyed(path):
    """Parse 'key value' lines (memory.stat, cpu.stat, ...) into a dict."""
    result = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return result


def _is_cgroup2(root):
    # Only a cgroup2 mount has cgroup.controllers at its root; on v1 and
    # hybrid hosts /sys/fs/cgroup is a tmpfs holding one mount per controller.
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


class Hierarchy:
    """The host's cgroup layout: ``version`` 1 (incl. hybrid) or 2."""

    def __init__(self, root="/sys/fs/cgroup", version=None):
        self.root = root
        self.version = version or (2 if _is_cgroup2(root) else 1)

    def path(self, rel, controller="memory"):
        """Directory of cgroup ``rel`` (for ``controller`` on v1)."""
        rel = rel.lstrip("/")
        if self.version == 2:
            return os.path.join(self.root, rel)
        return os.path.join(self.root, controller, rel)

    def exists(self, rel):
        return os.path.isdir(self.path(rel))

    def dirs(self, rel):
        """Every directory that holds cgroup ``rel`` (one on v2)."""
        if self.version == 2:
            found = [self.path(rel)]
        else:
            # Every v1 hierarchy mounted here (cpuset, devices, name=systemd
            # ... not only the ones we read), and the unified one of a
            # hybrid host; skip the cpu,cpuacct-style alias symlinks.
            found = [os.path.join(self.root, h, rel.lstrip("/"))
                     for h in sorted(os.listdir(self.root))
                     if not os.path.islink(os.path.join(self.root, h))]
        return [d for d in found if os.path.isdir(d)]

    def oom_kills(self, rel):
        if self.version == 2:
            return _keyed(os.path.join(self.path(rel), "memory.events")).get(
                "oom_kill", 0)
        return _keyed(os.path.join(self.path(rel, "memory"),
                                   "memory.oom_control")).get("oom_kill", 0)

    def read(self, rel):
        """One raw ``Sample`` of cgroup ``rel``, or None if it is gone."""
        if self.version == 2:
            return self._read_v2(rel)
        return self._read_v1(rel)

    def _read_v1(self, rel):
        mem = self.path(rel, "memory")
        if not os.path.isdir(mem):
            return None
        s = Sample(timestamp=time.monotonic())
        acct = self.path(rel, "cpuacct")
        s.cpu_usage_ns = _int(os.path.join(acct, "cpuacct.usage"))
        stat = _keyed(os.path.join(acct, "cpuacct.stat"))
        tick_ns = 10 ** 9 // _USER_HZ
        s.cpu_user_ns = stat.get("user", 0) * tick_ns
        s.cpu_system_ns = stat.get("system", 0) * tick_ns
        s.memory_usage = _int(os.path.join(mem, "memory.usage_in_bytes"))
        ms = _keyed(os.path.join(mem, "memory.stat"))
        s.memory_cache = ms.get("total_cache", ms.get("cache", 0))
        s.oom_kills = self.oom_kills(rel)
        s.pids = _int(os.path.join(self.path(rel, "pids"), "pids.current"))
        blk = self.path(rel, "blkio")
        for name, rd, wr in (
                ("blkio.throttle.io_service_bytes", "io_read_bytes",
                 "io_write_bytes"),
                ("blkio.throttle.io_serviced", "io_read_ops",
                 "io_write_ops")):
            for line in (_read(os.path.join(blk, name)) or "").splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in ("Read", "Write"):
                    attr = rd if parts[1] == "Read" else wr
                    setattr(s, attr, getattr(s, attr) + int(parts[2]))
        return s

    def _read_v2(self, rel):
        d = self.path(rel)
        if not os.path.isdir(d):
            return None
        s = Sample(timestamp=time.monotonic())
        cpu = _keyed(os.path.join(d, "cpu.stat"))
        s.cpu_usage_ns = cpu.get("usage_usec", 0) * 1000
        s.cpu_user_ns = cpu.get("user_usec", 0) * 1000
        s.cpu_system_ns = cpu.get("system_usec", 0) * 1000
        s.memory_usage = _int(os.path.join(d, "memory.current"))
        s.memory_cache = _keyed(os.path.join(d, "memory.stat")).get(
            "file", 0)
        s.oom_kills = _keyed(os.path.join(d, "memory.events")).get(
            "oom_kill", 0)
        s.pids = _int(os.path.join(d, "pids.current"))
        for line in (_read(os.path.join(d, "io.stat")) or "").splitlines():
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                attr = {"rbytes": "io_read_bytes", "wbytes": "io_write_bytes",
                        "rios": "io_read_ops", "wios": "io_write_ops"}.get(key)
                if attr:
                    setattr(s, attr, getattr(s, attr) + int(value))
        return s


def members(dirs):
    """The pids in the cgroup directories ``dirs`` (all hierarchies)."""
    pids = set()
    for d in dirs:
        try:
            pids.update(int(p) for p in files.read_text(
                os.path.join(d, "cgroup.procs")).split())
        except OSError:
            continue
    return pids


def kill_members(dirs, tries=200):
    """SIGKILL every process in ``dirs`` until they are empty (or ``tries``
    rounds have passed)."""
    for _ in range(tries):
        pids = members(dirs)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def empty_and_remove(dirs, tries=200):
    """SIGKILL every process in ``dirs`` until they are empty, then remove
    them, deepest first.  Raises OSError for a directory that stays (the
    caller decides whether that matters)."""
    kill_members(dirs, tries)
    for d in sorted(dirs, key=len, reverse=True):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass

"""The OCI runtime config (config.json) of a container VM.

Built from the ``ContainerSpec`` and the image's config, the way ``runc
spec`` and the runtime-spec's config.md describe it, with the VM's sizing
applied to the container's cgroup:

- memory: hard limit from ``<memory>``, reservation (soft limit) from
  ``<currentMemory>``, swap limit equal to the memory limit (no swap);
- CPU: quota = vCPUs x period (libvirt's ``<cputune><quota>`` is per vCPU,
  so it is multiplied the same way), shares from ``<cputune><shares>``;
- pids: ``DEFAULT_PIDS_LIMIT`` unless the admin changes it.

Two things ``runc spec`` emits are left out on purpose: ``rlimits`` and
``oomScoreAdj``.  Raising either needs CAP_SYS_RESOURCE, which vdsm's host
may lack (runc then fails with "can't get final child's PID from pipe").
"""

from __future__ import annotations

import os
import re

from vdsm_container import errors
from vdsm_container.bundle import seccomp

OCI_VERSION = "1.0.2"
DEFAULT_PIDS_LIMIT = 4096
CPU_PERIOD_US = 100000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# runc's default set (libcontainer/specconv.Example); never CAP_SYS_ADMIN.
CAPABILITIES = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]
READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]

BASE_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                 "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]


def hostname(name):
    """An RFC 1123 label made from the VM name."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63]
    return label.strip("-") or "container"


def process_args(spec, image_config):
    """``containerCommand`` replaces the image's; else Entrypoint + Cmd."""
    if spec.command:
        return list(spec.command)
    args = list(image_config.get("Entrypoint") or []) + \
        list(image_config.get("Cmd") or [])
    if not args:
        raise errors.invalid("containerCommand", None,
                             "the image has no Entrypoint or Cmd: set the "
                             "containerCommand custom property")
    return args


def process_env(spec, image_config):
    env = {}
    for item in image_config.get("Env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(dict(spec.env))
    return ["%s=%s" % kv for kv in env.items()]


def _lookup(rootfs, dbfile, name):
    """Find ``name`` in the image's /etc/passwd or /etc/group."""
    path = os.path.join(rootfs, "etc", dbfile)
    real = os.path.realpath(path)
    if not real.startswith(os.path.realpath(rootfs) + os.sep):
        return None     # a symlink out of the image: don't follow it
    try:
        with open(real) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 3 and fields[0] == name:
                    return fields
    except OSError:
        pass
    return None


def process_user(rootfs, image_config):
    """uid/gid from the image's ``User`` ("name", "uid", "uid:gid", ...)."""
    user = (image_config.get("User") or "").strip()
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")
    if name.isdigit():
        uid, gid = int(name), 0
        entry = None
    else:
        entry = _lookup(rootfs, "passwd", name)
        if entry is None:
            raise errors.invalid("image User", user,
                                 "no such user in the image's /etc/passwd")
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gentry = _lookup(rootfs, "group", group)
            if gentry is None:
                raise errors.invalid("image User", user,
                                     "no such group in the image's /etc/group")
            gid = int(gentry[2])
    return {"uid": uid, "gid": gid}


def resources(spec):
    limit = spec.memory_kib * 1024
    memory = {"limit": limit, "swap": limit}
    reservation = spec.current_memory_kib * 1024
    if 0 < reservation < limit:
        memory["reservation"] = reservation
    period = spec.cpu_period or CPU_PERIOD_US
    per_vcpu = spec.cpu_quota or period
    cpu = {"period": period, "quota": per_vcpu * spec.vcpus}
    if spec.cpu_shares:
        cpu["shares"] = spec.cpu_shares
    return {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": memory,
        "cpu": cpu,
        "pids": {"limit": DEFAULT_PIDS_LIMIT},
    }


def build(spec, image, rootfs, cgroups_path, netns_path=None, mounts=(),
          blkio=None, id_map=None):
    """The config.json dict for ``spec`` running ``image`` at ``rootfs``.

    ``mounts`` are extra OCI mount dicts (volumes); ``netns_path`` joins a
    prepared network namespace, else the container gets an empty one.
    """
    caps = list(CAPABILITIES)
    network = {"type": "network"}
    if netns_path:
        network["path"] = netns_path
    config = {
        "ociVersion": OCI_VERSION,
        "process": {
            # Engine's serial console: a pty, which conmon -t holds.
            "terminal": bool(spec.console),
            "user": process_user(rootfs, image.config),
            "args": process_args(spec, image.config),
            "env": process_env(spec, image.config),
            "cwd": image.config.get("WorkingDir") or "/",
            "capabilities": {k: caps for k in (
                "bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname(spec.name),
        "mounts": BASE_MOUNTS + list(mounts),
        "annotations": {
            "org.ovirt.vm.id": spec.vm_id,
            "org.ovirt.vm.name": spec.name,
            "org.opencontainers.image.ref.name": image.ref,
            "org.ovirt.container.image.digest": image.digest,
        },
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources(spec),
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts",
                                                 "mount", "cgroup")]
            + [network],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }
    if blkio:
        config["linux"]["resources"]["blockIO"] = blkio
    if id_map:
        _user_namespace(config, id_map, netns_path)
    profile = seccomp.profile(caps)
    if profile is not None:
        config["linux"]["seccomp"] = profile
    return config


def _user_namespace(config, id_map, netns_path):
    """Run in a user namespace: container ids 0.. are host ids base..."""
    base, size = id_map
    linux = config["linux"]
    linux["namespaces"].append({"type": "user"})
    mapping = [{"containerID": 0, "hostID": base, "size": size}]
    linux["uidMappings"] = mapping
    linux["gidMappings"] = [dict(m) for m in mapping]
    if netns_path:
        # sysfs can't be mounted from a user namespace that doesn't own the
        # network namespace (ours is made on the host, for the NICs): bind
        # the host's read-only instead, as podman does.
        config["mounts"] = [
            dict(m, type="bind", source="/sys",
                 options=["rbind", "nosuid", "noexec", "nodev", "ro"])
            if m["destination"] == "/sys" else m
            for m in config["mounts"]]


def selfcheck_config(rootfs, cgroups_path, mounts, pids=16):
    """A minimal container running ``true``: the runtime self-check.

    It has the /dev tmpfs every container has (``BASE_MOUNTS``): without
    one the runtime makes the device nodes in the rootfs itself, which is
    under the run dir, /run, mounted nodev where systemd is PID 1 (every EL
    host), and runc's init then fails to reopen /dev/null there ("open
    /dev/null: permission denied"), refusing runc on a host where it runs
    containers."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                    "args": ["true"], "env": ["PATH=" + DEFAULT_PATH],
                    "cwd": "/", "noNewPrivileges": True,
                    "capabilities": {k: list(CAPABILITIES) for k in (
                        "bounding", "effective", "permitted")}},
        "root": {"path": rootfs, "readonly": True},
        "mounts": BASE_MOUNTS[:2] + list(mounts),       # /proc, /dev
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"memory": {"limit": 64 * 1024 ** 2},
                          "pids": {"limit": pids}},
            "namespaces": [{"type": t} for t in (
                "pid", "ipc", "uts", "mount", "network")],
        },
    }

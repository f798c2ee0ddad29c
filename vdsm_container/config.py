"""Where the plugin keeps things on the host.

Two roots, as vdsm does (/run/vdsm for what dies with the host, /var/lib/vdsm
for what does not):

- ``run_dir`` (tmpfs; default /run/vdsm-container): per-VM state files, the
  OCI runtime's ``--root``, conmon's pid and exit files.  A host reboot kills
  every container, and this directory goes with them.
- ``storage_dir`` (disk; default /var/lib/vdsm-container): the unpacked image
  cache and each container's writable layer and log, which may be large.

Both can be moved with VDSM_CONTAINER_RUN_DIR and VDSM_CONTAINER_STORAGE_DIR
(tests and the demo do).

Two limits an admin may change in the environment of supervdsmd (and of the
command): VDSM_CONTAINER_DISK_SIZE, the default size of a container's
writable layer (``bundle.quota``; a VM's ``containerDiskSize`` overrides it;
0 turns the limit off), and VDSM_CONTAINER_LOG_SIZE_MAX, the size at which
conmon starts a container's log afresh.
"""

from __future__ import annotations

import dataclasses
import os
import re

from vdsm_container import errors


@dataclasses.dataclass(frozen=True)
class Paths:
    run_dir: str = "/run/vdsm-container"
    storage_dir: str = "/var/lib/vdsm-container"
    # The cgroup parent of every container: a systemd slice on systemd hosts,
    # a cgroupfs directory of the same name elsewhere.
    cgroup_parent: str = "vdsm-containers.slice"
    # Seconds between SIGTERM and SIGKILL on destroy/shutdown.
    stop_timeout: float = 10.0
    # containerUserns=true: container uid/gid 0..65535 are host ids
    # userns_base..userns_base+65535 (one range shared by such containers).
    userns_base: int = 100000
    userns_size: int = 65536
    # The writable layer's size limit when the VM sets no
    # containerDiskSize (MiB; 0: none).
    disk_size_mib: int = 10 * 1024
    # conmon's --log-size-max: the container log's bound (bytes).
    log_size_max: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, environ=os.environ):
        return cls(
            run_dir=environ.get("VDSM_CONTAINER_RUN_DIR", cls.run_dir),
            storage_dir=environ.get("VDSM_CONTAINER_STORAGE_DIR",
                                    cls.storage_dir),
            cgroup_parent=environ.get("VDSM_CONTAINER_CGROUP_PARENT",
                                      cls.cgroup_parent),
            stop_timeout=float(environ.get("VDSM_CONTAINER_STOP_TIMEOUT",
                                           cls.stop_timeout)),
            disk_size_mib=_env_size(environ, "VDSM_CONTAINER_DISK_SIZE",
                                    cls.disk_size_mib),
            log_size_max=_env_bytes(environ, "VDSM_CONTAINER_LOG_SIZE_MAX",
                                    cls.log_size_max),
        )

    # Per-VM locations.  Every file a container owns is below one of these
    # two directories, so removing them is the whole of "leave nothing".

    def vm_run_dir(self, vm_id):
        return os.path.join(self.run_dir, "vms", vm_id)

    def vm_storage_dir(self, vm_id):
        return os.path.join(self.storage_dir, "vms", vm_id)

    def runtime_root(self, runtime):
        return os.path.join(self.run_dir, "runtime", runtime)

    @property
    def image_cache(self):
        return os.path.join(self.storage_dir, "images")


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """Bounds on what one image may expand to, checked while its layers
    stream (``image/scan.py``), before umoci writes them.

    A 4 MB archive can expand to gigabytes, a 10 MB layer can hold a million
    empty files: the archive's size says nothing.  Both bounds count every
    layer of one image together (files deleted by a later layer still count:
    they were written).  An admin changes them with the environment of
    vdsmd/supervdsmd (``VDSM_CONTAINER_IMAGE_MAX_BYTES``,
    ``VDSM_CONTAINER_IMAGE_MAX_ENTRIES``).
    """

    max_bytes: int = 16 * 1024 ** 3     # file contents, all layers
    max_entries: int = 500000           # files, dirs, links, all layers

    ENV = {"max_bytes": "VDSM_CONTAINER_IMAGE_MAX_BYTES",
           "max_entries": "VDSM_CONTAINER_IMAGE_MAX_ENTRIES"}

    @classmethod
    def from_env(cls, environ=os.environ):
        values = {}
        for field, var in cls.ENV.items():
            raw = environ.get(var)
            if raw is None:
                continue
            try:
                values[field] = int(raw)
                if values[field] <= 0:
                    raise ValueError(raw)
            except ValueError:
                from vdsm_container import errors
                raise errors.InvalidConfiguration(
                    "must be a positive integer", key=var, value=raw) from None
        return cls(**values)


def _env_size(environ, name, default):
    """MiB, or with a unit (``spec.properties.size_mib``); 0 allowed."""
    from vdsm_container.spec import properties
    value = environ.get(name)
    if value is None:
        return default
    try:
        return properties.size_mib(name, value, allow_zero=True)
    except errors.InvalidParameter as e:
        raise errors.InvalidConfiguration(e.context.get("reason", str(e)),
                                          key=name, value=value) from None


_BYTES = re.compile(r"^([0-9]{1,15})\s*([kmg]?)(i?b)?$", re.IGNORECASE)
# Below this conmon would start the log afresh at nearly every line.
LOG_SIZE_MIN = 4096


def _env_bytes(environ, name, default):
    """Bytes, or with a unit: 65536, 64K, 10M, 1G."""
    value = environ.get(name)
    if value is None:
        return default
    m = _BYTES.match(value.strip())
    if not m:
        raise errors.InvalidConfiguration(
            "expected a size in bytes, or with a unit: 64K, 10M, 1G",
            key=name, value=value)
    size = int(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " ")
    if size < LOG_SIZE_MIN:
        raise errors.InvalidConfiguration(
            "must be at least %d bytes" % LOG_SIZE_MIN, key=name,
            value=value)
    return size

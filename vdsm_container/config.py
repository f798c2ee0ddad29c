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
"""

from __future__ import annotations

import dataclasses
import os


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
                    "must be a positive integer", key=var, value=raw)
        return cls(**values)

"""The contract every runtime driver follows.

Modelled on OpenStack Nova's ``nova/virt/driver.py``: one class documents
the whole contract, method by method, and a declarative ``capabilities``
dict says what a driver can do, so that features are advertised and verbs
refused from one place.

A driver acts on one container at a time, named by its ``Bundle``
(``vdsm_container.bundle``), which owns every path the container uses.  The
rules for every driver:

- ``start`` either leaves a running, supervised container whose process
  outlives the caller, or raises; on raising it has removed whatever it
  created (the caller still calls ``cleanup``, which must then be a no-op).
- ``cleanup`` and ``stop`` are idempotent and never raise for a container
  that is already gone.
- ``state`` never blocks for long and never changes anything.
- Errors are vdsm errors (``vdsm_container.errors``), never bare
  CalledProcessError, so vdsm reports them with a code.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from vdsm_container.runtimes import watch as watches

# Runtime states, as ``runc state`` names them, plus GONE: the runtime has
# no record of the container.
CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
GONE = "gone"


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a driver can run containers on this host, and why not."""

    name: str
    available: bool
    reason: str = ""
    version: Optional[str] = None
    #: Its probe has not ended yet (``probecache``): neither usable nor not.
    probing: bool = False

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RuntimeState:
    """What the runtime says of one container."""

    status: str
    pid: Optional[int] = None
    exit_code: Optional[int] = None     # once STOPPED, when known
    oom_killed: bool = False


class Driver:
    """Base class: a runtime that can run OCI-like containers."""

    #: The value of the ``containerType`` custom property.
    name = None

    #: What the driver supports.  ``Container`` refuses, before it touches
    #: the host, a VM that asks for what its driver lacks.
    capabilities = {
        "pause": False,       # freeze/thaw the container's processes
        "nics": False,        # join a prepared network namespace
        "volumes": False,     # bind-mount host directories
        "rootfs": True,       # runs an unpacked image rootfs (the cache)
        "userns": False,      # runs in a user namespace (containerUserns)
        "console": False,     # a terminal behind Engine's console socket
    }

    #: The runtime's own network stack takes the namespace's addresses
    #: when the container starts (runsc: ``host.netstack``).
    owns_addresses = False

    def __init__(self, paths):
        self.paths = paths

    @classmethod
    def probe(cls, paths):
        """Return an ``Availability``: binary found, self-check passed."""
        raise NotImplementedError

    def prepare(self, bundle, spec, image, mounts=(), netns=None,
                blkio=None, id_map=None):
        """Write what the runtime needs to start ``spec`` from ``image``.

        ``bundle.rootfs`` is already mounted; ``mounts`` are OCI mount dicts
        of the container's volumes; ``netns`` a network namespace path;
        ``blkio`` the OCI ``blockIO`` limits (``blockio.resources``);
        ``id_map`` = (host base, size) runs it in a user namespace.
        """
        raise NotImplementedError

    def start(self, bundle):
        """Start the prepared container supervised; return its pid."""
        raise NotImplementedError

    def state(self, bundle):
        """The container's ``RuntimeState``."""
        raise NotImplementedError

    def exit_file(self, bundle):
        """A file that appears when the container ends (a supervisor's
        exit status), or None when the runtime has none."""
        return None

    def watch(self, bundle, state):
        """A cheap tell (``runtimes.watch``) that the container, found
        RUNNING in ``state``, may have ended, so that the status round
        asks ``state`` only then; None when there is none: then every
        status check asks ``state``.  The exit file, if there is one."""
        path = self.exit_file(bundle)
        return watches.ExitFile(path) if path else None

    def stop(self, bundle, timeout):
        """SIGTERM, then SIGKILL after ``timeout`` seconds; wait for exit."""
        raise NotImplementedError

    def kill(self, bundle, signal):
        """Send ``signal`` to the container's init process."""
        raise NotImplementedError

    def pause(self, bundle):
        raise NotImplementedError

    def resume(self, bundle):
        raise NotImplementedError

    def cgroup_path(self, bundle):
        """The container's cgroup, relative to the hierarchy root, where
        the host really put it (systemd nests slices: see
        ``stats.cgroups``); None if it can't be known."""
        raise NotImplementedError

    def cleanup(self, bundle):
        """Remove the runtime's record of the container (idempotent)."""
        raise NotImplementedError

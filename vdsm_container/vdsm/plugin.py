"""Install vdsm-container into a running vdsm.

vdsm has no plugin entry point, so ``install()`` wires the plugin into the
few places the feature page names, leaving every VM flow as it was:

- ``clientIF.createVm`` (lib/vdsm/clientIF.py) builds ``vm.Vm(self,
  vmParams, vmRecover)`` through the module-level name ``Vm``; we replace that
  name with a factory that returns a ``VdsmContainer`` when the domain XML's
  custom properties carry ``containerType``, and vdsm's own ``Vm`` otherwise.
- ``clientIF.createVm`` waits, for a container VM whose runtime is still
  being probed, before it takes ``vm_start_stop_lock`` (``vmcontainer.
  await_runtime``), so that no plain VM waits with it.
- ``recovery.all_domains`` (lib/vdsm/virt/recovery.py) recovers libvirt
  domains; after it we recover containers from their state files into
  ``cif.vmContainer``.
- ``caps.get`` (lib/vdsm/host/caps.py) gets ``containers`` and
  ``containers_<runtime>`` in ``additionalFeatures``, the way gluster's
  features are added, from the runtimes' probes as they end (``probing``:
  they run in the background on the root side and never hold vdsm's
  start-up; a verdict is kept per runtime binary and kernel).
- A sampler thread feeds container stats every ``vm_sample_interval``
  (15 s, lib/vdsm/common/config.py.in) and checks their status every
  ``STATUS_INTERVAL`` seconds, sending ``|virt|VM_status|<vmId>`` events
  through ``cif.notify`` when one changes (as ``Vm._notify`` does).

With no runtime on the host, or none usable, ``install()`` changes
nothing at all: vdsm behaves exactly as without the plugin (opt-in).

This module, ``vm`` and ``supervdsm_api`` import vdsm; the rest of the
package does not.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from vdsm import clientIF as _clientif
from vdsm.host import caps as _caps
from vdsm.virt import recovery as _recovery

from vdsm_container import config
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes import versions
from vdsm_container.vdsm import caps
from vdsm_container.vdsm import probing
from vdsm_container.vdsm import vmcontainer
from vdsm_container.vdsm.supervdsm import SupervdsmBackend
from vdsm_container.vdsm.vm import VdsmContainer

log = logging.getLogger(__name__)

STATUS_INTERVAL = 2.0


class Plugin:
    """What ``install`` set up: kept so that ``uninstall`` can undo it."""

    def __init__(self, backend, availability):
        self.backend = backend
        self.runtimes = probing.Runtimes(backend, availability,
                                         notify=_notify_engine)
        self._orig_vm = _clientif.Vm
        self._orig_create_vm = _clientif.clientIF.createVm
        self._orig_all_domains = _recovery.all_domains
        self._orig_caps_get = _caps.get
        self._stop = threading.Event()
        self._thread = None
        self._recovered = False

    def vm_factory(self, cif, params, recover=False):
        """clientIF's ``Vm``: a VdsmContainer for container VMs."""
        if not vmcontainer.wants_container(params):
            return self._orig_vm(cif, params, recover)
        # Under createVm's vm_start_stop_lock: no wait here, the probe was
        # waited for before (create_vm).
        return vmcontainer.make_container(VdsmContainer, cif, params,
                                          self.backend, self.runtimes,
                                          probe_wait=0)

    def create_vm_wrapper(self):
        """clientIF.createVm, waiting for a container's runtime probe
        before it takes its lock (``vmcontainer.await_runtime``)."""
        orig, runtimes = self._orig_create_vm, self.runtimes

        def createVm(cif, vmParams, vmRecover=False):
            vmcontainer.await_runtime(vmParams, runtimes, vmRecover)
            return orig(cif, vmParams, vmRecover)
        return createVm

    @property
    def availability(self):
        return self.runtimes.availability

    @property
    def features(self):
        return self.runtimes.features()

    def all_domains(self, cif):
        """Recovery at clientIF start: recover, then sample.

        vdsm calls this again every 5 s while a later step of its recovery
        fails (``function.retry(_recoverExistingVms)``; with no storage,
        ``_waitForStoragePool`` always does), its API serving meanwhile:
        containers are recovered once, as their records can only be older
        than what this vdsm already holds.
        """
        self._orig_all_domains(cif)
        if not self._recovered:
            self._recovered = vmcontainer.recover(
                VdsmContainer, cif, self.backend) is not None
        if self._thread is None:
            self.start_sampler(cif, _sample_interval())

    def caps_get(self, *args, **kwargs):
        result = self._orig_caps_get(*args, **kwargs)
        result.setdefault("additionalFeatures", []).extend(self.features)
        return result

    def start_sampler(self, cif, sample_interval):
        self._thread = threading.Thread(
            target=self._sample_loop, args=(cif, sample_interval),
            name="ctr/sampler", daemon=True)
        self._thread.start()

    def _sample_loop(self, cif, sample_interval):
        ticks = max(1, int(sample_interval / STATUS_INTERVAL))
        n = 0
        while not self._stop.wait(STATUS_INTERVAL):
            n += 1
            take_sample = n % ticks == 0
            t0, c0 = time.monotonic(), time.thread_time()
            count = vmcontainer.sample_all(cif, self.backend,
                                           take_sample=take_sample)
            elapsed = time.monotonic() - t0
            # One line per round, at DEBUG: what a round costs this thread
            # (bench-scale reads it); an admin sees a round that no longer
            # fits its interval at WARNING.
            log.debug("%s round: %d containers in %.3f s, %.3f s CPU",
                      "sampling" if take_sample else "status", count,
                      elapsed, time.thread_time() - c0)
            if elapsed > STATUS_INTERVAL:
                log.warning("Observing %d containers took %.1f s, longer "
                            "than the %.0f s status interval", count,
                            elapsed, STATUS_INTERVAL)

    def stop(self):
        self._stop.set()
        self.runtimes.stop()


_plugin = None


def backend_for(paths):
    """Where the root work runs: here when vdsm is root, else supervdsmd."""
    if os.geteuid() == 0:
        return HostBackend(paths)
    return SupervdsmBackend(paths)


def install(paths=None, availability=None, cif=None, sample_interval=None,
            backend=None):
    """Wire the plugin into vdsm; return the Plugin, or None (opt-in).

    Called once at vdsm start-up, before clientIF recovers VMs; the sampler
    starts after recovery, or at once when a built ``cif`` is given.  The
    runtimes' self-checks run where root is (supervdsmd when vdsm is not
    root), in the background: this takes the verdicts kept and ``probing``
    for the others, at once (``runtimes.probecache``).  Whatever goes
    wrong there leaves the plugin off with the reason logged, and vdsm
    starts as it would without it.
    """
    global _plugin
    if _plugin is not None:
        return _plugin
    paths = paths or config.Paths.from_env()
    backend = backend or backend_for(paths)
    if availability is None:
        try:
            availability = backend.probe()
        except Exception as e:
            log.warning("Container runtimes could not be probed (%s): "
                        "plugin inactive", e)
            return None
    plugin = Plugin(backend, availability)
    if not plugin.features:
        log.info("No container runtime usable here (%s): plugin inactive",
                 "; ".join("%s: %s" % (n, a.reason)
                           for n, a in availability.items()))
        return None
    _clientif.Vm = plugin.vm_factory
    _clientif.clientIF.createVm = plugin.create_vm_wrapper()
    _recovery.all_domains = plugin.all_domains
    _caps.get = plugin.caps_get
    _plugin = plugin
    log.info("Container support enabled: %s%s", ", ".join(plugin.features),
             "; probing: %s" % ", ".join(plugin.runtimes.probing())
             if plugin.runtimes.probing() else "")
    plugin.runtimes.start()
    _log_host(paths, plugin.runtimes)
    if cif is not None:
        plugin.start_sampler(cif, sample_interval or _sample_interval())
    return plugin


def uninstall():
    """Undo ``install`` (tests, and a clean shutdown)."""
    global _plugin
    if _plugin is None:
        return
    _plugin.stop()
    _clientif.Vm = _plugin._orig_vm
    _clientif.clientIF.createVm = _plugin._orig_create_vm
    _recovery.all_domains = _plugin._orig_all_domains
    _caps.get = _plugin._orig_caps_get
    _plugin = None


def _log_host(paths, runtimes):
    """Say in vdsm.log which runtime and tool versions run here and the
    writable layer's default as it applies (``caps.disk_size``): what an
    admin reading a failure needs first.  Never a reason not to start, nor
    a wait for a probe: with some still running, the versions are logged
    again by a thread once they end."""
    try:
        tools = versions.tools()
        log.info("Container tool versions: %s", versions.summary(
            runtimes.availability, tools))
        size = caps.disk_size(paths)
        log.info("Container writable layer default: %d MiB (configured "
                 "%d MiB; storage filesystem of %s: %d MiB)",
                 size["defaultMiB"], size["configuredMiB"],
                 paths.storage_dir, size["storageFilesystemMiB"])
        if runtimes.probing():
            threading.Thread(target=_log_versions_probed,
                             args=(runtimes, tools), name="ctr/versions",
                             daemon=True).start()
    except Exception as e:
        log.warning("Container host details could not be read: %s", e)


def _log_versions_probed(runtimes, tools):
    runtimes.wait_all(probing.CREATE_WAIT)
    log.info("Container tool versions: %s", versions.summary(
        runtimes.availability, tools))


def _notify_engine(event_id):
    """``cif.notify``, once clientIF is there (lib/vdsm/clientIF.py
    ``clientIF._instance``; ``getInstance`` would try to build it)."""
    cif = _clientif.clientIF._instance
    if cif is not None:
        cif.notify(event_id)


def _sample_interval():
    try:
        from vdsm.config import config as vdsm_config
        return vdsm_config.getint("vars", "vm_sample_interval")
    except Exception:
        return 15

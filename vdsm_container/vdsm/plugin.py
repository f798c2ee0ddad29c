"""Install vdsm-container into a running vdsm.

vdsm has no plugin entry point, so ``install()`` wires the plugin into the
few places the feature page names, leaving every VM flow as it was:

- ``clientIF.createVm`` (lib/vdsm/clientIF.py) builds ``vm.Vm(self,
  vmParams, vmRecover)`` through the module-level name ``Vm``; we replace that
  name with a factory that returns a ``VdsmContainer`` when the domain XML's
  custom properties carry ``containerType``, and vdsm's own ``Vm`` otherwise.
- ``recovery.all_domains`` (lib/vdsm/virt/recovery.py) recovers libvirt
  domains; after it we recover containers from their state files into
  ``cif.vmContainer``.
- ``caps.get`` (lib/vdsm/host/caps.py) gets ``containers`` and
  ``containers_<runtime>`` in ``additionalFeatures``, computed once at
  install (vdsm start-up), the way gluster's features are added.
- A sampler thread feeds container stats every ``vm_sample_interval``
  (15 s, lib/vdsm/common/config.py.in) and checks their status every
  ``STATUS_INTERVAL`` seconds, sending ``|virt|VM_status|<vmId>`` events
  through ``cif.notify`` when one changes (as ``Vm._notify`` does).

With no usable runtime on the host ``install()`` changes nothing at all:
vdsm behaves exactly as without the plugin (opt-in).

This module imports vdsm; the rest of the package does not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from vdsm import clientIF as _clientif
from vdsm.common import response
from vdsm.host import caps as _caps
from vdsm.virt import recovery as _recovery
from vdsm.virt import vm as _vm

from vdsm_container.vdsm import caps
from vdsm_container.vdsm import vmcontainer as clientif
from vdsm_container import config
from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.vdsm import privileged
from vdsm_container import runtimes
from vdsm_container.stats import vmstats
from vdsm_container.container import Container

log = logging.getLogger("vdsm_container.vdsm_plugin")

STATUS_INTERVAL = 2.0


class VdsmContainer(Container, _vm.Vm):
    """A Container that *is* a vdsm Vm, for vdsm code that checks.

    ``Vm.__init__`` is never called: it opens a libvirt connection and
    builds devices from the domain XML, neither of which a container has.
    Container's methods come first in the MRO, and every VM verb API.py
    calls is defined by Container (served, or refused by ``verbs``), so no
    libvirt-bound Vm method is reached through the API.
    """

    def __init__(self, spec, paths=None, cif=None, **kwargs):
        Container.__init__(self, spec, paths=paths, cif=cif, **kwargs)
        self.log = logging.getLogger("virt.vm.container")

    # Everything that needs root goes through ``privileged``: in-process
    # when vdsm runs as root, through supervdsm otherwise.

    def _transport(self):
        if os.geteuid() == 0:
            return privileged.create, privileged.call
        from vdsm.common import supervdsm
        proxy = supervdsm.getProxy()
        return proxy.vdsm_container_create, proxy.vdsm_container_call

    def _apply(self, out):
        """Take the privileged side's state; send an event if it changed."""
        new = out.get("state")
        if new:
            before = self.lastStatus
            self._state.update(new)
            if self.lastStatus != before:
                self._state["statusTime"] = vmstats.status_time()
                self.send_status_event()
        if out.get("error"):
            raise errors.from_info(out["error"])
        return out.get("result")

    def _call(self, verb, *args, **kwargs):
        _, call = self._transport()
        return self._apply(call(self.id, verb, args, kwargs,
                                dataclasses.asdict(self.paths)))

    def run(self):
        """``Vm.run``: validate, start in a thread, answer at once."""
        self._check_supported()
        threading.Thread(target=self._create_in_background,
                         name="ctr/" + self.id[:8], daemon=True).start()
        status = self.status()
        status["xml"] = self.xml
        return response.success(vmList=status)

    def _create_in_background(self):
        create, _ = self._transport()
        try:
            self._apply(create(self.xml, dataclasses.asdict(self.paths)))
        except Exception as e:
            if self.lastStatus != constants.DOWN:
                self.setDownStatus(constants.ERROR, constants.GENERIC_ERROR,
                                   str(e))
            log.error("Container %s failed to start: %s", self.id, e)

    def refresh(self):
        try:
            seen = self._call("refresh") or {}
        except errors.NoSuchVM:
            return self.lastStatus  # destroyed meanwhile, or never started
        self._net = seen.get("network") or {}
        self._guest = seen.get("guest") or {}
        return self.lastStatus

    def sample_network(self):
        pass    # refresh brought it from the privileged side

    def _release_host(self, gracefulAttempts):
        self._call("destroy", gracefulAttempts)

    def shutdown(self, delay=None, message=None, reboot=False, timeout=None,
                 force=False):
        return self._call("shutdown", reboot=reboot)

    def pause(self):
        return self._call("pause")

    def cont(self):
        return self._call("cont")

    def reset(self):
        return self._call("reset")


class Plugin:
    """What ``install`` set up: kept so that ``uninstall`` can undo it."""

    def __init__(self, paths, availability):
        self.paths = paths
        self.availability = availability
        self.features = caps.additional_features(availability)
        self._orig_vm = _clientif.Vm
        self._orig_all_domains = _recovery.all_domains
        self._orig_caps_get = _caps.get
        self._stop = threading.Event()
        self._thread = None

    def vm_factory(self, cif, params, recover=False):
        """clientIF's ``Vm``: a VdsmContainer for container VMs."""
        if not clientif.wants_container(params):
            return self._orig_vm(cif, params, recover)
        return clientif.make_container(VdsmContainer, cif, params,
                                       self.paths, self.availability)

    def all_domains(self, cif):
        """Recovery runs once at clientIF start: recover, then sample."""
        self._orig_all_domains(cif)
        clientif.recover(VdsmContainer, cif, self.paths)
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
            clientif.sample_all(cif, take_sample=(n % ticks == 0))

    def stop(self):
        self._stop.set()


_plugin = None


def install(paths=None, availability=None, cif=None, sample_interval=None):
    """Wire the plugin into vdsm; return the Plugin, or None (opt-in).

    Called once at vdsm start-up, before clientIF recovers VMs; the sampler
    starts after recovery, or at once when a built ``cif`` is given.
    """
    global _plugin
    if _plugin is not None:
        return _plugin
    paths = paths or config.Paths.from_env()
    if availability is None:
        availability = runtimes.probe(paths)
    plugin = Plugin(paths, availability)
    if not plugin.features:
        log.info("No container runtime usable here (%s): plugin inactive",
                 "; ".join("%s: %s" % (n, a.reason)
                           for n, a in availability.items()))
        return None
    _clientif.Vm = plugin.vm_factory
    _recovery.all_domains = plugin.all_domains
    _caps.get = plugin.caps_get
    _plugin = plugin
    log.info("Container support enabled: %s", ", ".join(plugin.features))
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
    _recovery.all_domains = _plugin._orig_all_domains
    _caps.get = _plugin._orig_caps_get
    _plugin = None


def _sample_interval():
    try:
        from vdsm.config import config as vdsm_config
        return vdsm_config.getint("vars", "vm_sample_interval")
    except Exception:
        return 15

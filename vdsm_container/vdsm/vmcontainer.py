"""The containers among clientIF's VMs: create, sample, recover.

Free of vdsm imports, so tests drive it with a small clientIF double.  A
clientIF, for these functions, is what lib/vdsm/clientIF.py's clientIF
offers: ``vmContainer`` (vmId -> Vm), ``vm_container_lock``, ``getVMs()``
and ``notify(event_id, params)``.
"""

from __future__ import annotations

import contextlib
import logging
import time

from vdsm_container import errors
from vdsm_container.container import Container
from vdsm_container.host.admission import check_supported
from vdsm_container.spec import domxml

log = logging.getLogger("vdsm_container.vdsm.vmcontainer")


def wants_container(params):
    """True when VM.create's params describe a container VM."""
    xml = params.get("_srcDomXML") or params.get("xml")
    return bool(xml) and domxml.is_container(xml)


def await_runtime(params, runtimes, recover=False):
    """Before clientIF's ``createVm`` takes its ``vm_start_stop_lock``
    (lib/vdsm/clientIF.py ``createVm``, which calls ``Vm`` under it, as
    API.py's ``VM.destroy`` takes it for every VM): wait there for the
    probe of the runtime a container VM asks for (``probing.Runtimes.
    wait_for``), so that no plain VM's create or destroy waits behind it.
    A VM that is no container, or whose XML does not parse (the factory
    says why), goes on at once."""
    if recover or not wants_container(params) or "_srcDomXML" in params:
        return
    try:
        spec = domxml.parse(params["xml"])
    except Exception:
        return
    runtimes.wait_for(spec.runtime, vm_id=spec.vm_id)


def make_container(cls, cif, params, backend, availability, probe_wait=None):
    """Build the ``cls`` (a Container) for VM.create's ``params``.

    Refuses an incoming migration (containers never migrate), what the
    runtime can't do, and a runtime that the probe found unusable, with
    vdsm's errors, before anything touches the host.  ``availability`` is
    ``{runtime: Availability}`` or a ``probing.Runtimes``: a runtime still
    being probed is waited for (``Runtimes.wait_for``; ``probe_wait``
    seconds, or its default), or refused.
    """
    if "_srcDomXML" in params or params.get("migrationDest"):
        raise errors.MigrationError("containers cannot be migrated",
                                    vmId=params.get("vmId"))
    ctr = cls.from_xml(params["xml"], backend=backend, cif=cif)
    check_supported(ctr.spec)
    if hasattr(availability, "wait_for"):
        avail = availability.wait_for(ctr.spec.runtime, probe_wait,
                                      vm_id=ctr.id)
    else:
        avail = availability.get(ctr.spec.runtime)
    if avail is not None and not avail.available:
        raise errors.CannotCreateVM(
            "runtime %s is not usable on this host: %s"
            % (ctr.spec.runtime, avail.reason), vmId=ctr.id)
    return ctr


def containers(cif):
    return [v for v in cif.getVMs().values() if isinstance(v, Container)]


def sample_all(cif, backend, take_sample=True):
    """One sampler round: one backend call observes every container; each
    follows its container (sending events) and keeps the sample.  Returns
    how many containers it observed."""
    ctrs = containers(cif)
    if not ctrs:
        return 0
    try:
        seen = backend.observe([c.id for c in ctrs], sample=take_sample)
    except (EOFError, ConnectionError) as e:
        # supervdsmd went away during the call (a restart): the next round,
        # a status interval later, reconnects (vdsm/supervdsm.py).
        log.warning("Observing %d containers: connection to supervdsmd lost "
                    "(%r); the next round tries again", len(ctrs), e)
        return len(ctrs)
    except Exception:
        log.exception("Observing %d containers failed", len(ctrs))
        return len(ctrs)
    for ctr in ctrs:
        try:
            ctr.apply(seen.get(ctr.id) or {"gone": True})
        except Exception:
            log.exception("Following container %s failed", ctr.id)
    return len(ctrs)


def recover(cls, cif, backend):
    """Bring back the containers of an earlier vdsm into ``vmContainer``.

    Mirrors lib/vdsm/virt/recovery.py ``all_domains``, with the backend's
    records in place of libvirt's domain list.  Never raises: a failure
    here must not keep vdsm in recovery (it retries recovery forever and
    answers every verb with "Recovering"), so an unreadable record is a VM
    Down with the reason, and a backend that can't be reached is logged.

    Records are read and their VMs registered under clientIF's
    ``vm_start_stop_lock``, the lock API.py's ``VM.destroy`` and
    ``clientIF.createVm`` hold: vdsm runs recovery again (clientIF
    ``_recoverExistingVms`` under ``function.retry``, every 5 s while a
    later step fails, e.g. ``_waitForStoragePool`` with no storage) while
    the API already serves, and a destroy that ended between the read and
    the registration left the destroyed VM registered, listed Up forever.

    Returns the ids of the containers it registered, None when their
    records could not be listed (a later recovery should try again).
    """
    t0 = time.monotonic()
    lock = getattr(cif, "vm_start_stop_lock", None) or \
        contextlib.nullcontext()
    recovered = []
    with lock:
        try:
            ctrs = cls.load_all(backend=backend, cif=cif)
        except Exception:
            log.exception("recovery: containers could not be listed")
            return None
        for ctr in ctrs:
            with cif.vm_container_lock:
                if ctr.id in cif.vmContainer:
                    continue
                cif.vmContainer[ctr.id] = ctr
            recovered.append(ctr)
    # Their status now; their stats with the sampler's next round (vdsm's
    # recovery, too, leaves stats to the sampling that follows).
    sample_all(cif, backend, take_sample=False)
    for ctr in recovered:
        log.info("recovery: container %s is %s", ctr.id, ctr.lastStatus)
    log.info("recovery: %d containers in %.3f s", len(recovered),
             time.monotonic() - t0)
    return [c.id for c in recovered]

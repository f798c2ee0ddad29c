"""What the plugin does inside vdsm's clientIF, free of vdsm imports.

``vdsm_plugin`` hooks these into a real vdsm; tests drive them with a
small clientIF double.  A clientIF, for these functions, is what
lib/vdsm/clientIF.py's clientIF offers: ``vmContainer`` (vmId -> Vm),
``vm_container_lock``, ``getVMs()`` and ``notify(event_id, params)``.
"""

from __future__ import annotations

import logging

from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.container import Container

log = logging.getLogger("vdsm_container.clientif")


def wants_container(params):
    """True when VM.create's params describe a container VM."""
    xml = params.get("_srcDomXML") or params.get("xml")
    return bool(xml) and domxml.is_container(xml)


def make_container(cls, cif, params, paths, availability):
    """Build the ``cls`` (a Container) for VM.create's ``params``.

    Refuses an incoming migration (containers never migrate) and a runtime
    that the start-up probe found unusable, with vdsm's errors, before
    anything touches the host.
    """
    if "_srcDomXML" in params or params.get("migrationDest"):
        raise errors.error(errors.MigrationError,
                           "containers cannot be migrated",
                           vmId=params.get("vmId"))
    ctr = cls.from_xml(params["xml"], paths=paths, cif=cif)
    avail = availability.get(ctr.spec.runtime)
    if avail is not None and not avail.available:
        raise errors.error(errors.CreateError, "runtime %s is not usable on "
                           "this host: %s" % (ctr.spec.runtime, avail.reason),
                           vmId=ctr.id)
    return ctr


def containers(cif):
    return [v for v in cif.getVMs().values() if isinstance(v, Container)]


def sample_all(cif, take_sample=True):
    """One sampler round: refresh status (sends events), sample cgroups."""
    for ctr in containers(cif):
        try:
            ctr.refresh()
            if take_sample:
                ctr.sample()
        except Exception:
            log.exception("Sampling container %s failed", ctr.id)


def recover(cls, cif, paths):
    """Bring back the containers of an earlier vdsm into ``vmContainer``.

    Mirrors lib/vdsm/virt/recovery.py ``all_domains``, with state files in
    place of libvirt's domain list.
    """
    recovered = []
    for ctr in cls.load_all(paths=paths, cif=cif):
        if ctr.id in cif.vmContainer:
            continue
        ctr.refresh()
        ctr.sample()
        with cif.vm_container_lock:
            cif.vmContainer[ctr.id] = ctr
        recovered.append(ctr.id)
        log.info("recovery: container %s is %s", ctr.id, ctr.lastStatus)
    return recovered

"""Runtime drivers, by the name admins put in ``containerType``.

A plain dict from name to module, as ovirt-imageio keeps its backends: each
module offers a ``Driver`` class with the contract of ``base.Driver``.
``probe`` tells which can run on this host, and for those that can't, why;
``probecache`` keeps its verdicts per binary and kernel and runs it in the
background for vdsm.
"""

from __future__ import annotations


from vdsm_container import errors
from vdsm_container import probestore
from vdsm_container.runtimes import crun, rkt, runc, runsc

_modules = {
    "runc": runc,
    "crun": crun,
    "rkt": rkt,
    "runsc": runsc,
}


def names():
    return tuple(_modules)


def probe(paths, only=None):
    """``{name: Availability}`` for every known runtime (or those in
    ``only``)."""
    return {name: mod.Driver.probe(paths) for name, mod in _modules.items()
            if only is None or name in only}


def probe_cached(paths, wait=0.0):
    """``probe``'s answer without waiting for it (``probecache``): kept
    verdicts, ``probing`` for the runtimes being probed in the background
    (up to ``wait`` seconds are waited for them)."""
    from vdsm_container.runtimes import probecache
    return probecache.prober(paths).status(wait)


def capabilities(name):
    """What runtime ``name``'s driver can do (``base.Driver.capabilities``);
    InvalidParameter if there is no such runtime."""
    return _module(name).Driver.capabilities


def why_not(name):
    """``{feature: " (why)"}``: the reasons runtime ``name``'s driver gives
    for what its ``capabilities`` lack, where it has its own."""
    return getattr(_module(name).Driver, "why_not", {})


def installed(name):
    """Whether runtime ``name``'s program is on this host at all."""
    return program(name) is not None


def program(name):
    """The path of runtime ``name``'s program, None if it has none here
    (rkt's may be set by VDSM_CONTAINER_RKT, and may then be absent)."""
    _module(name)
    return probestore.program(name)


def _module(name):
    try:
        return _modules[name]
    except KeyError:
        raise errors.invalid("containerType", name,
                             "unknown runtime") from None


def driver_class(name):
    """Runtime ``name``'s driver class."""
    return _module(name).Driver


def driver(name, paths):
    """The driver for ``name``; InvalidParameter if there is none."""
    return _module(name).Driver(paths)

"""Runtime drivers, by the name admins put in ``containerType``.

A plain dict from name to module, as ovirt-imageio keeps its backends: each
module offers a ``Driver`` class with the contract of ``base.Driver``.
``probe`` tells which can run on this host, and for those that can't, why;
vdsm computes it once at start-up (capabilities), the command on each call.
"""

from __future__ import annotations

from vdsm_container import errors
from vdsm_container.runtimes import crun, rkt, runc

_modules = {
    "runc": runc,
    "crun": crun,
    "rkt": rkt,
}


def names():
    return tuple(_modules)


def probe(paths):
    """``{name: Availability}`` for every known runtime."""
    return {name: mod.Driver.probe(paths) for name, mod in _modules.items()}


def driver(name, paths):
    """The driver for ``name``; InvalidParameter if there is none."""
    try:
        mod = _modules[name]
    except KeyError:
        raise errors.invalid("containerType", name, "unknown runtime")
    return mod.Driver(paths)

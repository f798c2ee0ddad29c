"""The container verbs supervdsmd runs for vdsmd (the root side).

supervdsmd imports every module of the ``vdsm.supervdsm_api`` package and
exposes the functions marked with ``@expose`` (lib/vdsm/supervdsm_server.py
``main``; lib/vdsm/supervdsm_api/__init__.py ``expose``).  The package
installs contrib/vdsm/supervdsm_api_vdsm_container.py there as
``vdsm_container.py``; it imports this module, so ``vdsm_container``
becomes ``supervdsm.getProxy().vdsm_container``, the one entry point of
``supervdsm.SupervdsmBackend``.  It runs with supervdsmd's own paths
(``config.Paths.from_env``): what vdsmd sends is arguments, never where
root writes.

The runtimes' probes run here (they need root), in the background
(``runtimes.probecache``); when one ends, the host's marker for Engine
(``hostmark``) is brought up to date, as ``mark-host`` would have done
before vdsmd started had the verdict been known then.
"""

from __future__ import annotations

import threading

from vdsm.supervdsm_api import expose

from vdsm_container import config
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes import probecache
from vdsm_container.vdsm import caps
from vdsm_container.vdsm import hostmark
from vdsm_container.vdsm import supervdsm

_host = None
_host_lock = threading.Lock()


def _backend():
    global _host
    with _host_lock:
        if _host is None:
            paths = config.Paths.from_env()
            probecache.prober(paths, on_change=_marker_updater(paths))
            _host = HostBackend(paths)
        return _host


def _marker_updater(paths):
    def probed(name, availability, verdicts):
        capable = caps.capable(verdicts)
        if capable is not None:
            hostmark.mark(capable)
    return probed


@expose
def vdsm_container(method, *args):
    return supervdsm.serve(_backend(), method, args)

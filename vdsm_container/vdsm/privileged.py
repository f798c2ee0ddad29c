"""Container verbs, run where root is.

vdsmd runs as user vdsm; creating a container (mounts, runc, cgroups) needs
root, which vdsm gets from supervdsmd (lib/vdsm/supervdsm_server.py loads
every module of ``vdsm.supervdsm_api`` and exposes its ``@expose``
functions; lib/vdsm/common/supervdsm.py ``getProxy()`` calls them).  These
functions are what supervdsm exposes for us (``supervdsm_api.py``): each
rebuilds the Container from its state file, acts, and answers plain data
that pickles across supervdsm's socket.  vdsm errors travel as
``{'code', 'message'}`` and are raised again on vdsmd's side with the same
code (``errors.from_info``).

When the caller already is root (tests, hosts that run vdsm as root), the
same functions are called in-process: one protocol, two transports.
"""

from __future__ import annotations

from vdsm_container import config
from vdsm_container import errors
from vdsm_container.container import Container

# The verbs vdsmd may ask for, and nothing else.
VERBS = ("destroy", "shutdown", "pause", "cont", "reset", "refresh")


def _answer(ctr, result=None, error=None):
    out = {"state": dict(ctr._state), "result": result}
    out["state"].pop("xml", None)       # vdsmd has it
    if error is not None:
        out["error"] = errors.describe(error)
    return out


def create(xml, paths_dict=None):
    """Create and start the container described by Engine's ``xml``."""
    paths = config.Paths(**paths_dict) if paths_dict else \
        config.Paths.from_env()
    ctr = Container.from_xml(xml, paths=paths)
    try:
        ctr.run()
    except errors.VdsmException as e:
        return _answer(ctr, error=e)
    return _answer(ctr)


def call(vm_id, verb, args=(), kwargs=None, paths_dict=None):
    """Run ``verb`` on container ``vm_id``."""
    if verb not in VERBS:
        raise ValueError("not a container verb: %r" % verb)
    paths = config.Paths(**paths_dict) if paths_dict else \
        config.Paths.from_env()
    try:
        ctr = Container.load(vm_id, paths=paths)
        if verb != "refresh":
            ctr.refresh()
        result = getattr(ctr, verb)(*args, **(kwargs or {}))
        if verb == "refresh":
            # What vdsmd can't read itself: the container's netns.
            ctr.sample_network()
            result = {"network": ctr._net, "guest": ctr._guest}
    except errors.VdsmException as e:
        return {"state": None, "result": None, "error": errors.describe(e)}
    return _answer(ctr, result)

"""``SupervdsmBackend``: a container's root work, done by supervdsmd.

vdsmd runs as user vdsm; mounts, the runtime, cgroups and network
namespaces need root, which vdsm gets from supervdsmd
(lib/vdsm/common/supervdsm.py ``getProxy()``: each call runs an ``@expose``d
function of a ``vdsm.supervdsm_api`` module in supervdsmd).  This class
offers ``host.backend.HostBackend``'s methods and runs each there through
the one exposed function of ``supervdsm_api.py``, which hands it to
``serve``.  Both ends of that protocol are here, free of vdsm imports: a
method name from ``METHODS`` and plain arguments in; ``{"result": ...}`` or
``{"error": {"code", "message"}}`` out, the error raised again on vdsmd's
side with its code.
"""

from __future__ import annotations

import logging

from vdsm_container import errors

log = logging.getLogger("vdsm_container.vdsm.supervdsm")

# The HostBackend methods vdsmd may run as root, and no others.
METHODS = frozenset((
    "probe", "start", "save", "load", "load_all", "observe", "stop",
    "signal", "pause", "resume", "restart", "log_path",
))


def serve(backend, method, args):
    """Run ``backend.<method>(*args)`` for vdsmd (the root side)."""
    if method not in METHODS:
        return {"error": errors.invalid("method", method,
                                        "not a container verb").info()}
    try:
        return {"result": getattr(backend, method)(*args)}
    except errors.VdsmException as e:
        if not e.expected:
            log.exception("vdsm_container %s failed", method)
        return {"error": e.info()}
    except Exception as e:
        log.exception("vdsm_container %s failed", method)
        return {"error": errors.describe(e)}


def _is_reconnected(e):
    """lib/vdsm/common/supervdsm.py ``ProxyCaller``: it reconnected already
    before raising this."""
    return isinstance(e, RuntimeError) and \
        "Broken communication with supervdsm" in str(e)


def _drop_thread_connection(proxy):
    """Forget this thread's dead connection to supervdsmd.

    multiprocessing keeps one connection per thread and server address,
    shared by every proxy to that address (managers.py
    ``BaseProxy._address_to_local``) and never dropped on failure: without
    this, every later call from this thread fails on the dead socket, even
    through the new proxy ``_connect`` makes.
    """
    tls = getattr(getattr(proxy, "_svdsm", None), "_tls", None)
    try:
        del tls.connection
    except AttributeError:
        pass


class SupervdsmBackend:
    """HostBackend's methods, each one call to supervdsmd."""

    def __init__(self, paths, proxy=None):
        # vdsmd's own settings (the stop timeout); the root side uses
        # supervdsmd's paths, never these.
        self.paths = paths
        self._proxy = proxy

    def _call(self, method, *args):
        if self._proxy is None:
            from vdsm.common import supervdsm
            self._proxy = supervdsm.getProxy()
        try:
            answer = self._proxy.vdsm_container(method, *args)
        except (EOFError, OSError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and not _is_reconnected(e):
                raise
            # supervdsmd restarted (systemd Restart=always) under a live
            # vdsmd: the proxy's connection is dead.  vdsm's ProxyCaller
            # reconnects on RemoteError and raises "Broken communication";
            # a dead socket raises EOFError/OSError with no reconnect.
            # Reconnect as ProxyCaller does (``_connect``: retries for up to
            # a minute while supervdsmd comes back) and try once more.
            log.warning("supervdsm connection lost (%s): reconnecting for "
                        "%s", e, method)
            if not _is_reconnected(e):
                _drop_thread_connection(self._proxy)
                self._proxy._connect()
            answer = self._proxy.vdsm_container(method, *args)
        if "error" in answer:
            raise errors.from_info(answer["error"])
        return answer["result"]

    def probe(self):
        return self._call("probe")

    def start(self, xml):
        return self._call("start", xml)

    def save(self, vm_id, changes):
        return self._call("save", vm_id, changes)

    def load(self, vm_id):
        return self._call("load", vm_id)

    def load_all(self):
        return self._call("load_all")

    def observe(self, vm_ids, sample=False):
        return self._call("observe", list(vm_ids), sample)

    def stop(self, vm_id, timeout):
        return self._call("stop", vm_id, timeout)

    def signal(self, vm_id, signum):
        return self._call("signal", vm_id, int(signum))

    def pause(self, vm_id):
        return self._call("pause", vm_id)

    def resume(self, vm_id):
        return self._call("resume", vm_id)

    def restart(self, vm_id):
        return self._call("restart", vm_id)

    def log_path(self, vm_id):
        return self._call("log_path", vm_id)

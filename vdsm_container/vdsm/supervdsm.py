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
import socket
import threading
import time

from vdsm_container import errors

log = logging.getLogger("vdsm_container.vdsm.supervdsm")

# The HostBackend methods vdsmd may run as root, and no others.
METHODS = frozenset((
    "probe", "start", "save", "load", "load_all", "observe", "stop",
    "signal", "pause", "resume", "restart", "log_path", "update_policy",
    "release_disks",
))

# How long a call waits for a restarted supervdsmd to listen before it
# reconnects.  vdsm's ``SuperVdsmProxy._connect`` (lib/vdsm/common/
# supervdsm.py) tries three times a second apart and then panics, which
# kills vdsmd and every thread in it; supervdsmd takes longer than that to
# come back on a loaded host.  Below the 60 s an Engine call waits.
RECONNECT_WAIT = 30.0


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


def _listening(address):
    """Whether supervdsmd accepts connections at ``address`` now (a socket
    file left by a killed supervdsmd refuses them)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(address)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class SupervdsmBackend:
    """HostBackend's methods, each one call to supervdsmd."""

    def __init__(self, paths, proxy=None, address=None,
                 reconnect_wait=RECONNECT_WAIT):
        # vdsmd's own settings (the stop timeout); the root side uses
        # supervdsmd's paths, never these.
        self.paths = paths
        self._proxy = proxy
        self._address = address
        self._reconnect_wait = reconnect_wait
        self._reconnecting = threading.Lock()

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
            # Reconnect as ProxyCaller does, once supervdsmd listens again,
            # and try once more.
            log.warning("supervdsm connection lost (%s): reconnecting for "
                        "%s", e, method)
            if not _is_reconnected(e):
                _drop_thread_connection(self._proxy)
                self._reconnect(method)
            answer = self._proxy.vdsm_container(method, *args)
        if "error" in answer:
            raise errors.from_info(answer["error"])
        return answer["result"]

    def _reconnect(self, method):
        """``_connect`` the proxy once supervdsmd listens; if it does not
        within ``reconnect_wait``, fail this call instead: ``_connect``
        would panic.  One thread at a time (the sampler and Engine's calls
        find the connection dead together)."""
        if self._address is None:
            from vdsm.common import supervdsm
            self._address = supervdsm.ADDRESS
        with self._reconnecting:
            deadline = time.monotonic() + self._reconnect_wait
            while not _listening(self._address):
                if time.monotonic() >= deadline:
                    raise errors.GeneralException(
                        "supervdsmd is not listening on %s after %.0f s: "
                        "%s not done" % (self._address,
                                         self._reconnect_wait, method))
                time.sleep(0.5)
            self._proxy._connect()

    def probe(self, wait=0.0):
        return self._call("probe", wait)

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

    def update_policy(self, vm_id, policy):
        return self._call("update_policy", vm_id, policy)

    def restart(self, vm_id):
        return self._call("restart", vm_id)

    def log_path(self, vm_id):
        return self._call("log_path", vm_id)

    def release_disks(self, vm_id):
        return self._call("release_disks", vm_id)

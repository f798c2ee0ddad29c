"""The runtimes' probes: kept per runtime binary and kernel, run in the
background.

A runtime's probe runs a throwaway container (``oci.OCIDriver.self_check``);
runsc's tries KVM first, which on a host whose /dev/kvm opens but can't run
the sandbox waits ``runsc.KVM_TIMEOUT`` (10 s) before ptrace.  Run at every
vdsmd start, before vdsm listens, that held vdsm's restart up for 23 s
(issue #39), where the feature page asks that container support "never
hurts in any way the ability of a host to run VMs".  So:

- A usable verdict is kept in ``<storage_dir>/probes.json``, under a key
  that names everything the verdict depends on: the runtime's program
  (path, size, mtime, inode), its helper (conmon; systemd-nspawn for rkt),
  the kernel (``uname -r``) and this boot (``/proc/sys/kernel/random/
  boot_id``: a reboot may bring another /dev/kvm, cgroup layout or module
  set), the plugin's version and the paths the self-check uses.  A
  verdict whose key still matches is the answer, at once; any change is
  probed again.  An unusable verdict is kept by the process that probed
  (``Prober``) only.
- ``Prober.status`` never waits for a probe unless asked to: a runtime
  whose verdict is not current is ``probing`` in the answer, and its probe
  runs in a thread of this process (supervdsmd: probing needs root), one
  runtime after the other, runsc's last.
- A runtime whose program is not on the host at all is answered at once
  (its probe reads only PATH): with no runtime, nothing ever probes, and
  vdsm starts as it would without the plugin.

vdsm keeps what its host probing found the same way: lib/vdsm/host/caps.py
``get`` caches the CPU, NUMA and libvirt answers (``@cache.memoized``,
keyed by their arguments) and its ``_getFipsEnabled`` once per process;
here the key is the binary and the boot, and the cache a file, because
the answer is wanted by the next vdsmd start, before anything could probe.

``vdsm-container caps`` probes afresh (``refresh``) and stores the result:
the admin's way to redo a verdict, e.g. one a loaded host timed out.
"""

from __future__ import annotations

import logging
import threading
import time

from vdsm_container import probestore
from vdsm_container import runtimes
from vdsm_container.runtimes import base

log = logging.getLogger("vdsm_container.runtimes.probecache")

# The store (its file, its key) is ``probestore``: mark-host reads it
# before vdsmd starts, without importing the drivers.
cache_path = probestore.cache_path
key = probestore.key
load = probestore.load
_save = probestore.save


def _availability(entry):
    a = entry.get("availability") or {}
    return base.Availability(a.get("name"), bool(a.get("available")),
                             a.get("reason", ""), a.get("version"))


def probing(name, since=None):
    """The answer for a runtime whose probe has not ended yet."""
    why = "probing"
    if since is not None:
        why += " (for %.0f s, its self-check queued or running)" % max(
            0.0, time.monotonic() - since)
    return base.Availability(name, False, why, probing=True)


def cached(paths, names=None):
    """``{name: Availability or None}``: the current verdicts, None where
    there is none (never probed, or its key changed).  Runs no probe but
    a runtime's that is not installed (which only reads PATH)."""
    entries = load(paths)
    result = {}
    for name in names or runtimes.names():
        entry = entries.get(name)
        k = key(name, paths)
        if entry and entry.get("key") == k:
            result[name] = _availability(entry)
        elif k["binary"] is None:
            result[name] = runtimes.probe(paths, only=(name,))[name]
        else:
            result[name] = None
    return result


class Prober:
    """Answers ``{runtime: Availability}`` at once; probes in a thread.

    One probe at a time, in the order of ``runtimes.names()`` (runsc's,
    the slow one, last): two self-checks at once in one process share a
    container name (``oci.OCIDriver.self_check``: ``selfcheck-<pid>``)
    and its cgroup, and on a 2-core host compete with vdsm's start.

    A usable verdict is kept on disk; an unusable one only in this
    process (supervdsmd: a vdsmd restart does not probe it again, a
    supervdsmd restart does), so that a self-check that failed once (a
    loaded host, a runtime fixed in place) is not believed until the next
    reboot.
    """

    def __init__(self, paths, probe=None, on_change=None, names=None):
        self.paths = paths
        self._probe = probe or (
            lambda name: runtimes.probe(paths, only=(name,))[name])
        self.on_change = on_change
        self._names = tuple(names or runtimes.names())
        self._cond = threading.Condition()
        self._running = {}      # name -> monotonic time it was queued
        self._queue = []        # [(name, key)] for the worker
        self._worker = None
        self._unusable = {}     # name -> (key, Availability)

    def status(self, wait=0.0):
        """``{name: Availability}``; a runtime being probed is
        ``probing``.  Waits up to ``wait`` seconds for a probe to end (the
        first that ends: vdsmd takes each verdict as it comes)."""
        deadline = time.monotonic() + wait
        with self._cond:
            result = self._current()
            pending = {n for n, a in result.items() if a.probing}
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                result = self._current()
                if {n for n, a in result.items() if a.probing} != pending:
                    break
            return result

    def _current(self):
        entries = load(self.paths)
        result = {}
        for name in self._names:
            if name in self._running:
                result[name] = probing(name, self._running[name])
                continue
            k = key(name, self.paths)
            entry = entries.get(name)
            if entry and entry.get("key") == k:
                result[name] = _availability(entry)
                self._restore(name, entry)
            elif name in self._unusable and self._unusable[name][0] == k:
                result[name] = self._unusable[name][1]
            elif k["binary"] is None:
                # Not installed: its probe looks at PATH only.
                result[name] = self._probe(name)
            else:
                self._running[name] = time.monotonic()
                self._queue.append((name, k))
                result[name] = probing(name)
        if self._queue and self._worker is None:
            self._worker = threading.Thread(target=self._work,
                                            name="ctr/probe", daemon=True)
            self._worker.start()
        return result

    def _work(self):
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    return
                name, k = self._queue.pop(0)
            self._run(name, k)

    def _run(self, name, k):
        t0 = time.monotonic()
        log.info("Probing container runtime %s (%s)", name,
                 k["binary"][0] if k["binary"] else "?")
        try:
            avail = self._probe(name)
        except Exception as e:
            log.exception("Probing runtime %s failed", name)
            avail = base.Availability(name, False, "probe failed: %s" % e)
        log.info("Container runtime %s probed in %.1f s: %s%s", name,
                 time.monotonic() - t0,
                 "usable" if avail.available else "unusable",
                 ", " + avail.reason if avail.reason else "")
        with self._cond:
            try:
                _store(self.paths, {name: (k, avail)})
            except Exception as e:
                log.warning("Probe cache not written: %s", e)
            if not avail.available:
                self._unusable[name] = (k, avail)
            del self._running[name]
            # Before anyone waiting hears of it (the hook marker is in
            # the capabilities that follow).
            if self.on_change is not None:
                try:
                    self.on_change(name, avail, {
                        n: None if a.probing else a
                        for n, a in self._current().items()})
                except Exception:
                    log.exception("After probing %s", name)
            self._cond.notify_all()

    def _restore(self, name, entry):
        """What a probe leaves beside its verdict for the driver (runsc's
        platform file, in the run dir: tmpfs), put back where it is gone."""
        if name == "runsc":
            from vdsm_container.runtimes import runsc
            runsc.restore_platform(self.paths, (entry.get("extra") or {})
                                   .get("platform"))


def _store(paths, verdicts):
    """Keep ``{name: (key, Availability)}``: the usable ones on disk, an
    unusable one's earlier entry removed."""
    entries = load(paths)
    for name, (k, avail) in verdicts.items():
        if avail.available and k["binary"] is not None:
            entries[name] = {"key": k, "availability": avail.to_dict(),
                             "extra": _extra(name, paths)}
        else:
            entries.pop(name, None)
    _save(paths, entries)


def _extra(name, paths):
    if name == "runsc":
        from vdsm_container.runtimes import runsc
        return {"platform": runsc.recorded_platform(paths)}
    return {}


def refresh(paths, names=None):
    """Probe ``names`` (every runtime) now, in this thread, and keep the
    verdicts: ``{name: Availability}``."""
    names = tuple(names or runtimes.names())
    verdicts = {}
    for name in names:
        k = key(name, paths)
        verdicts[name] = (k, runtimes.probe(paths, only=(name,))[name])
    try:
        _store(paths, verdicts)
    except OSError as e:
        log.warning("Probe cache not written: %s", e)
    return {name: avail for name, (k, avail) in verdicts.items()}


_probers = {}
_probers_lock = threading.Lock()


def prober(paths, on_change=None):
    """This process's ``Prober`` for ``paths`` (one per process: the
    root side's probes run once however many ask)."""
    with _probers_lock:
        p = _probers.get(paths)
        if p is None:
            p = _probers[paths] = Prober(paths, on_change=on_change)
        return p

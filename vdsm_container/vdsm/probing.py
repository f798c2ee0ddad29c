"""vdsmd's view of the runtimes' probes, which never hold its start up.

The probes run on the root side (supervdsmd; ``runtimes.probecache``),
in the background.  At start-up ``plugin.install`` takes what the root
side answers at once: kept verdicts, and ``probing`` for a runtime whose
verdict is not current (a new binary or kernel, a reboot).  While one is
probing, a thread here (``ctr/probe``) asks again, each ask waiting up to
``POLL`` seconds on the root side for a probe to end, and keeps the
answers in ``Runtimes``:

- Host.getCapabilities lists ``containers_<runtime>`` once its probe ends
  usable (``caps.additional_features``), and vdsm.log says which runtimes
  are still being probed and, when each ends, what it found.  When the
  features change, Engine is told to read the capabilities again with the
  event vdsm sends when the host's networks change under it
  (``cif.notify('|net|host_conn|no_id')``: lib/vdsm/network/
  dhcp_monitor.py ``_dhcp_event_handler``, bond_monitor.py
  ``initialize_monitor``), on which Engine refreshes them.
- A VM.create for a runtime still probing waits for its verdict, up to
  ``CREATE_WAIT`` seconds (under Engine's 60 s call timeout, vdsConnection
  Timeout), then is refused with CannotCreateVM saying so
  (``vmcontainer.make_container``).

Free of vdsm imports, so tests drive it with a backend double.
"""

from __future__ import annotations

import logging
import threading
import time

from vdsm_container import errors
from vdsm_container.vdsm import caps

log = logging.getLogger("vdsm_container.vdsm.probing")

#: How long one ask of the root side waits for a probe to end.
POLL = 5.0
#: How long a VM.create waits for its runtime's probe: what is left of
#: Engine's 60 s for the create itself must stay ample.
CREATE_WAIT = 30.0
#: After a failed ask, the next one waits this long (supervdsmd restarting).
RETRY = 2.0

HOST_CONN_EVENT = "|net|host_conn|no_id"


class Runtimes:
    """``{runtime: Availability}`` as the root side last answered."""

    def __init__(self, backend, availability, notify=None):
        self.backend = backend
        self._cond = threading.Condition()
        self._availability = dict(availability)
        self._notify = notify
        self._thread = None
        self._stop = threading.Event()

    @property
    def availability(self):
        with self._cond:
            return dict(self._availability)

    def features(self):
        return caps.additional_features(self.availability)

    def probing(self):
        return caps.probing(self.availability)

    def start(self):
        """Follow the probes still running, if any, in a thread."""
        pending = self.probing()
        if not pending:
            return
        log.info("Container runtimes still being probed: %s (their "
                 "features follow when each ends)", ", ".join(pending))
        self._thread = threading.Thread(target=self._follow,
                                        name="ctr/probe", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _follow(self):
        while not self._stop.is_set() and self.probing():
            try:
                answer = self.backend.probe(POLL)
            except Exception as e:
                log.warning("Asking for the runtimes' probes failed (%s): "
                            "asking again", e)
                self._stop.wait(RETRY)
                continue
            self.update(answer)

    def update(self, answer):
        """Keep the root side's ``answer``; log and tell what changed."""
        with self._cond:
            before = self._availability
            features = caps.additional_features(before)
            self._availability = dict(before, **answer)
            self._cond.notify_all()
            now = dict(self._availability)
        for name, a in sorted(now.items()):
            was = before.get(name)
            if was is not None and was.probing and not a.probing:
                log.info("Container runtime %s probed: %s%s", name,
                         "usable" if a.available else "unusable",
                         ", " + a.reason if a.reason else "")
        if caps.additional_features(now) != features:
            log.info("Container features now: %s",
                     ", ".join(caps.additional_features(now)) or "none")
            if self._notify is not None:
                try:
                    self._notify(HOST_CONN_EVENT)
                except Exception as e:
                    log.warning("Engine not told the capabilities "
                                "changed: %s", e)

    def wait_all(self, timeout):
        """Wait up to ``timeout`` seconds for every probe to end."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(a.probing for a in self._availability.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def wait_for(self, name, timeout=None, vm_id=None):
        """Runtime ``name``'s Availability once its probe ended, waiting
        up to ``timeout`` seconds (``CREATE_WAIT``); None for a runtime it
        does not know.  CannotCreateVM if it is still probing then."""
        timeout = CREATE_WAIT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                a = self._availability.get(name)
                if a is None or not a.probing:
                    return a
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.CannotCreateVM(
                        "runtime %s is still being probed on this host "
                        "(%s) after %.0f s: try again later"
                        % (name, a.reason, timeout), vmId=vm_id)
                self._cond.wait(left)

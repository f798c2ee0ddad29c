"""vdsm's status of one VM: the state, its events, its record.

lib/vdsm/virt/vm.py keeps a VM's status in ``Vm._lastStatus`` with
``_set_status``/``setDownStatus`` and sends ``|virt|VM_status|<vmId>``
events through ``cif.notify`` (``Vm._notify``, ``send_status_event``).
``VmState`` does the same for a container, under one lock so that events
leave in the order of the changes, and records each change through the
backend (``CALLER_FIELDS`` of ``records``), so that another process
(vdsm after a restart, the next ``vdsm-container`` command) sees it.
``container.Container`` adds the verbs that act on the host.
"""

from __future__ import annotations

import logging
import threading

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.records import CALLER_FIELDS
from vdsm_container.stats import vmstats

log = logging.getLogger("vdsm_container.vmstate")


class VmState:
    """The status part of a Container."""

    def __init__(self, vm_id, backend, cif=None, state=None):
        self.id = vm_id
        self.backend = backend
        self.cif = cif
        # Every change of _state and its event, in order.
        self._status_lock = threading.RLock()
        self._state = dict(state or {"vmId": vm_id,
                                     "status": constants.WAIT_FOR_LAUNCH})

    @property
    def init_pid(self):
        """The container's init process on the host, once started."""
        return self._state.get("pid")

    @property
    def exit_code(self):
        return self._state.get("exitCode")

    @property
    def image(self):
        """``{"key", "ref"}`` of the cached image it runs, if any."""
        return self._state.get("image")

    @property
    def lastStatus(self):
        return self._state["status"]

    def _save(self):
        """Record the VM-state fields through the backend."""
        changes = {k: self._state[k] for k in self._state
                   if k in CALLER_FIELDS}
        try:
            self.backend.save(self.id, changes)
        except errors.NoSuchVM:
            pass    # destroyed meanwhile: nothing to record

    def _notify(self, operation, params):
        """vdsm's ``Vm._notify``: '|virt|<operation>|<vmId>' events."""
        if self.cif is not None and hasattr(self.cif, "notify"):
            self.cif.notify("|virt|%s|%s" % (operation, self.id),
                            {self.id: params})

    def send_status_event(self, **kwargs):
        with self._status_lock:
            stats = {"status": self.lastStatus}
            if self.lastStatus == constants.DOWN:
                stats.update(self._exit_info())
            stats.update(kwargs)
            self._notify("VM_status", stats)

    def _set_status(self, status):
        with self._status_lock:
            if self._state["status"] != status:
                self._state["status"] = status
                self._state["statusTime"] = vmstats.status_time()
                self.send_status_event()

    def setDownStatus(self, code, exitReasonCode, exitMessage=""):
        """Mirror of ``Vm.setDownStatus``."""
        with self._status_lock:
            self._state.update(
                exitCode=code,
                exitReason=exitReasonCode,
                exitMessage=exitMessage or constants.EXIT_REASONS.get(
                    exitReasonCode, "VM terminated"))
            log.info("Container %s changed state to Down: %s (code=%s)",
                     self.id, self._state["exitMessage"], exitReasonCode)
            self._set_status(constants.DOWN)

    def _exit_info(self):
        return {k: self._state[k] for k in ("exitCode", "exitReason",
                                            "exitMessage")
                if k in self._state}

    def status(self, fullStatus=True):
        """``Vm.status``: vmId, status, statusTime (+ exit info if Down)."""
        st = {"vmId": self.id, "status": self.lastStatus,
              "statusTime": vmstats.status_time()}
        if self.lastStatus == constants.DOWN:
            st.update(self._exit_info())
        return st

    def _adopt(self, saved):
        """Take what another process recorded later than our last change
        (the command runs each verb in a new process)."""
        if int(saved.get("statusTime", 0)) > \
                int(self._state.get("statusTime", 0)):
            status = saved.get("status", self.lastStatus)
            self._state.update({k: v for k, v in saved.items()
                                if k != "status"})
            self._set_status(status)

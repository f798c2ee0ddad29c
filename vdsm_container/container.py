"""``Container``: one container VM, in vdsm's VM states.

The object Engine's verbs act on, in the ``vdsm-container`` command and
inside vdsm alike.  It keeps vdsm's VM states: WaitForLaunch while
starting, Up when running, Paused when frozen, Powering down after
shutdown, Down with exitCode, exitReason and exitMessage when the process
ended or the start failed; it sends ``|virt|VM_status|<vmId>`` events on
each change.  Whatever needs root it asks of its backend, chosen at
construction: ``host.backend.HostBackend`` in a root process,
``vdsm.supervdsm.SupervdsmBackend`` in vdsmd (user vdsm).  The backend
records the VM's state, so a new process rebuilds the same containers
(``load``/``load_all``): vdsm's recovery, and every run of the command.

The method names and return shapes mirror lib/vdsm/virt/vm.py ``Vm``
(``status``, ``getStats``, ``destroy``, ``shutdown``, ``pause``, ``cont``,
``reset``, ``setDownStatus``, ``send_status_event``); the verbs a container
can't serve are refused with vdsm's errors (``verbs.py``).
``vdsm.vm.VdsmContainer`` makes it a real Vm subclass inside vdsm.
"""

from __future__ import annotations

import logging
import signal as signals
import threading
import time

from vdsm_container import config
from vdsm_container import constants
from vdsm_container import errors
from vdsm_container import exit_status
from vdsm_container import powerdown
from vdsm_container import transitions
from vdsm_container import verbs
from vdsm_container.host.backend import HostBackend
from vdsm_container.spec import domxml
from vdsm_container.spec.model import ContainerSpec
from vdsm_container.stats import vmstats
from vdsm_container.vmstate import VmState

log = logging.getLogger("vdsm_container.container")

_RUNNING = transitions.RUNNING_STATES


def success(message="Done"):
    """lib/vdsm/common/response.py ``success()``."""
    return {"status": {"code": 0, "message": message}}


@verbs.add_refusals
class Container(VmState):
    """One container VM: its VM state, and the verbs that act on it."""

    def __init__(self, spec, backend=None, paths=None, cif=None,
                 state=None, xml=None):
        self.spec = spec
        self.paths = paths or getattr(backend, "paths", None) or \
            config.Paths.from_env()
        VmState.__init__(
            self, spec.vm_id if spec is not None else state["vmId"],
            backend or HostBackend(self.paths), cif, state)
        # One verb acting on the host at a time.
        self._verb_lock = threading.RLock()
        self._samples = (None, None)
        self._seen = {}
        self._destroy_requested = threading.Event()
        self._start_thread = None
        self.xml = xml or self._state.pop("xml", None) or ""

    @property
    def name(self):
        return self.spec.name if self.spec is not None else self.id

    @property
    def last_sample(self):
        """The newest cgroup sample (``stats.cgroups.Sample``), or None."""
        return self._samples[1]

    # Construction

    @classmethod
    def from_xml(cls, xml, **kwargs):
        """Parse Engine's domain XML; raises vdsm errors on bad input."""
        return cls(domxml.parse(xml), xml=xml, **kwargs)

    @classmethod
    def from_record(cls, saved, **kwargs):
        """The container a backend's record describes.

        A record that can't be read gives a container that is Down with
        the reason, so that Engine sees it and can destroy it.
        """
        if "unreadable" in saved:
            code, reason, message = exit_status.of_unreadable_state(
                saved["unreadable"])
            state = {"vmId": saved["vmId"], "status": constants.DOWN,
                     "exitCode": code, "exitReason": reason,
                     "exitMessage": message}
            return cls(None, state=state, **kwargs)
        return cls(ContainerSpec.from_dict(saved["spec"]), state=saved,
                   **kwargs)

    @classmethod
    def load(cls, vm_id, backend=None, paths=None, **kwargs):
        """Rebuild container ``vm_id`` from its record (NoSuchVM)."""
        backend = backend or HostBackend(paths or config.Paths.from_env())
        return cls.from_record(backend.load(vm_id), backend=backend,
                               paths=paths, **kwargs)

    @classmethod
    def load_all(cls, backend=None, paths=None, **kwargs):
        backend = backend or HostBackend(paths or config.Paths.from_env())
        return [cls.from_record(saved, backend=backend, paths=paths,
                                **kwargs)
                for saved in backend.load_all().values()]

    # Start

    def run(self):
        """Start the container and wait; on failure it is Down, nothing is
        left, and the error is raised (the command's VM.create)."""
        self._start()
        return self.status()

    def start_in_background(self):
        """Start the container in a thread, as vdsm's ``Vm.run`` does
        (``_startUnderlyingVm``); failures end Down."""
        self._start_thread = threading.Thread(
            target=self._start_logged, name="ctr/" + self.id[:8],
            daemon=True)
        self._start_thread.start()

    def _start_logged(self):
        try:
            self._start()
        except Exception as e:
            log.error("Container %s failed to start: %s", self.id, e,
                      exc_info=not getattr(e, "expected", False))

    def _start(self):
        with self._verb_lock:
            try:
                self.prepare_storage()
                saved = self.backend.start(self.xml)
            except BaseException as e:
                self._start_failed(e)
                raise
            with self._status_lock:
                status = saved.pop("status")
                self._state.update(saved)
                if self._destroy_requested.is_set():
                    return      # destroy is waiting for us: it ends Down
                self._set_status(status)
        log.info("Container %s (%s) is Up, pid %s", self.id, self.name,
                 self._state.get("pid"))

    def _start_failed(self, error):
        self.release_storage()
        with self._status_lock:
            if self.lastStatus == constants.DOWN:
                return
            if self._destroy_requested.is_set():
                self.setDownStatus(constants.NORMAL,
                                   constants.DESTROYED_ON_STARTUP)
            else:
                self.setDownStatus(*exit_status.of_failed_start(error))

    def prepare_storage(self):
        """Make the VM's disks available on the host; vdsm's Vm prepares
        them through clientIF (``vdsm.vm.VdsmContainer``).  Standalone, the
        disks are the paths the domain XML names."""

    def release_storage(self):
        """Undo ``prepare_storage`` (idempotent)."""

    # Watching

    def refresh(self):
        """Look at the container now; follow it to Down if it ended."""
        self.apply(self.backend.observe([self.id])[self.id])
        return self.lastStatus

    def sample(self):
        """Look at the container and take a stats sample (cgroup, NICs)."""
        self.apply(self.backend.observe([self.id], sample=True)[self.id])

    def apply(self, seen):
        """Update the VM's state from a backend observation (``observe``).

        A sampler calls this for every container with one observation
        round; a busy VM (a verb or a start under way) is left as it is.
        """
        if seen.get("busy") or seen.get("gone") or seen.get("same"):
            return      # (same: nothing changed since the last look)
        with self._status_lock:
            before = dict(self._state)
            saved = seen.get("state") or {}
            if "unreadable" in saved:
                if self.lastStatus != constants.DOWN:
                    self.setDownStatus(*exit_status.of_unreadable_state(
                        saved["unreadable"]))
                return
            self._adopt(saved)
            self._move(seen.get("runtime"), seen.get("starting"))
            if "cgroup" in seen:
                if seen["cgroup"] is not None:
                    self._samples = (self._samples[1], seen["cgroup"])
                self._seen = seen
            if self._state != before:
                self._save()

    def _move(self, rs, starting):
        starting = starting or (self._start_thread is not None and
                                self._start_thread.is_alive())
        move = transitions.next_state(
            self.lastStatus, rs, starting,
            self.spec.memory_kib if self.spec is not None else 0,
            self._state.get("shutdownRequested", False),
            self._state.get("forcedShutdown", False))
        if move is None:
            return
        if move.status == constants.DOWN:
            self.setDownStatus(*move.exit)
            return
        if move.pid:
            log.warning("Container %s: its start was interrupted after the "
                        "container started; it is Up", self.id)
            self._state.update(pid=move.pid, startTime=time.time())
        self._set_status(move.status)

    # Verbs: served

    def getStats(self):
        """``Vm.getStats``: copies what the last observation brought."""
        with self._status_lock:
            if self.lastStatus == constants.DOWN or self.spec is None:
                return vmstats.exited(self.id, self._state)
            first, last = self._samples
            stats = vmstats.running(self.spec, self._state, first, last,
                                    sizes=self._seen.get("sizes") or {})
            stats["network"] = dict(self._seen.get("network") or {})
            stats.update(self._seen.get("guest") or {})
            return stats

    def destroy(self, gracefulAttempts=1, reason=constants.ADMIN_SHUTDOWN):
        """Stop (SIGTERM, then SIGKILL) and remove everything.

        Mirrors ``Vm.destroy``: returns ``response.success()``; the VM is
        gone afterwards (NoSuchVM for any later verb).  A destroy during
        the start waits for it and ends Down, never Up (vdsm's
        ``_destroy_requested``).
        """
        self._destroy_requested.set()
        starting = self._start_thread
        if starting is not None and starting is not \
                threading.current_thread():
            starting.join()
        with self._verb_lock:
            timeout = self.paths.stop_timeout if gracefulAttempts else 0
            try:
                self.backend.stop(self.id, timeout)
            except errors.NoSuchVM:
                if self.lastStatus != constants.DOWN:
                    raise
                # Down after a failed start: nothing is left on the host.
            self.release_storage()
            with self._status_lock:
                if self.lastStatus != constants.DOWN:
                    self.setDownStatus(constants.NORMAL, reason)
        self._forget()
        return success("Machine destroyed")

    def _forget(self):
        """Leave clientIF's vmContainer, as ``Vm._deleteVm`` does."""
        vms = getattr(self.cif, "vmContainer", None)
        if vms is not None:
            with self.cif.vm_container_lock:
                if vms.get(self.id) is self:
                    del vms[self.id]

    def shutdown(self, delay=None, message=None, reboot=False, timeout=None,
                 force=False, wait=False):
        """Ask the container to stop: SIGTERM to its init process.

        Mirrors ``Vm.shutdown`` and lib/vdsm/virt/vmpowerdown.py
        ``VmShutdown``: the VM goes Powering down, then Down "Admin shut
        down" once the process ends.  If it has not ended after
        ``timeout`` seconds (default: the stop timeout), ``force`` kills
        it (vdsm's forceCallback); without ``force`` it is Up again.  The
        wait runs in a thread, or here with ``wait`` (the command).
        ``reboot`` is refused: a container reboots by destroy and create.
        """
        if reboot:
            raise errors.UnsupportedOperation(
                "containers can't reboot in place", vmId=self.id)
        with self._verb_lock:
            with self._status_lock:
                if self.lastStatus not in _RUNNING:
                    raise errors.VMIsDown("container is %s"
                                          % self.lastStatus, vmId=self.id)
                self._state.update(shutdownRequested=True,
                                   forcedShutdown=False)
            self.backend.signal(self.id, signals.SIGTERM)
            with self._status_lock:
                self._set_status(constants.POWERING_DOWN)
                self._save()
        timeout = self.paths.stop_timeout if timeout is None else \
            float(timeout)
        if wait:
            powerdown.finish(self, timeout, force)
        else:
            threading.Thread(target=powerdown.finish,
                             args=(self, timeout, force), daemon=True,
                             name="ctr/shutdown/" + self.id[:8]).start()
        return success("Machine shutting down")

    def destroy_requested(self):
        return self._destroy_requested.is_set()

    def mark_forced_shutdown(self):
        """The shutdown is forced: its SIGKILL ends it as "Admin shut
        down" too."""
        with self._status_lock:
            self._state["forcedShutdown"] = True
            self._save()

    def abandon_shutdown(self):
        """The shutdown timed out unforced: the VM is Up again, and a later
        end is its own, not the shutdown's."""
        with self._status_lock:
            if self.lastStatus == constants.POWERING_DOWN:
                self._state["shutdownRequested"] = False
                self._set_status(constants.UP)
                self._save()

    def pause(self):
        self._freeze(self.backend.pause, constants.PAUSED)
        return success()

    def cont(self):
        self._freeze(self.backend.resume, constants.UP)
        return success()

    def _freeze(self, action, new_status):
        with self._verb_lock:
            if self.lastStatus not in (constants.UP, constants.PAUSED):
                raise errors.UnsupportedOperation(
                    "container is %s" % self.lastStatus, vmId=self.id)
            action(self.id)
            with self._status_lock:
                self._set_status(new_status)
                self._save()

    def reset(self):
        """Restart the container's process in place (the reset button).

        The writable layer, NICs and volumes stay; the process is killed
        and started again from the same bundle.
        """
        with self._verb_lock:
            if self.lastStatus not in _RUNNING:
                raise errors.ResetFailed("container is %s" % self.lastStatus,
                                         vmId=self.id)
            try:
                pid = self.backend.restart(self.id)
            except Exception as e:
                with self._status_lock:
                    self.setDownStatus(constants.ERROR,
                                       constants.GENERIC_ERROR,
                                       "reset failed: %s" % e)
                    self._save()
                raise errors.ResetFailed(str(e), vmId=self.id) from e
            with self._status_lock:
                self._state.update(pid=pid, startTime=time.time())
                self._set_status(constants.UP)
                self._save()
        return success()

    def log_path(self):
        return self.backend.log_path(self.id)

    # Read-only verbs with nothing to report for a container.

    def io_tune_values(self):
        return []

    def io_tune_policy(self):
        return []

    def io_tune_policy_values(self):
        return {}


def create(xml, paths=None, **kwargs):
    """Parse ``xml``, create and start the container: VM.create, standalone."""
    ctr = Container.from_xml(xml, paths=paths, **kwargs)
    ctr.run()
    return ctr

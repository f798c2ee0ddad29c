"""``Container``: a container VM behind vdsm's Vm interface.

The object Engine's verbs act on.  It owns the flow

    domain XML -> ContainerSpec -> cached image -> bundle -> runtime driver

and keeps vdsm's VM states: WaitForLaunch while starting, Up when running,
Paused when frozen, Powering down after shutdown, Down with exitCode,
exitReason and exitMessage when the process ended or the start failed.

Everything needed to rebuild the object in another process is written to
the VM's state file (``state.py``); ``Container.load`` does that, which is
how vdsm recovers containers after a restart and how every invocation of
the ``vdsm-container`` command sees the same containers.

The method names and return shapes mirror lib/vdsm/virt/vm.py ``Vm``
(``status``, ``getStats``, ``destroy``, ``shutdown``, ``pause``, ``cont``,
``migrate``, ``setDownStatus``, ``send_status_event``), so vdsm's API.py can
call either.  ``vdsm_container.vdsm_plugin`` makes it a real Vm subclass when
vdsm is present.
"""

from __future__ import annotations

import logging
import os
import signal as signals
import threading
import time

from vdsm_container.bundle import blockio
from vdsm_container.bundle import layout as bundlemod
from vdsm_container.stats import cgroups
from vdsm_container import config
from vdsm_container import constants
from vdsm_container.vdsm import domain
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.image import cache as images
from vdsm_container.host import network
from vdsm_container import runtimes
from vdsm_container import state as statemod
from vdsm_container.vdsm import verbs
from vdsm_container.stats import vmstats
from vdsm_container.bundle import volumes
from vdsm_container.runtimes import base
from vdsm_container.spec.model import ContainerSpec

log = logging.getLogger("vdsm_container.container")

_RUNNING = (constants.UP, constants.PAUSED, constants.POWERING_DOWN)


def success(message="Done"):
    """lib/vdsm/common/response.py ``success()``."""
    return {"status": {"code": 0, "message": message}}


def _signal_name(num):
    try:
        return signals.Signals(num).name
    except ValueError:
        return "signal %d" % num


class NoGuestAgent:
    """``Vm.guestAgent`` for API.py's desktop* verbs: there is no agent."""

    def isResponsive(self):
        return False

    def _refuse(self, *args, **kwargs):
        raise errors.error(errors.NonResponsiveGuestAgent,
                           "containers have no guest agent")

    desktopLock = desktopLogin = desktopLogoff = desktopSendHcCommand = \
        _refuse

    def stop(self):
        pass


class DomainXML:
    """``Vm.domain``: Host.dumpxmls reads ``.xml``."""

    def __init__(self, xml):
        self.xml = xml
        self.devices_hash = None


@verbs.add_refusals
class Container:
    """One container VM."""

    # What vdsm's periodic operations and background code read on every VM
    # (lib/vdsm/virt/periodic.py _RunnableOnVm, clientIF): a container has
    # no libvirt domain to monitor, is never migrating, never paused on EIO.
    monitorable = False
    pause_code = None
    post_copy = False
    start_time = 0.0        # qemuguestagent's boot-time probing: long past
    hugepagesz = 0
    nr_hugepages = 0

    def __init__(self, spec, paths=None, cif=None, state=None, xml=None):
        self.spec = spec
        self.id = spec.vm_id
        self.cif = cif
        self.paths = paths or config.Paths.from_env()
        self.hierarchy = cgroups.Hierarchy()
        self.driver = runtimes.driver(spec.runtime, self.paths)
        self.bundle = bundlemod.Bundle(self.paths, self.id)
        self._store = statemod.StateStore(self.paths)
        self._lock = threading.RLock()
        self._state = state or {"vmId": self.id,
                                "status": constants.WAIT_FOR_LAUNCH}
        self._samples = (None, None)
        self._sizes = {}
        self._net = {}
        self._guest = {}
        self.xml = xml or self._state.get("xml") or ""
        self._state["xml"] = self.xml
        self._domain_xml = DomainXML(self.xml)
        self.guestAgent = NoGuestAgent()
        self._dom = domain.ContainerDomain(self)

    # vdsm's Vm has these as read-only properties: so must we, for
    # VdsmContainer(Container, Vm) to set them.

    @property
    def name(self):
        return self.spec.name

    @property
    def domain(self):
        """``Vm.domain``: Host.dumpxmls reads ``.xml``."""
        return self._domain_xml

    # Construction

    @classmethod
    def from_xml(cls, xml, **kwargs):
        """Parse Engine's domain XML; raises vdsm errors on bad input."""
        return cls(domxml.parse(xml), xml=xml, **kwargs)

    @classmethod
    def load(cls, vm_id, paths=None, **kwargs):
        """Rebuild a container from its state file (recovery)."""
        paths = paths or config.Paths.from_env()
        saved = statemod.StateStore(paths).read(vm_id)
        if saved is None:
            raise errors.error(errors.NoSuchVM, "no container %s" % vm_id,
                               vmId=vm_id)
        spec = ContainerSpec.from_dict(saved["spec"])
        return cls(spec, paths=paths, state=saved, **kwargs)

    @classmethod
    def load_all(cls, paths=None, **kwargs):
        paths = paths or config.Paths.from_env()
        result = []
        for vm_id in statemod.StateStore(paths).vm_ids():
            try:
                result.append(cls.load(vm_id, paths=paths, **kwargs))
            except errors.VdsmException:
                continue    # claimed but not written yet, or just removed
        return result

    # State

    @property
    def lastStatus(self):
        return self._state["status"]

    def _save(self):
        self._state["spec"] = self.spec.to_dict()
        self._store.write(self.id, self._state)

    def _notify(self, operation, params):
        """vdsm's ``Vm._notify``: '|virt|<operation>|<vmId>' events."""
        if self.cif is not None and hasattr(self.cif, "notify"):
            self.cif.notify("|virt|%s|%s" % (operation, self.id),
                            {self.id: params})

    def send_status_event(self, **kwargs):
        stats = {"status": self.lastStatus}
        if self.lastStatus == constants.DOWN:
            stats.update(self._exit_info())
        stats.update(kwargs)
        self._notify("VM_status", stats)

    def _set_status(self, status):
        if self._state["status"] != status:
            self._state["status"] = status
            self._state["statusTime"] = vmstats.status_time()
            self.send_status_event()

    def setDownStatus(self, code, exitReasonCode, exitMessage=""):
        """Mirror of ``Vm.setDownStatus``."""
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

    # Start

    def run(self):
        """Start the container; on failure it is Down and nothing is left.

        vdsm's ``Vm.run`` starts ``_startUnderlyingVm`` in a thread and
        reports failures through the Down status; this does the same work
        synchronously and raises the error too, for the command.
        ``vdsm_plugin.VdsmContainer.run`` runs ``_create`` in a thread.
        """
        self._claim()
        self._create()
        return self.status()

    def _claim(self):
        """Checks that touch nothing, then claim the vmId (VMExists)."""
        self._check_supported()
        self._store.claim(self.id)

    def _create(self):
        try:
            with self._store.lock(self.id), self._lock:
                self._state.update(status=constants.WAIT_FOR_LAUNCH,
                                   runtime=self.spec.runtime,
                                   createTime=time.time())
                self._save()
                self._start()
        except BaseException as e:
            self._store.release(self.id)
            if not isinstance(e, errors.VdsmException):
                if not isinstance(e, Exception):
                    raise
                e = errors.error(errors.CreateError, str(e), vmId=self.id)
            if self.lastStatus != constants.DOWN:
                self.setDownStatus(constants.ERROR, constants.GENERIC_ERROR,
                                   str(e))
            raise e

    def _check_supported(self):
        """Refuse, before touching the host, what the driver can't do."""
        for feature, wanted in (("nics", self.spec.nics),
                                ("volumes", self.spec.volumes),
                                ("userns", self.spec.userns)):
            if wanted and not self.driver.capabilities.get(feature):
                raise errors.error(errors.UnsupportedOperation,
                                   "the %s runtime does not support %s"
                                   % (self.driver.name, feature),
                                   vmId=self.id)

    def _start(self):
        try:
            id_map = (self.paths.userns_base, self.paths.userns_size) \
                if self.spec.userns else None
            self.bundle.create_dirs(owner=id_map[0] if id_map else None)
            image = None
            if self.driver.capabilities.get("rootfs"):
                image = images.Cache(self.paths.image_cache).get(
                    self.spec.image_disk.path, self.spec.image_ref, id_map)
                self._state["image"] = {"key": image.key, "ref": image.ref}
                self.bundle.mount_rootfs(image.rootfs)
            mounts = volumes.mount_all(self.bundle, self.spec)
            blkio = blockio.resources(
                self.spec, self.bundle,
                {disk.path: m["source"] for (disk, _), m in zip(
                    self.spec.volume_disks, mounts)}, self.hierarchy)
            netns = network.setup(self.paths, self.spec) \
                if self.spec.nics else None
            self.driver.prepare(self.bundle, self.spec, image, mounts=mounts,
                                netns=netns, blkio=blkio, id_map=id_map)
            pid = self.driver.start(self.bundle)
        except BaseException as e:
            log.error("Container %s failed to start: %s", self.id, e)
            self._teardown()
            self.setDownStatus(constants.ERROR, constants.GENERIC_ERROR,
                               str(e))
            raise
        self._state.update(pid=pid, startTime=time.time())
        self._set_status(constants.UP)
        self._save()
        log.info("Container %s (%s) is Up, pid %d", self.id, self.name, pid)

    def _teardown(self):
        """Remove everything the container has on the host; idempotent."""
        first_error = None
        steps = (lambda: self.driver.cleanup(self.bundle),
                 lambda: network.teardown(self.paths, self.id),
                 self.bundle.teardown)
        for step in steps:
            try:
                step()
            except Exception as e:     # try every step, report the first
                log.error("Container %s teardown: %s", self.id, e)
                first_error = first_error or e
        if first_error is not None:
            raise first_error

    # Watching

    def refresh(self):
        """Compare the runtime's view with ours; go Down if it ended.

        Takes the VM's locks in the same order as every verb (state file,
        then object), so a sampler's refresh never deadlocks a destroy.
        Holding the lock also means no start is under way: a VM still in
        WaitForLaunch then is one whose starting process died; it becomes
        Up if its container runs, Down otherwise.  The state file is
        rewritten only when something changed.
        """
        if self.lastStatus not in _RUNNING + (constants.WAIT_FOR_LAUNCH,):
            return self.lastStatus
        try:
            with self._store.lock(self.id), self._lock:
                saved = self._store.read(self.id)
                if saved:
                    self._state.update(saved)   # moved on by another process
                before = (self.lastStatus, self._state.get("pid"))
                if self.lastStatus == constants.WAIT_FOR_LAUNCH:
                    self._recover_interrupted_start()
                elif self.lastStatus in _RUNNING:
                    self._follow_runtime()
                if (self.lastStatus, self._state.get("pid")) != before:
                    self._save()
        except errors.NoSuchVM:
            pass    # destroyed meanwhile
        return self.lastStatus

    def _follow_runtime(self):
        rs = self.driver.state(self.bundle)
        if rs.status == base.RUNNING:
            if self.lastStatus == constants.PAUSED:
                self._set_status(constants.UP)
        elif rs.status == base.PAUSED:
            self._set_status(constants.PAUSED)
        elif rs.status in (base.STOPPED, base.GONE):
            self.setDownStatus(*self._exit_status(rs))

    def _recover_interrupted_start(self):
        rs = self.driver.state(self.bundle)
        if rs.status in (base.RUNNING, base.PAUSED) and rs.pid:
            log.warning("Container %s: its start was interrupted after the "
                        "container started; it is Up", self.id)
            self._state.update(pid=rs.pid, startTime=time.time())
            self._set_status(constants.UP)
        else:
            self.setDownStatus(constants.ERROR, constants.DESTROYED_ON_STARTUP,
                               "The start was interrupted (the process "
                               "starting the container died)")

    def _exit_status(self, rs):
        """(exitCode, exitReason, exitMessage) for a container that ended."""
        if rs.oom_killed:
            return (constants.ERROR, constants.GENERIC_ERROR,
                    "The container ran out of memory and was killed "
                    "(memory limit %d MiB)" % (self.spec.memory_kib // 1024))
        if rs.status == base.GONE or rs.exit_code is None:
            return (constants.ERROR, constants.LIBVIRT_DOMAIN_MISSING,
                    "The container is gone and its exit status is unknown")
        code = rs.exit_code
        if self._state.get("shutdownRequested") and code in (
                0, 128 + signals.SIGTERM):
            return (constants.NORMAL, constants.ADMIN_SHUTDOWN,
                    constants.EXIT_REASONS[constants.ADMIN_SHUTDOWN])
        if code == 0:
            return (constants.NORMAL, constants.USER_SHUTDOWN,
                    "The container's process exited with status 0")
        if code > 128:
            return (constants.ERROR, constants.GENERIC_ERROR,
                    "The container's process was killed by %s (exit "
                    "status %d)" % (_signal_name(code - 128), code))
        return (constants.ERROR, constants.GENERIC_ERROR,
                "The container's process exited with status %d" % code)

    def sample(self):
        """Take one cgroup sample; keep the last two (vdsm SampleWindow)."""
        if self.lastStatus not in _RUNNING:
            return
        rel = self.driver.cgroup_path(self.bundle)
        s = self.hierarchy.read(rel) if rel else None
        if s is not None:
            self._samples = (self._samples[1], s)
        self.sample_network()
        self._sizes = {}
        for disk in self.spec.disks:
            try:
                st = os.stat(disk.path)
            except OSError:
                continue
            self._sizes[disk.path] = (st.st_size, st.st_blocks * 512)

    def sample_network(self):
        """NIC counters and addresses (needs root: the netns and run dir)."""
        if not self.spec.nics:
            return
        self._net = network.stats(self.paths, self.id)
        try:
            self._guest = network.guest_info(self.paths, self.id)
        except Exception as e:      # the netns went away meanwhile
            log.debug("Container %s guest info: %s", self.id, e)

    # Verbs: served

    def status(self, fullStatus=True):
        """``Vm.status``: vmId, status, statusTime (+ exit info if Down)."""
        st = {"vmId": self.id, "status": self.lastStatus,
              "statusTime": vmstats.status_time()}
        if self.lastStatus == constants.DOWN:
            st.update(self._exit_info())
        return st

    def getStats(self):
        """``Vm.getStats``: copies what ``refresh``/``sample`` computed."""
        if self.lastStatus == constants.DOWN:
            return vmstats.exited(self.id, self._state)
        first, last = self._samples
        stats = vmstats.running(self.spec, self._state, first, last,
                                sizes=self._sizes)
        stats["network"] = dict(self._net)
        stats.update(self._guest)
        return stats

    def destroy(self, gracefulAttempts=1, reason=constants.ADMIN_SHUTDOWN):
        """Stop (SIGTERM, then SIGKILL) and remove everything.

        Mirrors ``Vm.destroy``: returns ``response.success()``; the VM is
        gone afterwards (NoSuchVM for any later verb).
        """
        try:
            self._release_host(gracefulAttempts)
        except errors.NoSuchVM:
            if self.lastStatus != constants.DOWN:
                raise
            # Down after a failed start: nothing is left on the host.
        if self.lastStatus != constants.DOWN:
            self.setDownStatus(constants.NORMAL, reason)
        self._forget()
        return success("Machine destroyed")

    def _release_host(self, gracefulAttempts):
        """Stop the container and remove all it has on the host."""
        with self._store.lock(self.id), self._lock:
            timeout = self.paths.stop_timeout if gracefulAttempts else 0
            try:
                self.driver.stop(self.bundle, timeout)
                self._teardown()
            except errors.VdsmException:
                raise
            except Exception as e:
                raise errors.error(errors.VMDestroyFailed, str(e),
                                   vmId=self.id)
            self._store.release(self.id)

    def _forget(self):
        """Leave clientIF's vmContainer, as ``Vm._deleteVm`` does."""
        vms = getattr(self.cif, "vmContainer", None)
        if vms is not None:
            with self.cif.vm_container_lock:
                if vms.get(self.id) is self:
                    del vms[self.id]

    def shutdown(self, delay=None, message=None, reboot=False, timeout=None,
                 force=False):
        """Ask the container to stop: SIGTERM to its init process.

        Mirrors ``Vm.shutdown``; the VM goes Powering down, then Down with
        exit reason "Admin shut down" once the process ends.  ``reboot``
        is refused: a container reboots by destroy and create.
        """
        if reboot:
            raise errors.error(errors.UnsupportedOperation,
                               "containers can't reboot in place",
                               vmId=self.id)
        with self._store.lock(self.id), self._lock:
            if self.lastStatus not in _RUNNING:
                raise errors.error(errors.VMIsDown, "container is %s"
                                   % self.lastStatus, vmId=self.id)
            self._state["shutdownRequested"] = True
            if self.lastStatus == constants.PAUSED:
                self.driver.resume(self.bundle)
            self.driver.kill(self.bundle, signals.SIGTERM)
            self._set_status(constants.POWERING_DOWN)
            self._save()
        return success("Machine shutting down")

    def pause(self):
        self._freeze(self.driver.pause, constants.PAUSED)
        return success()

    def cont(self):
        self._freeze(self.driver.resume, constants.UP)
        return success()

    def _freeze(self, action, new_status):
        if not self.driver.capabilities.get("pause"):
            raise errors.error(errors.UnsupportedOperation,
                               "%s can't pause containers" % self.driver.name,
                               vmId=self.id)
        with self._store.lock(self.id), self._lock:
            if self.lastStatus not in (constants.UP, constants.PAUSED):
                raise errors.error(errors.UnsupportedOperation,
                                   "container is %s" % self.lastStatus,
                                   vmId=self.id)
            action(self.bundle)
            self._set_status(new_status)
            self._save()

    def log_path(self):
        return self.bundle.log_path

    def reset(self):
        """Restart the container's process in place (the reset button).

        The writable layer, NICs and volumes stay; the process is killed
        and started again from the same bundle.
        """
        with self._store.lock(self.id), self._lock:
            if self.lastStatus not in _RUNNING:
                raise errors.error(errors.ResetFailed, "container is %s"
                                   % self.lastStatus, vmId=self.id)
            try:
                self.driver.stop(self.bundle, 0)
                self.driver.cleanup(self.bundle)
                self.bundle.clear_runtime_files()
                pid = self.driver.start(self.bundle)
            except Exception as e:
                self._state["status"] = constants.UP   # for setDownStatus
                self.setDownStatus(constants.ERROR, constants.GENERIC_ERROR,
                                   "reset failed: %s" % e)
                self._save()
                raise errors.error(errors.ResetFailed, str(e), vmId=self.id)
            self._state.update(pid=pid, startTime=time.time())
            self._set_status(constants.UP)
            self._save()
        return success()

    # Read-only verbs with nothing to report for a container.

    def io_tune_values(self):
        return []

    def io_tune_policy(self):
        return []

    def io_tune_policy_values(self):
        return {}

    # What vdsm's background code asks of every VM.

    def isMigrating(self):
        return False

    def isDomainReadyForCommands(self):
        return False

    def maybe_kill_paused(self):
        pass

    def isDomainRunning(self):
        # No libvirt domain, no guest agent channel: qemuguestagent skips it.
        return False

    def last_disk_hotplug(self):
        return None

    def cpu_policy(self):
        return "none"       # vdsm.virt.cpumanagement.CPU_POLICY_NONE

    def pinned_cpus(self):
        return {}

    def mem_size_mb(self, current=False):
        kib = self.spec.current_memory_kib if current else \
            self.spec.memory_kib
        return kib // 1024


def create(xml, paths=None, **kwargs):
    """Parse ``xml``, create and start the container: VM.create, standalone."""
    ctr = Container.from_xml(xml, paths=paths, **kwargs)
    ctr.run()
    return ctr

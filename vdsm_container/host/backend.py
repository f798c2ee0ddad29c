"""The root side of every container verb: ``HostBackend``.

``container.Container`` keeps vdsm's VM states; whatever needs root (state
files under root's run directory, mounts, the runtime, cgroups, network
namespaces) it asks of a backend.  This one does the work in the calling
process, which must be root: the ``vdsm-container`` command, tests, a vdsm
that runs as root, and supervdsmd, which serves it to vdsmd through
``vdsm_container.vdsm.supervdsm`` (vdsmd runs as user vdsm).  Both offer
the same methods, with plain, picklable arguments and results.

Nothing here trusts its caller beyond the verbs' arguments: vmIds must be
UUIDs (a path would escape the run directory), the container's spec is the
one this side parsed from the domain XML at start and recorded, and the
paths are this process's own (``config.Paths.from_env``).  A caller may
change only the VM-state fields of the record (``CALLER_FIELDS``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container import runtimes
from vdsm_container import records
from vdsm_container.records import CALLER_FIELDS
from vdsm_container.bundle import layout
from vdsm_container.host import lifecycle
from vdsm_container.host.admission import check_supported
from vdsm_container.host import orphans
from vdsm_container.host import qcow, qos
from vdsm_container.runtimes import base
from vdsm_container.runtimes import console
from vdsm_container.spec import domxml
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.host.backend")


def check_vm_id(vm_id):
    """InvalidParameter unless ``vm_id`` is a UUID in its canonical form."""
    try:
        ok = str(uuid.UUID(vm_id)) == vm_id
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise errors.invalid("vmId", vm_id, "not a UUID")
    return vm_id


class HostBackend:
    """Root work for containers, in this process."""

    def __init__(self, paths):
        self.paths = paths
        self.store = records.StateStore(paths)
        self.hierarchy = cgroups.Hierarchy()
        self._drivers = {}
        self.records = records.Records(paths, self.store)

    # Reaching a VM's parts (also for tests and the command).

    def driver(self, runtime):
        if runtime not in self._drivers:
            self._drivers[runtime] = runtimes.driver(runtime, self.paths)
        return self._drivers[runtime]

    def bundle(self, vm_id):
        return layout.Bundle(self.paths, check_vm_id(vm_id))

    # Verbs

    def probe(self, wait=0.0):
        """``{runtime: Availability}`` (root: the self-checks), cached."""
        return runtimes.probe_cached(self.paths, wait)

    def start(self, xml):
        """Create and start the container of Engine's domain ``xml``.

        Returns the VM's state (Up, with its pid).  Errors: the parser's
        (bad XML), VMExists, UnsupportedOperation, and CannotCreateVM or a
        more precise vdsm error when the start failed; then nothing is
        left on the host, or, when even the cleanup failed, the VM stays
        recorded Down with what is left, for ``stop`` to retry.
        """
        spec = domxml.parse(xml)
        vm_id = spec.vm_id
        check_supported(spec)
        driver = self.driver(spec.runtime)
        self.store.claim(vm_id)
        try:
            self._clear_leftovers(vm_id)
        except BaseException:
            self.store.release(vm_id)
            raise
        state = {"vmId": vm_id, "spec": spec.to_dict(), "xml": xml,
                 "runtime": spec.runtime, "createTime": time.time(),
                 "status": constants.WAIT_FOR_LAUNCH, "starter": os.getpid()}
        self.store.write(vm_id, state)
        bundle = layout.Bundle(self.paths, vm_id)
        try:
            image = lifecycle.prepare_image(self.paths, spec, driver)
            with self.store.lock(vm_id):
                if image is not None:
                    # Recorded before it is used: once the container runs,
                    # the record is what says the cached image is in use
                    # (its overlay is in no mount table of the host's).
                    state["image"] = {"key": image.key, "ref": image.ref}
                    self.store.write(vm_id, state)
                pid = lifecycle.start(self.paths, spec, driver, bundle,
                                      self.hierarchy, image)
                state.pop("starter")
                state.update(status=lifecycle.started_status(spec), pid=pid,
                             startTime=time.time())
                self.store.write(vm_id, state)
        except errors.NoSuchVM:
            # Destroyed while the image was prepared: stop removed all.
            raise errors.CannotCreateVM(
                constants.EXIT_REASONS[constants.DESTROYED_ON_STARTUP],
                vmId=vm_id) from None
        except BaseException as e:
            self._forget_failed_start(vm_id, state, driver, bundle, e)
            if isinstance(e, errors.VdsmException) or \
                    not isinstance(e, Exception):
                raise
            raise errors.CannotCreateVM(str(e), vmId=vm_id) from e
        return _public(state)

    def _clear_leftovers(self, vm_id):
        """A container VM starts from its image each run: what an earlier
        run of this vmId left with no record (its writable layer and log
        after a host reboot; mounts and namespaces of a run that ended
        after its run directory was removed) is removed first, never
        reused.  When that run still runs, the start is refused
        (VMExists): destroy or gc removes it."""
        if not orphans.leftovers_possible(self.paths, vm_id):
            return
        left = orphans.find(self.paths, vm_id, claimed=True)
        live = orphans.live(left)
        if live:
            raise errors.VMExists(
                "an earlier run of VM %s is still on this host with no "
                "record (%s); `vdsm-container destroy %s` removes it"
                % (vm_id, ", ".join(sorted({p["kind"] for p in live},
                                          key=orphans.KINDS.index)),
                   vm_id), vmId=vm_id)
        _, failed = orphans.reap(self.paths, self.store, left, claim=False)
        if failed:
            raise errors.CannotCreateVM(
                "cannot remove what an earlier run left: %s"
                % "; ".join("%s: %s" % (p["what"], e) for p, e in failed),
                vmId=vm_id)
        log.info("Container %s: removed what an earlier run left (%s)",
                 vm_id, ", ".join(p["what"] for p in left))

    def _forget_failed_start(self, vm_id, state, driver, bundle, error):
        try:
            lifecycle.teardown(self.paths, driver, bundle)
        except Exception as e:
            # A failed start, as the core's exit_status.of_failed_start
            # reads it to Engine, and what is left of it.
            state.update(status=constants.DOWN, exitCode=constants.ERROR,
                         exitReason=constants.GENERIC_ERROR,
                         exitMessage="%s; cleanup failed too, destroy the "
                         "VM to retry: %s" % (error, e))
            state.pop("starter", None)
            self.store.write(vm_id, state)
            return
        self.store.release(vm_id)

    def save(self, vm_id, changes):
        """Record the caller's VM-state ``changes`` (CALLER_FIELDS only)."""
        unknown = set(changes) - CALLER_FIELDS
        if unknown:
            raise errors.invalid("state", sorted(unknown), "not a VM-state "
                                 "field")
        with self.store.lock(check_vm_id(vm_id)):
            state = self.store.read(vm_id)
            if state is None:
                raise errors.NoSuchVM("no container %s" % vm_id, vmId=vm_id)
            state.update(changes)
            self.store.write(vm_id, state)

    def load(self, vm_id):
        """The VM's recorded state; NoSuchVM if it has none.

        A record this code can't read comes back as ``{"vmId",
        "unreadable": reason}`` rather than an error, so that recovery
        goes on with the other VMs.
        """
        try:
            # Through the cache: recovery's first look at every VM, right
            # after, then parses nothing again.
            return self.records.seen(check_vm_id(vm_id)).state
        except records.Unreadable as e:
            return {"vmId": vm_id, "unreadable": str(e)}

    def load_all(self):
        """``{vmId: state}`` of every recorded VM (see ``load``)."""
        result = {}
        for vm_id in self.store.vm_ids():
            try:
                result[vm_id] = self.load(vm_id)
            except errors.VdsmException:
                continue    # claimed, not written yet; or just removed
            if (result[vm_id].get("spec") or {}).get("console"):
                self._keep_console(vm_id)
        return result

    def _keep_console(self, vm_id):
        """Recovery finds a console's relay, or rebuilds one that died
        while its container runs (``runtimes.console.ensure``)."""
        try:
            with self.store.lock(vm_id, wait=False):
                console.ensure(layout.Bundle(self.paths, vm_id))
        except (records.Busy, errors.VdsmException, OSError) as e:
            log.warning("Container %s: console not checked: %s", vm_id, e)

    def observe(self, vm_ids, sample=False):
        """What the host shows of each VM: ``{vmId: observation}``.

        An observation has ``state`` (the record: another process may have
        moved it on) and ``runtime`` (a ``RuntimeState``); with ``sample``
        also ``cgroup``, ``network``, ``guest`` and ``sizes``.  A VM whose
        lock is held (a verb or the end of a start is under way) is
        ``{"busy": True}``: a sampler never waits for a start.  A VM that is
        gone is ``{"gone": True}``.  Without ``sample``, a VM that still
        runs as the last look found it is ``{"same": True}``
        (``records.Records.unchanged``).  One call serves every VM, so a
        sampler through supervdsm costs one round trip a round.
        """
        result = {}
        for vm_id in vm_ids:
            try:
                result[vm_id] = self._observe(vm_id, sample)
            except records.Busy:
                result[vm_id] = {"busy": True}
            except errors.NoSuchVM:
                self.records.forget(vm_id)
                result[vm_id] = {"gone": True}
            except records.Unreadable as e:
                result[vm_id] = {"state": {"vmId": vm_id,
                                           "unreadable": str(e)}}
        return result

    def _observe(self, vm_id, sample):
        if not sample and self.records.unchanged(vm_id):
            return {"same": True}
        with self.store.lock(check_vm_id(vm_id), wait=False):
            rec = self.records.seen(vm_id)
            state, spec = rec.state, rec.spec
            driver = self.driver(spec.runtime)
            seen = lifecycle.observe(self.paths, spec, driver, rec.bundle,
                                     self.hierarchy, sample)
            starter = state.get("starter")
            seen["starting"] = bool(starter) and _alive(starter)
            running = not starter and \
                seen["runtime"].status == base.RUNNING
            rec.watch = driver.watch(rec.bundle, seen["runtime"]) \
                if running else None
            # Without the spec: the caller has it, and at a thousand VMs
            # it would be most of what a round carries back.
            seen["state"] = _public(state, "spec")
            return seen

    def stop(self, vm_id, timeout):
        """Stop the container (SIGTERM, SIGKILL after ``timeout`` s) and
        remove everything it has on the host, its record last."""
        with self.store.lock(check_vm_id(vm_id)):
            try:
                _, spec = self.records.read(vm_id)
                drivers = [self.driver(spec.runtime)]
            except records.Unreadable:
                # Which runtime ran it is unknown: each one installed here
                # removes its record of this vmId, if it has one.
                drivers = [self.driver(n) for n in runtimes.names()
                           if runtimes.installed(n)]
            bundle = layout.Bundle(self.paths, vm_id)
            try:
                for driver in drivers:
                    driver.stop(bundle, timeout)
                for driver in drivers:
                    lifecycle.teardown(self.paths, driver, bundle)
            except errors.VdsmException:
                raise
            except Exception as e:
                raise errors.VMDestroyFailed(str(e), vmId=vm_id) from e
            self.store.release(vm_id)
            self.records.forget(vm_id)

    def signal(self, vm_id, signum):
        """Send ``signum`` to the container's init process (resumed first
        when frozen: a frozen process can't act on a signal)."""
        def send(driver, bundle):
            if driver.state(bundle).status == base.PAUSED:
                driver.resume(bundle)
            driver.kill(bundle, signum)
        self._act(vm_id, send)

    def pause(self, vm_id):
        self._act(vm_id, lambda driver, bundle: driver.pause(bundle),
                  needs="pause")

    def resume(self, vm_id):
        self._act(vm_id, lambda driver, bundle: driver.resume(bundle),
                  needs="pause")

    update_policy = qos.update_policy   # VM.updateVmPolicy's limits
    release_disks = qcow.release_disks  # an ended container's exports

    def restart(self, vm_id):
        """Kill the container's process and start it again in place (the
        writable layer, NICs and volumes stay); returns the new pid."""
        def again(driver, bundle):
            state, _ = self.records.read(vm_id)
            driver.stop(bundle, 0)
            driver.cleanup(bundle)
            bundle.clear_runtime_files()
            return lifecycle.restart(self.paths, driver, bundle,
                                     (state.get("image") or {}).get("key"))
        return self._act(vm_id, again)

    def _act(self, vm_id, action, needs=None):
        # What the last look found no longer holds.
        self.records.forget(vm_id)
        with self.store.lock(check_vm_id(vm_id)):
            try:
                _, spec = self.records.read(vm_id)
            except records.Unreadable as e:
                raise errors.UnsupportedOperation(str(e), vmId=vm_id) \
                    from None
            driver = self.driver(spec.runtime)
            if needs and not driver.capabilities.get(needs):
                raise errors.UnsupportedOperation(
                    "%s can't %s containers" % (driver.name, needs),
                    vmId=vm_id)
            try:
                return action(driver, layout.Bundle(self.paths, vm_id))
            finally:
                self.records.forget(vm_id)

    def log_path(self, vm_id):
        return self.bundle(vm_id).log_path

    # Orphans: what containers left with no record (``host.orphans``).

    def orphans(self):
        """The parts of containers with no record, in removal order."""
        return orphans.find(self.paths)

    def gc(self, dry_run=True):
        """Reap every orphan of this tree; ``dry_run``: only say which.

        Returns ``{"dryRun", "found"}`` or ``{"dryRun", "removed",
        "failed"}`` (each failed part with its ``error``).
        """
        found = orphans.find(self.paths)
        if dry_run:
            return {"dryRun": True, "found": found}
        removed, failed = orphans.reap(self.paths, self.store, found)
        return {"dryRun": False, "removed": removed,
                "failed": [dict(p, error=e) for p, e in failed]}

    def reap(self, vm_id):
        """Destroy a container that has no record: remove every part named
        after ``vm_id``.  NoSuchVM when there is none."""
        found = orphans.find(self.paths, check_vm_id(vm_id))
        if not found:
            raise errors.NoSuchVM("no container %s" % vm_id, vmId=vm_id)
        _, failed = orphans.reap(self.paths, self.store, found)
        if failed:
            raise errors.VMDestroyFailed(
                "; ".join("%s: %s" % (p["what"], e) for p, e in failed),
                vmId=vm_id)


def _public(state, *also):
    """The record without the domain XML (and ``also``), which the caller
    has."""
    drop = ("xml",) + also
    return {k: v for k, v in state.items() if k not in drop}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

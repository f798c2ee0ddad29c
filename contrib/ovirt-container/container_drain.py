"""ovirt-container drain HOST, move VM --to HOST: container VMs move by
restart ("restart mode", as Proxmox VE moves containers).  The host
refuses every migration of a container VM, and container VMs are pinned
(container_check), so Engine refuses to put a host running one into
maintenance (MaintenanceNumberOfVdssCommand.validate).  So:

``drain HOST``
    1. each container VM on the host is shut down (Engine's shutdown:
       ShutdownVmCommand, graceful); one still not Down after
       ``--shutdown-timeout`` is stopped (StopVmCommand, "power off");
    2. the host is put into maintenance (``deactivate``:
       MaintenanceNumberOfVdssCommand; it now runs no pinned VM) and
       waited for, at most ``--maintenance-timeout``;
    3. each VM is started again (RunVm): Engine's scheduler picks the
       host, and a host in maintenance is not one it picks (it takes Up
       hosts only), nor one outside the ``container-capable`` group;
       waited for Up, at most ``--start-timeout``.

``move VM --to HOST``
    the VM shut down as above, then started with ``vm.placement_policy
    .hosts`` naming HOST: REST's start then runs RunVmOnce with HOST as
    its destination (BackendVmResource.start, createRunVmOnceParams), the
    scheduler's only candidate (RunVmOnceCommand.getVdsWhiteList).

A line per VM as it goes, a summary at the end: what moved where, what
failed and why.  A failure leaves each VM either Up somewhere or Down
with the reason printed (Engine's refusal, or its events for the VM:
VM_DOWN_ERROR "is down with error. Exit message: ..."); a start is sent
once, never again: a start whose answer was lost is waited for and
reported, not repeated.  ``--dry-run`` reads only, and says what it would
do.
"""

import time

import ovirtsdk4 as sdk
from ovirtsdk4 import types

from container_cleanup import why
from container_placement import container_hosts, is_container

COMMANDS = ("drain", "move")
S = types.VmStatus
# Engine refused the action: nothing was done (REST ErrorMessageHelper:
# validation messages answer 400 or 409; an unknown entity 404).
REFUSED = (400, 404, 409)


class Failed(Exception):
    """Nothing was changed: why, for the error line."""


def refused(e):
    return isinstance(e, sdk.Error) and getattr(e, "code", None) in REFUSED


class Mover:

    def __init__(self, system, out, shutdown_timeout=60, start_timeout=300,
                 maintenance_timeout=600, poll=2.0, dry_run=False,
                 clock=time.monotonic, sleep=time.sleep):
        self.system = system
        self.vms = system.vms_service()
        self.hosts = system.hosts_service()
        self.out = out
        self.shutdown_timeout = shutdown_timeout
        self.start_timeout = start_timeout
        self.maintenance_timeout = maintenance_timeout
        self.poll = poll
        self.dry_run = dry_run
        self.clock = clock
        self.sleep = sleep
        self.moved = []         # (vm name, from host, to host)
        self.failed = []        # (vm name, why)
        self.host_problem = None
        self._names = {h.id: h.name for h in self.hosts.list()}

    def say(self, text):
        self.out.write(text + "\n")
        self.out.flush()

    def name(self, ref):
        return self._names.get(ref.id, ref.id) if ref is not None else None

    def fail(self, vm, text):
        self.failed.append((vm.name, text))
        self.say("%s: %s" % (vm.name, text))

    def wait(self, read, done, timeout):
        """Read until ``done(obj)`` or ``timeout`` seconds: the last read."""
        deadline = self.clock() + timeout
        while True:
            obj = read()
            if done(obj) or self.clock() >= deadline:
                return obj
            self.sleep(self.poll)

    def guard(self, step, vm, *args):
        """``step(vm, *args)``; an Engine error on the way is the VM's
        failure, reported, and the others go on."""
        try:
            return step(vm, *args)
        except sdk.Error as e:
            self.fail(vm, "Engine error, its state unknown: %s (see it in "
                      "Engine; nothing more is sent for it)" % why(e))
            return False

    def _dedicated(self, vm):
        """The names of the hosts ``vm`` is pinned to ([]: any)."""
        policy = vm.placement_policy
        return [self.name(h) for h in (policy.hosts or ())] if policy \
            else []

    def find_host(self, name):
        found = [h for h in self.hosts.list(search="name=%s" % name)
                 if h.name == name]
        if not found:
            raise Failed("no host named %s" % name)
        return found[0]

    # The steps

    def shut_down(self, vm):
        """Down, gracefully or else powered off: True; else the failure
        is recorded and the VM is left as it is."""
        service = self.vms.vm_service(vm.id)
        where = self.name(vm.host)
        self.say("%s: shutting down on %s" % (vm.name, where))
        try:
            service.shutdown(reason="ovirt-container: restart elsewhere")
        except sdk.Error as e:
            # e.g. a VM still powering up: StopVm below
            self.say("%s: shutdown refused (%s)" % (vm.name, why(e)))
        got = self.wait(service.get, lambda v: v.status == S.DOWN,
                        self.shutdown_timeout)
        how = "shut down"
        if got.status != S.DOWN:
            self.say("%s: still %s after %gs: powering it off"
                     % (vm.name, got.status.value, self.shutdown_timeout))
            how = "powered off"
            try:
                service.stop(reason="ovirt-container: did not shut down")
            except sdk.Error as e:
                self.fail(vm, "%s on %s: power off failed: %s"
                          % (got.status.value, where, why(e)))
                return False
            got = self.wait(service.get, lambda v: v.status == S.DOWN,
                            self.shutdown_timeout)
            if got.status != S.DOWN:
                self.fail(vm, "still %s on %s after power off: not moved"
                          % (got.status.value, where))
                return False
        self.say("%s: down (%s)" % (vm.name, how))
        return True

    def _mark(self):
        """The newest event's id: events after it are this start's."""
        newest = self.system.events_service().list(max=1)
        return newest[0].id if newest else None

    def _errors(self, vm, mark):
        events = self.system.events_service().list(
            search="vm.name=%s" % vm.name, **({"from_": int(mark)}
                                                if mark else {}))
        errors = [e.description for e in reversed(events)
                  if e.severity == types.LogSeverity.ERROR]
        return "; ".join(errors) or "Engine gave no reason (see its events)"

    def start(self, vm, source, target=None):
        """Start ``vm`` (on ``target``, a host, if given): sent once.
        Up: recorded as moved; else as failed, with Engine's reason."""
        service = self.vms.vm_service(vm.id)
        mark = self._mark()
        try:
            if target is None:
                service.start()
            else:
                service.start(vm=types.Vm(placement_policy=types.
                                          VmPlacementPolicy(hosts=[
                                              types.Host(id=target.id)])))
        except sdk.Error as e:
            if refused(e):
                self.fail(vm, "down: Engine refused to start it: %s"
                          % why(e))
                return
            self.say("%s: start sent, Engine's answer lost (%s): waiting, "
                     "not sending it again" % (vm.name, why(e)))
        got = self.wait(service.get,
                        lambda v: v.status in (S.UP, S.DOWN),
                        self.start_timeout)
        if got.status == S.UP:
            where = self.name(got.host)
            self.moved.append((vm.name, source, where))
            self.say("%s: up on %s" % (vm.name, where))
        elif got.status == S.DOWN:
            self.fail(vm, "down: %s" % self._errors(vm, mark))
        else:
            self.fail(vm, "%s after %gs: its start was sent once and is not "
                      "sent again; Engine may still bring it up: watch it"
                      % (got.status.value, self.start_timeout))

    # The commands

    def drain(self, host_name):
        host = self.find_host(host_name)
        vms = [vm for vm in self.vms.list() if is_container(vm) and
               vm.host is not None and vm.host.id == host.id and
               vm.status != S.DOWN]
        others = [h.name for h in container_hosts(self.system)
                  if h.id != host.id and h.status == types.HostStatus.UP]
        if vms and not others:
            raise Failed("no other container-capable host is up: the "
                         "container VMs of %s (%s) would stay down"
                         % (host.name, ", ".join(v.name for v in vms)))
        stuck = [vm.name for vm in vms if self._dedicated(vm) and not
                 set(self._dedicated(vm)) & set(others)]
        if stuck:
            raise Failed("%s pinned to %s (create --host): Engine starts "
                         "them on no other host up (PinToHost); pin them "
                         "elsewhere or stop them first" % (
                             ", ".join(stuck), host.name))
        self.say("%s: %d container VM(s) to move: %s" % (
            host.name, len(vms), ", ".join(v.name for v in vms) or "none"))
        if self.dry_run:
            for vm in vms:
                self.say("%s: would shut down (power off after %gs), then "
                         "start on one of %s (Engine's scheduler)"
                         % (vm.name, self.shutdown_timeout,
                            ", ".join(others)))
            self.say("%s: would go into maintenance" % host.name)
            return
        down = [vm for vm in vms if self.guard(self.shut_down, vm)]
        self.maintenance(host)
        for vm in down:
            self.guard(self.start, vm, host.name)

    def maintenance(self, host):
        service = self.hosts.host_service(host.id)
        if host.status == types.HostStatus.MAINTENANCE:
            self.say("%s: already in maintenance" % host.name)
            return
        try:
            service.deactivate(reason="ovirt-container drain")
        except sdk.Error as e:
            self.host_problem = "Engine refused maintenance: %s" % why(e)
        else:
            got = self.wait(
                service.get,
                lambda h: h.status == types.HostStatus.MAINTENANCE,
                self.maintenance_timeout)
            if got.status != types.HostStatus.MAINTENANCE:
                self.host_problem = "still %s after %gs" % (
                    got.status.value, self.maintenance_timeout)
        self.say("%s: %s" % (host.name, self.host_problem or "maintenance"))

    def move(self, vm_name, host_name):
        found = [v for v in self.vms.list(search="name=%s" % vm_name)
                 if v.name == vm_name]
        if not found or not is_container(found[0]):
            raise Failed("no container VM named %s" % vm_name)
        vm = found[0]
        target = self.find_host(host_name)
        capable = {h.id for h in container_hosts(self.system)}
        if target.id not in capable:
            raise Failed("host %s can't run containers" % target.name)
        if target.status != types.HostStatus.UP:
            raise Failed("host %s is %s, not up" % (target.name,
                                                    target.status.value))
        dedicated = self._dedicated(vm)
        if dedicated and target.name not in dedicated:
            raise Failed("%s is pinned to %s: Engine starts it nowhere else "
                         "(PinToHost)" % (vm.name, ", ".join(dedicated)))
        source = self.name(vm.host)
        if vm.status == S.UP and source == target.name:
            self.say("%s: already up on %s" % (vm.name, target.name))
            return
        if self.dry_run:
            self.say("%s: would %sstart on %s" % (
                vm.name, "shut down on %s (power off after %gs), then "
                % (source, self.shutdown_timeout)
                if vm.status != S.DOWN else "", target.name))
            return
        if vm.status != S.DOWN and not self.guard(self.shut_down, vm):
            return
        self.guard(self.start, vm, source or "down", target)

    def summary(self):
        """The summary lines; the error line, or None."""
        self.say("summary: %d moved, %d failed" % (len(self.moved),
                                                   len(self.failed)))
        for name, source, target in self.moved:
            self.say("moved: %s %s -> %s" % (name, source, target))
        for name, text in self.failed:
            self.say("failed: %s: %s" % (name, text))
        problems = ["%d VM(s) not moved" % len(self.failed)] \
            if self.failed else []
        if self.host_problem:
            self.say("host: %s" % self.host_problem)
            problems.append("host not in maintenance")
        return "; ".join(problems) or None


def run(system, args, out):
    """``drain`` or ``move``: the error line, or None."""
    mover = Mover(system, out, shutdown_timeout=args.shutdown_timeout,
                  start_timeout=args.start_timeout,
                  maintenance_timeout=args.maintenance_timeout,
                  poll=args.poll, dry_run=args.dry_run)
    try:
        if args.cmd == "drain":
            mover.drain(args.host)
        else:
            mover.move(args.name, args.to)
    except Failed as e:
        return str(e)
    if args.dry_run:
        return None
    return mover.summary()


def add_parser(sub):
    d = sub.add_parser("drain", help="move every container VM off HOST by "
                       "restart, and put HOST into maintenance")
    d.add_argument("host")
    m = sub.add_parser("move", help="move container VM NAME to host --to "
                       "by restart (shut down, start there)")
    m.add_argument("name")
    m.add_argument("--to", required=True, metavar="HOST")
    for p in (d, m):
        p.add_argument("--dry-run", action="store_true",
                       help="say what would be done; change nothing")
        p.add_argument("--shutdown-timeout", type=float, default=60,
                       metavar="S", help="power a VM off if not down after "
                       "S seconds of graceful shutdown (default 60)")
        p.add_argument("--start-timeout", type=float, default=300,
                       metavar="S", help="wait at most S seconds for a VM "
                       "to be up (default 300)")
        p.add_argument("--maintenance-timeout", type=float, default=600,
                       metavar="S", help="wait at most S seconds for the "
                       "host to be in maintenance (default 600)")
        p.add_argument("--poll", type=float, default=2.0, metavar="S",
                       help="seconds between reads (default 2)")

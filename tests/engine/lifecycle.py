"""The fake Engine's hosts and VMs in motion: host status and maintenance,
VM start, shutdown, stop and migrate, the scheduler, VM updates and the
audit log (events), as ovirt-engine (master, 0111fc63) does them.

Engine's code each behaviour mirrors:

- a VM's migration support is its placement policy's affinity (REST
  VmBaseMapper.map: ``migratable`` MIGRATABLE, ``user_migratable``
  IMPLICITLY_NON_MIGRATABLE, ``pinned`` PINNED_TO_HOST; none set:
  MIGRATABLE, VmBase's default).  An update with a placement policy sets
  the affinity if given and resets the dedicated hosts to those given
  (VmBaseMapper.mapVmBaseModelToEntity); migration support is editable
  while the VM runs, applied at once (VmBase's @EditableVmField with no
  statuses: VmHandler's permitted fields, no next-run snapshot).
- ``deactivate`` (BackendHostResource.deactivate: MaintenanceNumberOfVdss,
  not internal): MaintenanceNumberOfVdssCommand.validate refuses a host
  running a PINNED_TO_HOST VM, naming the VMs
  (handleNonMigratableVms: VDS_CANNOT_MAINTENANCE_IT_INCLUDES_NON_
  MIGRATABLE_VM with $VmsList joined " , "), a host already in
  maintenance, and a host with running VMs and no other Up host in its
  cluster (CANNOT_MAINTENANCE_VDS_RUN_VMS_NO_OTHER_RUNNING_VDS).  Else the
  host is PreparingForMaintenance; MaintenanceVdsCommand.migrateVms
  migrates its VMs: a container VM's migration the host refuses
  (MigrationError), so it stays and so does the host, with the event
  VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE; an empty host turns
  Maintenance (after ``maintenance_reads`` reads of it).
- ``migrate``: VmValidator.canMigrate refuses a PINNED_TO_HOST VM
  (ACTION_TYPE_FAILED_VM_IS_PINNED_TO_HOST); a migratable container VM's
  migration is sent and the host refuses it: the VM stays where it is.
- ``start`` (BackendVmResource.start: RunVm; with ``vm.placement_policy
  .hosts``, RunVmOnce with that host as destination, which is then the
  scheduler's white list: RunVmOnceCommand.getVdsWhiteList).  The
  scheduler takes the cluster's Up hosts, filters them by PinToHost
  (PinToHostPolicyUnit: a pinned VM with dedicated hosts only on those; a
  pinned VM with none, not running, on any) and by enforcing positive
  VM-to-host affinity groups (VmToHostAffinityFilterPolicyUnit), and
  picks the least loaded.  A launch that fails on a host (``fail_on``:
  host name -> vdsm's exit message) is rerun on the next host
  (RunVmCommand.rerun, the failed host black-listed), each failure an
  event VM_DOWN_ERROR; when none is left the VM is Down with the event
  USER_FAILED_RUN_VM.  A started VM is WaitForLaunch, PoweringUp until
  it has been read ``start_reads`` times, then Up (0: Up at once).
- ``shutdown`` (ShutdownVmCommand: DestroyVm, gracefully): PoweringDown
  for ``shutdown_reads`` reads, then Down; a guest in
  ``ignore_shutdown`` never goes down.  ``stop`` (StopVmCommand):
  Down.  Both refuse a VM that is not running
  (ACTION_TYPE_FAILED_VM_IS_NOT_RUNNING).

``lose_start_reply``: names of VMs whose start runs but whose answer is
lost (the web server in front of Engine answers 503).
"""

import urllib.parse

from ovirtsdk4 import types
from ovirtsdk4.reader import Reader
from ovirtsdk4.writer import Writer

from .fake_engine import Refused

XML = "application/xml"
S = types.VmStatus
H = types.HostStatus
RUNNING = (S.UP, S.POWERING_UP, S.WAIT_FOR_LAUNCH, S.POWERING_DOWN,
           S.MIGRATING, S.PAUSED, S.NOT_RESPONDING, S.REBOOT_IN_PROGRESS)


def failed(detail, code=409):
    raise Refused(code, "Operation Failed", "[%s]" % detail)


def affinity(vm):
    policy = vm.placement_policy
    return (policy.affinity if policy and policy.affinity
            else types.VmAffinity.MIGRATABLE)


def _search(query):
    search = urllib.parse.parse_qs(query).get("search", [""])[0]
    name, _, value = search.partition("=")
    return name.strip(), value.strip()


class Lifecycle:

    def __init__(self, engine):
        self.engine = engine
        self.start_reads = 0
        self.shutdown_reads = 0
        self.maintenance_reads = 0
        self.ignore_shutdown = set()
        self.fail_on = {}
        self.lose_start_reply = set()
        self.events = []            # types.Event, oldest first
        self._steps = {}            # vm or host id -> [status, ...] to come
        engine.routes.append(self.route)

    # State

    def host(self, ref):
        """The host a reference (id or name) names, or None."""
        if ref is None:
            return None
        return next((h for h in self.engine.hosts if h.id == ref.id or
                     (ref.id is None and h.name == ref.name)), None)

    def placed(self, vm):
        """A new VM's dedicated hosts by id, as REST keeps them
        (BackendVmsResource.add: validateAndUpdateHostsInPlacementPolicy
        finds a host given by name)."""
        policy = vm.placement_policy
        if policy is not None and policy.hosts:
            policy.hosts = [types.Host(id=self.host(h).id)
                            for h in policy.hosts]

    def status(self, host):
        if host.status is None:
            host.status = H.UP
        return host.status

    def running_on(self, host):
        return sorted((vm for vm in self.engine.vms.values()
                       if vm.status in RUNNING and self.host(vm.host) is host),
                      key=lambda vm: vm.name)

    def run(self, vm, host):
        """Tests: ``vm`` is Up on ``host``."""
        vm.status = S.UP
        vm.host = types.Host(id=host.id)

    def event(self, text, vm=None, host=None,
              severity=types.LogSeverity.NORMAL):
        self.events.append(types.Event(
            id=str(len(self.events) + 1), description=text,
            severity=severity,
            vm=types.Vm(id=vm.id, name=vm.name) if vm else None,
            host=types.Host(id=host.id, name=host.name) if host else None))

    def _advance(self, obj):
        steps = self._steps.get(obj.id)
        if steps:
            status = steps.pop(0)
            obj.status = status
            if status == S.DOWN:
                obj.host = None

    # Routes: None for what the engine's other routes answer.

    def route(self, method, parts, query, body):
        if parts == ["events"]:
            return self._events(query)
        if parts[:1] == ["hosts"]:
            return self._hosts(method, parts[1:], query)
        if parts[:1] == ["vms"] and len(parts) >= 2:
            vm = self.engine.vms.get(parts[1])
            if vm is None:
                return None
            if len(parts) == 2 and method == "GET":
                self._advance(vm)
            elif len(parts) == 2 and method == "PUT":
                self._update(vm, Reader.read(body))
            elif len(parts) == 3 and method == "POST" and parts[2] in (
                    "start", "stop", "shutdown", "migrate"):
                action = Reader.read(body) if body else types.Action()
                getattr(self, "_" + parts[2])(vm, action)
                if parts[2] == "start" and vm.name in self.lose_start_reply:
                    raise Refused(503, "Service Unavailable", "proxy error")
                return 200, Writer.write(types.Action(status="complete")), XML
        return None

    def _events(self, query):
        events = list(reversed(self.events))        # newest first
        what, value = _search(query)
        if what == "vm.name":
            events = [e for e in events if e.vm and e.vm.name == value]
        after = urllib.parse.parse_qs(query).get("from", [None])[0]
        if after is not None:
            events = [e for e in events if int(e.id) > int(after)]
        size = urllib.parse.parse_qs(query).get("max", [None])[0]
        if size is not None:
            events = events[:int(size)]
        return 200, Writer.write(events, root="events"), XML

    def _hosts(self, method, rest, query):
        hosts = self.engine.hosts
        for h in hosts:
            self.status(h)
        if not rest and method == "GET":
            what, value = _search(query)
            if what == "name":
                hosts = [h for h in hosts if h.name == value]
            return 200, Writer.write(hosts, root="hosts"), XML
        host = next((h for h in hosts if h.id == rest[0]), None)
        if host is None:
            failed("Entity not found", 404)
        if len(rest) == 1 and method == "GET":
            self._advance(host)
            return 200, Writer.write(host), XML
        if rest[1:] == ["deactivate"]:
            self._maintenance(host)
        elif rest[1:] == ["activate"]:
            host.status = H.UP
        else:
            return None
        return 200, Writer.write(types.Action(status="complete")), XML

    # Engine's commands

    def _update(self, vm, change):
        """UpdateVm through VmBaseMapper: affinity if set; dedicated hosts
        reset to those given (by id)."""
        policy = change.placement_policy
        if policy is None:
            return
        hosts = [types.Host(id=h.id) for h in policy.hosts or () if h.id]
        vm.placement_policy = types.VmPlacementPolicy(
            affinity=policy.affinity or affinity(vm), hosts=hosts or None)

    def _maintenance(self, host):
        """MaintenanceNumberOfVdssCommand.validate, then
        MaintenanceVdsCommand.migrateVms."""
        if self.status(host) == H.MAINTENANCE:
            failed("Cannot switch Host to Maintenance mode. Host is already "
                   "in Maintenance mode.")
        running = self.running_on(host)
        pinned = [vm.name for vm in running
                  if affinity(vm) == types.VmAffinity.PINNED]
        if pinned:
            failed("Cannot switch the following Hosts to Maintenance mode: "
                   "%s.\nOne or more running VMs are indicated as "
                   "non-migratable. The non-migratable VMs are: %s."
                   % (host.name, " , ".join(pinned)))
        others = [h for h in self.engine.hosts if h is not host and
                  h.cluster.id == host.cluster.id and self.status(h) == H.UP]
        if running and not others:
            cluster = self.engine.clusters[host.cluster.id].name
            failed("The following Hosts have running VMs and cannot be "
                   "switched to maintenance mode: %s.\nPlease ensure that "
                   "the following Clusters have at least one Host in UP "
                   "state: %s." % (host.name, cluster))
        host.status = H.PREPARING_FOR_MAINTENANCE
        stay = False
        for vm in running:
            if any(p.name == "containerType"
                   for p in vm.custom_properties or ()):
                stay = True
                self.event("Migration failed while Host is in 'preparing "
                           "for maintenance' state.\n  Consider manual "
                           "intervention: stopping/migrating Vms as Host's "
                           "state will not\n  turn to maintenance while VMs "
                           "are still running on it.(VM: %s, Source: %s, "
                           "Destination: %s)." % (vm.name, host.name,
                                                   others[0].name),
                           vm, host, types.LogSeverity.WARNING)
            else:
                vm.host = types.Host(id=others[0].id)
        if not stay:
            self._steps[host.id] = [H.PREPARING_FOR_MAINTENANCE] * \
                self.maintenance_reads + [H.MAINTENANCE]

    def _migrate(self, vm, action):
        if affinity(vm) == types.VmAffinity.PINNED:
            failed("Cannot migrate VM. VM is pinned to Host.")
        if vm.status not in RUNNING:
            failed("Cannot migrate VM. VM is not running.")
        # Sent; the host refuses it (MigrationError): the VM stays.

    def _shutdown(self, vm, action):
        if vm.status not in RUNNING:
            failed("Cannot shutdown VM. VM is not running.")
        self.event("VM shutdown initiated by admin@internal-authz on VM %s "
                   "(Host: %s)." % (vm.name, self.host(vm.host).name), vm)
        if vm.name in self.ignore_shutdown:
            vm.status = S.POWERING_DOWN
            return
        vm.status = S.POWERING_DOWN
        self._steps[vm.id] = [S.POWERING_DOWN] * self.shutdown_reads + \
            [S.DOWN]

    def _stop(self, vm, action):
        if vm.status not in RUNNING:
            failed("Cannot stop VM. VM is not running.")
        self.event("VM %s powered off by admin@internal-authz (Host: %s)."
                   % (vm.name, self.host(vm.host).name), vm)
        vm.status = S.DOWN
        vm.host = None
        self._steps.pop(vm.id, None)

    def _start(self, vm, action):
        if vm.status in RUNNING:
            failed("Cannot run VM. VM is running.")
        white = None
        if action.vm is not None and action.vm.placement_policy is not None:
            white = [self.host(h) for h in
                     action.vm.placement_policy.hosts or ()]
            if None in white:
                failed("Entity not found", 404)
        candidates = self._schedule(vm, white)
        for host in candidates:
            message = self.fail_on.get(host.name)
            if message is None:
                vm.host = types.Host(id=host.id)
                if self.start_reads:
                    vm.status = S.WAIT_FOR_LAUNCH
                    self._steps[vm.id] = [S.POWERING_UP] * \
                        (self.start_reads - 1) + [S.UP]
                else:
                    vm.status = S.UP
                self.event("VM %s was started by admin@internal-authz "
                           "(Host: %s)." % (vm.name, host.name), vm, host)
                return
            self.event("VM %s is down with error. Exit message: %s."
                       % (vm.name, message), vm, host,
                       types.LogSeverity.ERROR)
        vm.status = S.WAIT_FOR_LAUNCH
        vm.host = types.Host(id=candidates[-1].id)
        self._steps[vm.id] = [S.WAIT_FOR_LAUNCH] * self.start_reads + \
            [S.DOWN]
        self.event("Failed to run VM %s (User: admin@internal-authz)."
                   % vm.name, vm, None, types.LogSeverity.ERROR)

    def _schedule(self, vm, white):
        """SchedulingManager: the Up hosts of the VM's cluster (the white
        list's only, if any), filtered; least loaded first."""
        hosts = [h for h in self.engine.hosts if self.status(h) == H.UP
                 and h.cluster.id == vm.cluster.id]
        if white is not None:
            hosts = [h for h in hosts if h in white]
        if not hosts:
            failed("Cannot run VM. There are no hosts to use. Check that "
                   "the cluster contains at least one host in Up state.")
        reasons = []
        dedicated = [self.host(h) for h in (vm.placement_policy.hosts or ())
                     ] if vm.placement_policy else []
        if affinity(vm) == types.VmAffinity.PINNED and dedicated:
            for h in hosts:
                if h not in dedicated:
                    reasons.append("The host %s did not satisfy internal "
                                   "filter PinToHost because the host is "
                                   "not present in the pinning list." % h.name)
            hosts = [h for h in hosts if h in dedicated]
        for group in self.engine.groups[vm.cluster.id].values():
            rule = group["group"].hosts_rule
            if vm.id not in group["vms"] or not (rule and rule.enabled and
                                                 rule.enforcing and
                                                 rule.positive):
                continue
            allowed = {h for lb in group["hostlabels"]
                       for h in self.engine.labels[lb]["hosts"]}
            for h in hosts:
                if h.id not in allowed:
                    reasons.append("The host %s did not satisfy internal "
                                   "filter VmToHostsAffinityGroups because "
                                   "it did not match positive affinity rules "
                                   "%s." % (h.name, group["group"].name))
            hosts = [h for h in hosts if h.id in allowed]
        if not hosts:
            failed(", ".join(["Cannot run VM. There is no host that "
                              "satisfies current scheduling constraints. See "
                              "below for details:"] + reasons))
        return sorted(hosts, key=lambda h: len(self.running_on(h)))

"""Engine's VM monitoring, run: what vdsm sends, judged by Engine's code.

Each Host.getAllVmStats answer and VM_status event goes through Engine's
own classes (master 0111fc63, built by tests/engine/java/build, run by
tests/engine/java.py) in Engine's call order (vdsmc.Monitor says which):
VdsBrokerObjectsBuilder parses it (VmStatsVdsBrokerCommand.createVdsmVm,
EventVmStatsRefresher.convertEvent), VmManager.isLatestData orders it and
VmAnalyzer.analyze judges it against the state Engine's database would
hold (a VM Engine ran is WaitForLaunch on this host until vdsm says
otherwise; what the analyzer saves is the next state).

A finding is a place where Engine misbehaves on what it got:
- Engine's code threw: parsing (the whole GetAllVmStats or event is
  lost) or VmAnalyzer (that VM's data is lost);
- Engine logged an ERROR (e.g. "Illegal VM status", taken as Unassigned);
- a poll was skipped by isLatestData ("newer VM data was already
  processed"); an event skipped after an analyzed poll is benign (that
  poll carried newer news, as on every host);
- a reported NIC matches none of the VM's NICs in Engine (VmAnalyzer
  updateInterfaceStatistics compares the MACs, which Engine's
  NetworkInterface lowercases): its statistics are dropped;
- a disk Engine gave an image has no statistics (buildVmDiskStatistics
  keeps only entries with an imageID);
- a VM destroyed is still listed, or a running VM is not listed
  (VmAnalyzer.proceedDisappearedVm).

What Engine's code cannot tell and stays here: which NICs and images
Engine gave the VM (its database), and that last pair of expectations.
"""

from __future__ import annotations

from . import java

# What vdsm sends -> where Engine's parsed VM keeps it (vdsmc.Monitor's
# names): a field sent but null in Engine is lost on the way
# (VdsBrokerObjectsBuilder's assign*Value drop what is not of the type they
# take, e.g. assignDoubleValue a JSON integer).
FIELDS = {"elapsedTime": "elapsedTime", "cpuUser": "cpuUser",
          "cpuSys": "cpuSys", "memUsage": "usageMemPercent",
          "timeOffset": "utcDiff", "session": "session",
          "pauseCode": "pauseStatus", "clientIp": "clientIp"}
DISK_FIELDS = ("readRate", "writeRate", "readOps", "writeOps")


class EngineMonitor:
    """One Engine's view of one host's VMs, fed with what vdsm sends."""

    def __init__(self, host_id=None):
        self.jvm = java.jvm()
        self.jvm.call("new-engine", host=host_id)
        self.findings = []
        self.benign = []
        self.analyzed = {"poll": 0, "event": 0}
        self.results = []          # every VM's result, in order
        self.running = set()       # VMs Engine runs on this host
        self.destroyed = set()     # VM.destroy answered success
        self.nic_macs = {}
        self.image_ids = {}
        self._last_source = {}

    def _find(self, source, vm_id, what):
        self.findings.append("%s %s: %s" % (source, vm_id, what))

    def created(self, vm_id, macs=(), image_ids=()):
        """Engine ran ``vm_id`` here with these NICs and image disks."""
        self.jvm.call("created", vmId=vm_id, macs=list(macs))
        self.running.add(vm_id)
        self.destroyed.discard(vm_id)
        self.nic_macs[vm_id] = tuple(macs)
        self.image_ids[vm_id] = tuple(image_ids)

    def destroyed_now(self, vm_id):
        self.jvm.call("destroyed", vmId=vm_id)
        self.running.discard(vm_id)
        self.destroyed.add(vm_id)

    def _send(self, source, cmd, **args):
        try:
            results, log = self.jvm.call(cmd, **args)
        except java.EngineError as e:
            self._find(source, "-", "Engine threw %s (log %s)"
                       % (e.error, e.log))
            return []
        for line in log:
            if " ERROR " in line:
                self._find(source, "-", "Engine logged: %s" % line)
        return results

    def poll(self, vm_list):
        """One Host.getAllVmStats answer's statsList."""
        sampled = {s.get("vmId") for s in vm_list if s.get("disks")}
        sent = {s.get("vmId"): s for s in vm_list}
        for r in self._send("poll", "poll", stats=list(vm_list)):
            vm_id = r["vmId"]
            self.results.append(("poll", r))
            if not r["listed"]:
                if vm_id in self.running:
                    self._find("poll", vm_id, "not listed: proceed"
                               "DisappearedVm sets it %s" % r["dbStatus"])
                continue
            if vm_id in self.destroyed:
                self._find("poll", vm_id, "listed (%s) after VM.destroy "
                           "succeeded" % r["status"])
            self._latest("poll", r)
            self._lost(vm_id, sent.get(vm_id, {}), r)
            if r["latest"] and not r.get("error"):
                self._interfaces(vm_id, r)
                if vm_id in sampled:       # vdsm reports every drive
                    self._disks(vm_id, r)

    def event(self, params):
        """One VM_status event's params, notify_time included."""
        for r in self._send("event", "event", params=dict(params)):
            self.results.append(("event", r))
            self._latest("event", r)

    def _lost(self, vm_id, struct, r):
        for key, field in FIELDS.items():
            if key in struct and field in r and r[field] is None:
                self._find("poll", vm_id, "%s %r: null in Engine"
                           % (key, struct[key]))
        for disk in r.get("disks") or ():
            for key in DISK_FIELDS:
                if disk.get(key) is None:
                    self._find("poll", vm_id, "disk %s %s: null in Engine"
                               % (disk["imageId"], key))

    def caps(self, caps):
        """Host.getCapabilities as Engine's VDS holds it."""
        return self.jvm.call("caps", caps=caps)[0]

    def _latest(self, source, r):
        vm_id = r["vmId"]
        if r.get("error"):
            self._find(source, vm_id, "VmAnalyzer threw %s: Engine drops "
                       "this VM's data" % r["error"])
        if r["latest"]:
            self.analyzed[source] += 1
            self._last_source[vm_id] = source
            return
        what = "skipped: newer VM data was already processed (%s %r)" % (
            source, r.get("timestamp"))
        if source == "event" and self._last_source.get(vm_id) == "poll":
            self.benign.append(what)
        else:
            self._find(source, vm_id, what)

    def _interfaces(self, vm_id, r):
        """VmAnalyzer.updateInterfaceStatistics matches a reported NIC to
        the VM's by MAC string, both lowercased by Engine's
        NetworkInterface.setMacAddress: an unmatched one is dropped."""
        macs = [n["mac"] for n in r.get("engineNics") or ()]
        for nic in r.get("nics") or ():
            if nic["mac"] not in macs:
                self._find("poll", vm_id, "NIC %r matches none of Engine's "
                           "MACs %r" % (nic["mac"], macs))

    def _disks(self, vm_id, r):
        reported = {d["imageId"] for d in r.get("disks") or ()}
        for image_id in sorted(set(self.image_ids.get(vm_id, ())) - reported):
            self._find("poll", vm_id, "no disk entry with imageID %s: "
                           "Engine gets no statistics for it" % image_id)

    def last(self, vm_id, source=None):
        """The latest result for ``vm_id`` (of ``source`` if given)."""
        for src, r in reversed(self.results):
            if r["vmId"] == vm_id and source in (None, src):
                return r
        return None

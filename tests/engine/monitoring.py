"""Engine's VM monitoring rules, as a check: a STAND-IN, not Engine.

Written from ovirt-engine's code (master 0111fc63, the same logic as 4.5.7;
paths under backend/manager/modules/vdsbroker/src/main/java/org/ovirt/
engine/core/vdsbroker), to report every Host.getAllVmStats entry or
VM_status event that Engine would drop, misparse or fail on.  It is what
this project can run without an Engine; it checks only the rules below, and
a finding here is a defect Engine would show, not proof of the converse.

- Ordering (``VmManager.isLatestData``, called by
  ``VmsMonitoring.shouldAnalyzeVm``): each VM keeps the timestamp of the
  last data analyzed from this host; data with an older timestamp is
  skipped ("newer VM data was already processed").  A poll's timestamp is
  the VM's statusTime (``VdsBrokerObjectsBuilder.getVdsmCallTimestamp``,
  ``VmStatsVdsBrokerCommand``), an event's its ``notify_time``
  (``EventVmStatsRefresher.convertEvent``,
  ``removeNotifyTimeFromVmStatusEvent``: a non-number is null, and
  ``isLatestData`` unboxing null is a NullPointerException).
- Parsing (``VdsBrokerObjectsBuilder.updateVMDynamicData``,
  ``updateVMStatisticsData``, ``convertToVmStatus``,
  ``buildInterfaceStatisticsData``/``extractInterfaceStatistics``,
  ``buildVmDiskStatistics``, the ``assign*Value`` helpers): values Java
  would throw on (``Integer.parseInt``, ``Double.parseDouble``, casts) fail
  the whole GetAllVmStats; values it logs and replaces (an unknown status
  becomes Unassigned, a bad pauseCode or session is ignored) are misparsed;
  a disk entry without imageID is dropped.
- ``VmAnalyzer.updateInterfaceStatistics`` (NetworkStatisticsBuilder):
  NICs are matched to Engine's by the exact MAC string; rates are computed
  from rx/tx deltas over sampleTime deltas: a missing rx, tx or sampleTime
  is a NullPointerException.
- ``VmAnalyzer.proceedDisappearedVm``: a VM Engine runs on this host that
  a poll doesn't list is set Down; one that was destroyed and is still
  listed stays "running" in Engine.
"""

from __future__ import annotations

import uuid

# VMStatus.java; convertToVmStatus maps these two vdsm names itself.
VM_STATUSES = {s.lower() for s in (
    "Unassigned Down Up PoweringUp Paused MigratingFrom MigratingTo Unknown "
    "NotResponding WaitForLaunch RebootInProgress SavingState RestoringState "
    "Suspended ImageIllegal ImageLocked PoweringDown").split()}
MIGRATION_NAMES = ("Migration Source", "Migration Destination")
PAUSE_CODES = {"NONE", "EOTHER", "EIO", "ENOSPC", "EPERM", "NOERR",
               "POSTCOPY"}                              # VmPauseStatus.java
SESSIONS = {"Unknown", "UserLoggedOn", "Locked", "Active", "LoggedOff"}
EXIT_STATUSES = range(0, 3)                             # VmExitStatus
EXIT_REASONS = range(-1, 15)                            # VmExitReason


def _java_double(value):
    """assignDoubleValue: Double as is, String through parseDouble (throws
    on junk), anything else null."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return float(value)
    return None


def _java_long(value):
    """assignLongValue/assignBigIntegerValue: ints, or a string cut at its
    first '.'; junk is logged and null."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value.split(".")[0])
        except ValueError:
            return None
    return None


def _java_int_text(value):
    """``Integer.parseInt(x.toString())``: throws on anything else."""
    return int(str(value))


class EngineMonitor:
    """One Engine's view of one host's VMs, fed with what vdsm sends."""

    def __init__(self, nic_macs=None):
        self.findings = []
        self._last_ts = {}       # VmManager.lastStatusEventTimestamp
        self._nic_samples = {}   # (vm, mac) -> (rx, tx, sampleTime)
        self.nic_macs = dict(nic_macs or {})   # vm -> MACs Engine sent
        self.running = set()     # VMs Engine runs on this host
        self.image_ids = {}      # vm -> imageIDs of its disks in Engine
        self.benign = []         # events older than a poll: Engine skips
        self._last_source = {}   # vm -> "poll"/"event" of the last analyzed
        self.destroyed = set()   # VM.destroy answered success
        self.analyzed = {"poll": 0, "event": 0}

    def _find(self, source, vm_id, what):
        self.findings.append("%s %s: %s" % (source, vm_id, what))

    def created(self, vm_id, macs=(), image_ids=()):
        """Engine ran ``vm_id`` here with these NICs and image disks."""
        self.running.add(vm_id)
        self.destroyed.discard(vm_id)
        self.nic_macs[vm_id] = tuple(macs)
        self.image_ids[vm_id] = tuple(image_ids)

    def destroyed_now(self, vm_id):
        self.running.discard(vm_id)
        self.destroyed.add(vm_id)

    def _latest(self, source, vm_id, timestamp):
        """VmManager.isLatestData (one host: the reporter id always
        matches)."""
        if timestamp is None:
            self._find(source, vm_id, "null timestamp: NullPointerException "
                       "in VmManager.isLatestData")
            return False
        last = self._last_ts.get(vm_id)
        if last is not None and last > timestamp:
            what = "skipped: newer VM data was already processed (%s %r " \
                "after %s %r)" % (source, timestamp,
                                  self._last_source[vm_id], last)
            if source == "event" and self._last_source[vm_id] == "poll":
                # stamped before a poll that was analyzed first: that poll
                # carried newer news, as on every host
                self.benign.append(what)
            else:
                self._find(source, vm_id, what)
            return False
        self._last_ts[vm_id] = timestamp
        self._last_source[vm_id] = source
        return True

    def event(self, params):
        """One VM_status event's params, notify_time included."""
        params = dict(params)
        notify = params.pop("notify_time", None)
        timestamp = float(notify) if isinstance(notify, (int, float)) and \
            not isinstance(notify, bool) else None
        for vm_id, struct in params.items():
            uuid.UUID(vm_id)                     # new Guid(key)
            self._dynamic("event", vm_id, struct)
            if self._latest("event", vm_id, timestamp):
                self.analyzed["event"] += 1

    def poll(self, vm_list):
        """One Host.getAllVmStats answer's statsList."""
        listed = set()
        for struct in vm_list:
            vm_id = struct.get("vmId")
            listed.add(vm_id)
            try:
                timestamp = _java_double(struct["statusTime"]) \
                    if "statusTime" in struct else -1.0
            except ValueError:
                self._find("poll", vm_id, "statusTime %r: NumberFormat"
                           "Exception fails GetAllVmStats"
                           % (struct["statusTime"],))
                continue
            self._dynamic("poll", vm_id, struct)
            self._statistics("poll", vm_id, struct)
            if vm_id in self.destroyed:
                self._find("poll", vm_id, "listed (%s) after VM.destroy "
                           "succeeded" % struct.get("status"))
            if self._latest("poll", vm_id, timestamp):
                self.analyzed["poll"] += 1
                self._interfaces("poll", vm_id, struct)
        for vm_id in sorted(self.running - listed):
            self._find("poll", vm_id, "not listed: proceedDisappearedVm "
                       "sets it Down")

    def _dynamic(self, source, vm_id, s):
        """updateVMDynamicData's parsing."""
        status = s.get("status")
        if status is not None:
            if not isinstance(status, str):
                self._find(source, vm_id, "status %r: ClassCastException"
                           % (status,))
            elif status not in MIGRATION_NAMES and \
                    status.replace(" ", "").lower() not in VM_STATUSES:
                self._find(source, vm_id, "status %r: Illegal VM status, "
                           "taken as Unassigned" % status)
        if "acpiEnable" in s and not isinstance(s["acpiEnable"], str):
            self._find(source, vm_id, "acpiEnable %r: ClassCastException"
                       % (s["acpiEnable"],))
        if "session" in s and s["session"] not in SESSIONS:
            self._find(source, vm_id, "session %r: illegal" % (s["session"],))
        if "pauseCode" in s and s["pauseCode"] not in PAUSE_CODES:
            self._find(source, vm_id, "pauseCode %r: not parsed"
                       % (s["pauseCode"],))
        for key, allowed in (("exitCode", EXIT_STATUSES),
                             ("exitReason", EXIT_REASONS),
                             ("monitorResponse", None)):
            if key not in s:
                continue
            try:
                value = _java_int_text(s[key])
            except ValueError:
                self._find(source, vm_id, "%s %r: NumberFormatException"
                           % (key, s[key]))
                continue
            if allowed is not None and value not in allowed:
                self._find(source, vm_id, "%s %r: no such value in Engine"
                           % (key, value))

    def _statistics(self, source, vm_id, s):
        """updateVMStatisticsData and buildVmDiskStatistics."""
        for key in ("elapsedTime", "cpuSys", "cpuUser"):
            if key in s:
                try:
                    _java_double(s[key])
                except ValueError:
                    self._find(source, vm_id, "%s %r: NumberFormatException"
                               % (key, s[key]))
        expected = set(self.image_ids.get(vm_id, ()))
        reported = set()
        for name, disk in (s.get("disks") or {}).items():
            image_id = disk.get("imageID")
            if not isinstance(image_id, str) or not image_id:
                continue      # not an image: buildVmDiskStatistics skips it
            uuid.UUID(image_id)                   # new Guid(...)
            reported.add(image_id)
            for key in ("readRate", "writeRate", "readOps", "writeOps",
                        "truesize"):
                if _java_long(disk.get(key)) is None:
                    self._find(source, vm_id, "disk %s %s %r: null"
                               % (name, key, disk.get(key)))
        if s.get("disks"):      # sampled: vdsm reports every drive
            for image_id in sorted(expected - reported):
                self._find(source, vm_id, "no disk entry with imageID %s: "
                           "Engine gets no statistics for it" % image_id)

    def _interfaces(self, source, vm_id, s):
        """buildInterfaceStatisticsData + updateInterfaceStatistics."""
        macs = self.nic_macs.get(vm_id, ())
        for nic in (s.get("network") or {}).values():
            mac = nic.get("macAddr")
            if mac not in macs:
                self._find(source, vm_id, "NIC %r matches none of Engine's "
                           "MACs %r" % (mac, macs))
                continue
            rx, tx = _java_long(nic.get("rx")), _java_long(nic.get("tx"))
            try:
                sample = _java_double(nic.get("sampleTime"))
            except ValueError:
                sample = None
            if rx is None or tx is None or sample is None:
                self._find(source, vm_id, "NIC %s rx/tx/sampleTime %r: "
                           "NullPointerException in updateInterface"
                           "Statistics" % (mac, (nic.get("rx"), nic.get("tx"),
                                                 nic.get("sampleTime"))))
                continue
            if _java_long(nic.get("speed")) is None:
                self._find(source, vm_id, "NIC %s speed %r: null"
                           % (mac, nic.get("speed")))
            prev = self._nic_samples.get((vm_id, mac))
            if prev is not None and sample < prev[2]:
                self._find(source, vm_id, "NIC %s sampleTime went back "
                           "(%r after %r)" % (mac, sample, prev[2]))
            self._nic_samples[(vm_id, mac)] = (rx, tx, sample)

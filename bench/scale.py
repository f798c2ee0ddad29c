"""Scale through a live vdsmd: N idle containers created over JSON-RPC.

    make bench-scale                 # N = 100, 500, 1000 (about 25 min)
    make bench                       # + live rows for 10 and 100 (bench.py)

Runs as root with Debian's /usr/bin/python3 (the one vdsmd runs on, where
vdsm's client is importable), on the live host of tests/live (setup-host,
services).  Everything goes through vdsm as Engine drives it: VM.create
over JSON-RPC on port 54321, ``|virt|VM_status|`` events on
``jms.queue.events``, Host.getAllVmStats, VM.destroy.  The containers are
busybox (contrib/build-busybox-image, offline) running a shell that waits
on a sleep: idle, two processes each, and it ends on SIGTERM.

Beside each figure, measured in the same run on the same host: the bare
runtime doing the same work (``runc run -d`` and conmon + ``runc start``
of a busybox bundle for a create, ``runc events --stats`` on each
container for the stats).  Numbers, never assertions: the report says what
the goals are and the figures say whether they hold.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from vdsm_container import config  # noqa: E402
from vdsm_container.runtimes import runc  # noqa: E402
from vdsm_container.spec import domxml  # noqa: E402
from tests.live.plainvm import plain_vm_name, plain_vm_xml  # noqa: E402

from bench.baseline import Bare  # noqa: E402

SERVICES = os.path.join(REPO, "tests", "live", "services")
SETUP_HOST = os.path.join(REPO, "tests", "live", "setup-host")
BUILD_IMAGE = os.path.join(REPO, "contrib", "build-busybox-image")
VDSM_LOG = "/var/log/vdsm/vdsm.log"
RUN = "/var/run/vdsm"
WORK = "/var/tmp/vdsm-container-scale"
# Idle, and it ends on SIGTERM (as PID 1 a shell ignores SIGTERM unless
# it traps it; the trap runs once ``wait`` is interrupted).
COMMAND = ["sh", "-c", 'trap "exit 0" TERM; sleep 1000000 & wait']
WAIT = 120.0
SAMPLES = 10        # creates timed at each point (#1..., #N...)


def pct(values, p):
    """The p-th percentile (nearest rank) of ``values``, or None."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5))
                                 - 1))]


# --- the live host ----------------------------------------------------

class LiveHost:
    """vdsmd over JSON-RPC, with its event stream."""

    def __init__(self):
        from vdsm import client
        self._client_mod = client
        self.cli = None
        self.events_cli = None
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._status = {}   # vmId -> [(status, monotonic time)]
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def setup():
        subprocess.run(["bash", SETUP_HOST], check=True,
                       stdout=subprocess.DEVNULL)

    @staticmethod
    def services(*args):
        subprocess.run([SERVICES] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def connect(self, timeout=WAIT):
        client = self._client_mod
        deadline = time.monotonic() + timeout
        while True:
            try:
                cli = client.connect("localhost", 54321, use_tls=False,
                                     timeout=max(10.0, WAIT / 4))
                cli.Host.ping2()
                return cli
            except (client.ServerError, client.ConnectionError,
                    client.TimeoutError, OSError) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError("vdsm never answered: %s" % e) from e
                time.sleep(0.2)

    def open(self):
        self.close()
        self.cli = self.connect()
        self.events_cli = self.connect()
        self._queue = queue.Queue()
        self.events_cli.subscribe("jms.queue.events", self._queue)
        self._stop.clear()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        # The sampler's per-round DEBUG line (plugin._sample_loop).
        self.cli.Host.setLogLevel(level="DEBUG", name="vdsm_container")

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for c in (self.cli, self.events_cli):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        self.cli = self.events_cli = None

    def _drain(self):
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                continue
            now = time.monotonic()
            method, params = item
            if not method.startswith("|virt|VM_status|"):
                continue
            with self._lock:
                for vm_id, st in params.items():
                    if isinstance(st, dict) and "status" in st:
                        self._status.setdefault(vm_id, []).append(
                            (st["status"], now))

    def wait_status(self, vm_id, status, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for st, when in self._status.get(vm_id, ()):
                    if st == status:
                        return when
                    if st == "Down" and status != "Down":
                        raise RuntimeError("%s went Down" % vm_id)
            time.sleep(0.002)
        raise RuntimeError("no %s event for %s in %.0f s" % (
            status, vm_id, timeout))

    def create(self, xml, vm_id):
        """VM.create; the seconds until its Up event."""
        t0 = time.monotonic()
        self.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
        return self.wait_status(vm_id, "Up") - t0

    def pid(self, name):
        with open(os.path.join(RUN, name + ".pid")) as f:
            pid = int(f.read())
        if name == "vdsmd":
            # The pid file holds the shell that exec'd the launcher.
            return pid
        return pid


class RawStomp:
    """JSON-RPC over STOMP with nothing but a socket.

    vdsm's Python client parses a reply in small reads and Python frames;
    Engine's client is Java.  This one reads the reply's bytes as they
    come, so its time is vdsm's answer and the transfer, and the JSON
    decoding is timed apart.  (yajsonrpc/stomp.py: CONNECT, SUBSCRIBE to
    the responses topic, SEND to the requests topic.)
    """

    REQUESTS = "jms.topic.vdsm_requests"
    RESPONSES = "jms.topic.vdsm_responses"

    def __init__(self, host="localhost", port=54321):
        self.sock = socket.create_connection((host, port))
        self._buf = b""
        self._send("CONNECT", {"accept-version": "1.2", "host": host,
                               "heart-beat": "0,0"})
        self._frame()   # CONNECTED
        self._send("SUBSCRIBE", {"destination": self.RESPONSES,
                                 "ack": "auto", "id": str(uuid.uuid4())})

    def _send(self, command, headers, body=b""):
        if body:
            headers = dict(headers, **{"content-length": str(len(body))})
        head = "%s\n%s\n" % (command, "".join(
            "%s:%s\n" % kv for kv in headers.items()))
        self.sock.sendall(head.encode() + body + b"\0")

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("vdsm closed the connection")
        self._buf += data

    def _frame(self):
        """(command, headers, body bytes) of the next frame."""
        while True:
            self._buf = self._buf.lstrip(b"\r\n")    # heart-beats
            end = self._buf.find(b"\n\n")
            if end >= 0:
                break
            self._fill()
        lines = self._buf[:end].decode().split("\n")
        headers = dict(line.split(":", 1) for line in lines[1:])
        start = end + 2
        if "content-length" in headers:
            stop = start + int(headers["content-length"])
            chunks = [self._buf]
            have = len(self._buf)
            while have < stop + 1:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("vdsm closed the connection")
                chunks.append(data)
                have += len(data)
            self._buf = b"".join(chunks)
        else:
            while self._buf.find(b"\0", start) < 0:
                self._fill()
            stop = self._buf.find(b"\0", start)
        body = self._buf[start:stop]
        self._buf = self._buf[stop + 1:]
        return lines[0], headers, body

    def call(self, method, params=None):
        """(seconds until the whole reply is here, reply bytes)."""
        req_id = str(uuid.uuid4())
        body = json.dumps({"jsonrpc": "2.0", "method": method,
                           "params": params or {},
                           "id": req_id}).encode()
        t0 = time.monotonic()
        self._send("SEND", {"destination": self.REQUESTS,
                            "content-type": "application/json",
                            "reply-to": self.RESPONSES}, body)
        while True:
            command, _, reply = self._frame()
            if command == "MESSAGE" and req_id.encode() in reply[-200:] + \
                    reply[:200]:
                return time.monotonic() - t0, reply

    def close(self):
        self.sock.close()


def raw_get_all(runs):
    """Host.getAllVmStats through RawStomp: (seconds to the whole reply,
    seconds to decode it) per run."""
    conn = RawStomp()
    try:
        answer, decode = [], []
        for _ in range(runs):
            took, reply = conn.call("Host.getAllVmStats")
            t0 = time.monotonic()
            json.loads(reply)
            decode.append(time.monotonic() - t0)
            answer.append(took)
        return answer, decode
    finally:
        conn.close()


def container_xml(image, vm_id):
    return domxml.build(vm_id, "scale-" + vm_id[:8], "runc", image,
                        memory_mib=64, command=COMMAND)


# --- /proc -------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of ``pid`` and its waited-for children."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def rollup(pid):
    """{'Rss', 'Pss'} in KiB of ``pid`` (smaps_rollup)."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def live_conmons():
    """The conmon of each container of the live host (its pid file in the
    bundle): not those of anything else running here."""
    vms = os.path.join(config.Paths.from_env().run_dir, "vms")
    found = []
    for vm_id in os.listdir(vms) if os.path.isdir(vms) else ():
        try:
            with open(os.path.join(vms, vm_id, "bundle", "conmon.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "conmon":
                    found.append(pid)
        except (OSError, ValueError):
            pass
    return found


def daemons():
    return {"vdsmd": LiveHost().pid("vdsmd"),
            "supervdsmd": LiveHost().pid("supervdsmd")}


def memory(n, base):
    """Host memory per container: conmon PSS, and the daemons' growth over
    the figures with no container (``base``), per container."""
    conmons = live_conmons()
    pss = sum(rollup(p).get("Pss", 0) for p in conmons)
    out = {"conmons": len(conmons), "conmon_pss_kib": pss / max(1, n)}
    for name, pid in daemons().items():
        r = rollup(pid)
        out[name + "_threads"] = len(os.listdir("/proc/%d/task" % pid))
        out[name + "_rss_kib"] = r.get("Rss", 0)
        out[name + "_per_ctr_kib"] = (r.get("Rss", 0) - base.get(
            name + "_rss_kib", 0)) / max(1, n)
    return out


def log_rounds(since, kind="sampling"):
    """(containers, seconds, cpu seconds) of the plugin's rounds logged in
    vdsm.log after byte offset ``since``."""
    pat = re.compile(r"%s round: (\d+) containers in ([\d.]+) s, "
                     r"([\d.]+) s CPU" % kind)
    with open(VDSM_LOG, errors="replace") as f:
        f.seek(since)
        return [(int(m.group(1)), float(m.group(2)), float(m.group(3)))
                for m in pat.finditer(f.read())]


def log_recovery(since):
    with open(VDSM_LOG, errors="replace") as f:
        f.seek(since)
        found = re.findall(r"recovery: (\d+) containers in ([\d.]+) s",
                           f.read())
    return (int(found[-1][0]), float(found[-1][1])) if found else None


# --- the bare runtime ---------------------------------------------------

def bare_paths(work):
    """The baseline's own tree and cgroup parent (``baseline.Bare``)."""
    return config.Paths(run_dir=os.path.join(work, "run"),
                        storage_dir=os.path.join(work, "storage"),
                        cgroup_parent="vdsm-containers-bare.slice")


def remove_cgroup_parent(paths):
    """The baseline's cgroup parent, once its containers are gone (runc
    makes it on the first start and never removes it)."""
    for pattern in ("/sys/fs/cgroup/*/%s" % paths.cgroup_parent,
                    "/sys/fs/cgroup/%s" % paths.cgroup_parent):
        for path in glob.glob(pattern):
            try:
                os.rmdir(path)
            except OSError:
                pass


def runc_events_stats(vm_ids):
    """Seconds for ``runc events --stats`` on each of ``vm_ids``: what a
    sampler without the cgroup reads would run every round."""
    root = runc.Driver(config.Paths.from_env()).root
    t0 = time.monotonic()
    for vm_id in vm_ids:
        subprocess.run(["runc", "--root", root, "events", "--stats",
                        vm_id], stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


# --- the run ------------------------------------------------------------

def get_all_stats(host, runs):
    times = []
    result = None
    for _ in range(runs):
        t0 = time.monotonic()
        result = host.cli.Host.getAllVmStats()
        times.append(time.monotonic() - t0)
    return times, result


def plain_vm_stats(host):
    """One plain VM's VM.getStats, from the same vdsmd: what vdsm answers
    for a libvirt VM, so that its per-VM cost of a getAllVmStats reply can
    be weighed beside a container's.  (A thousand plain VMs can't run on
    these machines: qemu is TCG here.)  The VM is destroyed; vdsm with its
    storage side off can't finish that (vm.py ``_destroy`` ->
    ``irs.inappropriateDevices``), so the domain is undefined by hand and
    vdsmd restarted, which forgets it."""
    vm_id = str(uuid.uuid4())
    host.cli.VM.create(vmID=vm_id, vmParams={"xml": plain_vm_xml(vm_id)})
    try:
        # Polled: vdsm sends no VM_status event when a plain VM comes up,
        # it shows "Powering up" until its guest answers or a minute
        # passes (vm.py ``_getVmStatus``, GUEST_WAIT_TIMEOUT).
        deadline = time.monotonic() + 300
        while host.cli.VM.getStats(vmID=vm_id)[0]["status"] not in (
                "Up", "Powering up"):
            if time.monotonic() > deadline:
                raise RuntimeError("the plain VM never came up")
            time.sleep(0.5)
        # vdsm's own sampling (every 15 s) fills in the VM's figures.
        time.sleep(20)
        return host.cli.VM.getStats(vmID=vm_id)[0]
    finally:
        try:
            host.cli.VM.destroy(vmID=vm_id)
        except host._client_mod.ServerError:
            pass
        for verb in ("destroy", "undefine"):
            subprocess.run(["virsh", verb, plain_vm_name(vm_id)],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        host.close()
        LiveHost.services("restart", "vdsmd")
        host.open()


def _reply_cost(schema, rep, stats, runs):
    """vdsm's schema check of ``stats`` as a getAllVmStats reply and its
    JSON encoding, medians in seconds, and the reply's size."""
    verify, encode = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        schema.verify_retval(rep, stats)
        t1 = time.monotonic()
        data = json.dumps({"jsonrpc": "2.0", "id": "x", "result": stats},
                          ensure_ascii=False).encode("utf-8")
        verify.append(t1 - t0)
        encode.append(time.monotonic() - t1)
    return (statistics.median(verify), statistics.median(encode),
            len(data))


def stats_breakdown(runs=5, plain=None):
    """Where getAllVmStats' time goes, in-process on the same containers
    (read from the live run directory as root): the plugin's getStats
    copies, vdsm's check of the reply against its schema (rpc/Bridge.py
    ``_dynamicMethod`` -> ``verify_retval``, on every call), and the JSON
    encoding and decoding of the reply.  Medians, seconds."""
    from vdsm.api import vdsmapi
    from vdsm_container.container import Container
    from vdsm_container.host.backend import HostBackend
    backend = HostBackend(config.Paths.from_env())
    ctrs = Container.load_all(backend=backend)
    for _ in range(2):      # two samples: rates as vdsm reports them
        seen = backend.observe([c.id for c in ctrs], sample=True)
        for c in ctrs:
            c.apply(seen[c.id])
    schema = vdsmapi.Schema.vdsm_api(False)
    rep = vdsmapi.MethodRep("Host", "getAllVmStats")
    parts = {"getStats": [], "verify": [], "encode": [], "decode": []}
    for _ in range(runs):
        t0 = time.monotonic()
        stats = [c.getStats() for c in ctrs]
        t1 = time.monotonic()
        schema.verify_retval(rep, stats)
        t2 = time.monotonic()
        data = json.dumps({"jsonrpc": "2.0", "id": "x", "result": stats},
                          ensure_ascii=False).encode("utf-8")
        t3 = time.monotonic()
        json.loads(data)
        t4 = time.monotonic()
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[k].append(v)
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["bytes"] = len(data)
    out["n"] = len(ctrs)
    if plain is not None:
        # As many plain VMs' stats as there are containers: one real
        # plain VM's reply, each copy with a vmId of its own.
        plains = [dict(plain, vmId=str(uuid.uuid4())) for _ in ctrs]
        out["plain_verify"], out["plain_encode"], out["plain_bytes"] = \
            _reply_cost(schema, rep, plains, runs)
    return out


def at_rest(host, seconds):
    """CPU seconds of vdsmd and supervdsmd over ``seconds`` at rest, per
    minute, and the sampler's rounds meanwhile."""
    pids = daemons()
    since = os.path.getsize(VDSM_LOG)
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    time.sleep(seconds)
    after = {n: cpu_seconds(p) for n, p in pids.items()}
    per_min = {n: (after[n] - before[n]) * 60.0 / seconds for n in pids}
    return per_min, log_rounds(since), log_rounds(since, "status")


def restart_recovery(host, vm_ids):
    """vdsmd restart -> every one of ``vm_ids`` listed Up by
    getAllVmStats."""
    mine = set(vm_ids)
    n = len(mine)
    up = 0
    host.close()
    since = os.path.getsize(VDSM_LOG)
    LiveHost.services("stop", "vdsmd")
    t0 = time.monotonic()
    LiveHost.services("start", "vdsmd")
    client = host._client_mod
    cli = host.connect()
    answering = time.monotonic() - t0
    while True:
        try:
            vms = cli.Host.getAllVmStats()
            up = sum(1 for v in vms if v.get("status") == "Up" and
                     v.get("vmId") in mine)
            if up >= n:
                break
        except client.ServerError:
            pass
        if time.monotonic() - t0 > 600:
            raise RuntimeError("recovery: %d of %d Up after 600 s"
                               % (up, n))
        time.sleep(0.05)
    total = time.monotonic() - t0
    cli.close()
    host.open()
    return {"answering_s": answering, "all_up_s": total,
            "plugin": log_recovery(since)}


def destroy_all(host, vm_ids):
    t0 = time.monotonic()
    for vm_id in vm_ids:
        host.cli.VM.destroy(vmID=vm_id)
    for vm_id in vm_ids:
        host.wait_status(vm_id, "Down")
    return time.monotonic() - t0


def run(counts, rest_seconds, stats_runs, image, full=True, log=print):
    """Measure at each count in ``counts``; return the rows."""
    work = tempfile.mkdtemp(prefix="bare-", dir=WORK)
    bare = Bare(bare_paths(work), image, COMMAND)
    host = LiveHost()
    host.open()
    made = []
    rows = {}
    try:
        base = {"bare_runc": bare.runc_run(SAMPLES),
                "bare_conmon": bare.conmon_runc(SAMPLES)}
        base.update(memory(0, {}))
        if full:
            try:
                base["plain_stats"] = plain_vm_stats(host)
            except Exception as e:
                log("scale: no plain VM to compare with: %s" % e)
        if full:
            base["cpu"], _, _ = at_rest(host, rest_seconds)
            base["restart"] = restart_recovery(host, [])
        log("scale: baseline %s" % _short(base))
        first = []
        for n in counts:
            t_make = time.monotonic()
            lat = []
            while len(made) < n:
                vm_id = str(uuid.uuid4())
                made.append(vm_id)
                lat.append(host.create(container_xml(image, vm_id), vm_id))
                if len(made) <= SAMPLES:
                    first.append(lat[-1])
                if len(made) % 100 == 0:
                    log("scale: %d Up (last %.0f ms)" % (len(made),
                                                         lat[-1] * 1000))
            row = {"n": n, "create_s": time.monotonic() - t_make,
                   "first": list(first), "last": lat[-SAMPLES:],
                   "bare_runc": bare.runc_run(SAMPLES),
                   "bare_conmon": bare.conmon_runc(SAMPLES)}
            time.sleep(2 * 2.0)     # two status rounds: all settled
            row["getall"], vms = get_all_stats(host, stats_runs)
            row["getall_raw"], row["getall_raw_decode"] = raw_get_all(
                stats_runs)
            mine = set(made)
            row["listed_up"] = sum(1 for v in vms if v.get("status") == "Up"
                                   and v.get("vmId") in mine)
            row["runc_events_s"] = runc_events_stats(made)
            try:
                row["breakdown"] = stats_breakdown(
                    plain=base.get("plain_stats"))
            except Exception as e:      # vdsm's schema not importable
                log("scale: no getAllVmStats breakdown: %s" % e)
            if full:
                row["cpu"], row["rounds"], row["status_rounds"] = \
                    at_rest(host, rest_seconds)
                row["memory"] = memory(n, base)
                row["restart"] = restart_recovery(host, made)
            rows[n] = row
            log("scale: N=%d %s" % (n, _short(row)))
        if full and made:
            rows[counts[-1]]["destroy_s"] = destroy_all(host, made)
            made = []
    finally:
        if made:
            try:
                host.open()
                destroy_all(host, made)
            except Exception as e:
                log("scale: cleanup through vdsm failed (%s): "
                    "vdsm-container destroy" % e)
                for vm_id in made:
                    subprocess.run(["vdsm-container", "destroy", vm_id],
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        host.close()
        bare.close()
        remove_cgroup_parent(bare.paths)
        shutil.rmtree(work, ignore_errors=True)
    return base, rows


def _short(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, list) and v and isinstance(v[0], float):
            out[k] = "p50 %.1f ms" % (pct(v, 50) * 1000)
        elif isinstance(v, list):
            continue
        elif k == "plain_stats":
            out[k] = "%d fields" % len(v)
        else:
            out[k] = v
    return json.dumps(out, default=str)


def ms(v, p):
    x = pct(v, p)
    return "-" if x is None else "%.0f" % (x * 1000)


def host_limits():
    out = {}
    for name, path in (("pid_max", "/proc/sys/kernel/pid_max"),
                       ("threads-max", "/proc/sys/kernel/threads-max"),
                       ("inotify max_user_instances",
                        "/proc/sys/fs/inotify/max_user_instances"),
                       ("file-max", "/proc/sys/fs/file-max")):
        try:
            with open(path) as f:
                out[name] = f.read().strip()
        except OSError:
            pass
    return out


def report(base, rows, meta):
    counts = sorted(rows)
    head = "| | " + " | ".join("N=%d" % n for n in counts) + \
        " | baseline, same run |"
    sep = "|---|" + "---:|" * (len(counts) + 1)
    lines = ["# vdsm-container at scale, through a live vdsmd", "",
             "Host: %s, %d cores, %.0f GiB; vdsmd as user vdsm, supervdsmd "
             "as root (tests/live); idle busybox containers created one "
             "after another over JSON-RPC." % (
                 os.uname().release, os.cpu_count(),
                 os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                 / 2 ** 30),
             "Run: %s; %s." % (meta["when"], ", ".join(
                 "%s %s" % kv for kv in host_limits().items())), "",
             head, sep]

    def row(label, cells, baseline=""):
        lines.append("| %s | %s | %s |" % (label, " | ".join(cells),
                                           baseline))

    def get(n, *keys):
        v = rows[n]
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v

    row("all N Up (listed Up by getAllVmStats)",
        ["%d/%d" % (rows[n]["listed_up"], n) for n in counts])
    row("create->Up event, #1-%d, p50/p99 ms" % SAMPLES,
        ["%s/%s" % (ms(rows[n]["first"], 50), ms(rows[n]["first"], 99))
         for n in counts],
        "runc run -d %s/%s; conmon+runc %s/%s (none running)" % (
            ms(base["bare_runc"], 50), ms(base["bare_runc"], 99),
            ms(base["bare_conmon"], 50), ms(base["bare_conmon"], 99)))
    row("create->Up event, last %d to reach N, p50/p99 ms" % SAMPLES,
        ["%s/%s" % (ms(rows[n]["last"], 50), ms(rows[n]["last"], 99))
         for n in counts])
    row("  bare at N running: runc run -d p50/p99 ms",
        ["%s/%s" % (ms(rows[n]["bare_runc"], 50),
                    ms(rows[n]["bare_runc"], 99)) for n in counts])
    row("  bare at N running: conmon+runc p50/p99 ms",
        ["%s/%s" % (ms(rows[n]["bare_conmon"], 50),
                    ms(rows[n]["bare_conmon"], 99)) for n in counts])
    row("Host.getAllVmStats over JSON-RPC (vdsm's Python client), "
        "p50/p99 ms",
        ["%s/%s" % (ms(rows[n]["getall"], 50), ms(rows[n]["getall"], 99))
         for n in counts])
    row("  ... vdsm's answer, whole reply on a bare STOMP socket, p50/p99 "
        "ms (+ JSON decode p50)",
        ["%s/%s (+%s)" % (ms(rows[n]["getall_raw"], 50),
                          ms(rows[n]["getall_raw"], 99),
                          ms(rows[n]["getall_raw_decode"], 50))
         for n in counts])
    if all("breakdown" in rows[n] for n in counts):
        row("  in-process: getStats copies / vdsm's schema check of the "
            "reply / JSON encode + decode, ms",
            ["%.0f / %.0f / %.0f + %.0f" % tuple(
                rows[n]["breakdown"][k] * 1000 for k in (
                    "getStats", "verify", "encode", "decode"))
             for n in counts])
        row("  reply size, KiB",
            ["%.0f" % (rows[n]["breakdown"]["bytes"] / 1024)
             for n in counts])
    if all("plain_verify" in rows[n].get("breakdown", {}) for n in counts):
        row("  the same for N plain VMs (copies of one plain VM's "
            "VM.getStats, this run): vdsm's schema check / JSON encode, "
            "ms; reply KiB",
            ["%.0f / %.0f; %.0f" % (
                rows[n]["breakdown"]["plain_verify"] * 1000,
                rows[n]["breakdown"]["plain_encode"] * 1000,
                rows[n]["breakdown"]["plain_bytes"] / 1024)
             for n in counts])
    row("  runc events --stats on each of the N, s",
        ["%.1f" % rows[n]["runc_events_s"] for n in counts])
    if get(counts[0], "rounds") is not None:
        def rounds(n, kind):
            r = get(n, kind) or []
            if not r:
                return "-"
            return "%.2f s / %.2f s CPU" % (
                statistics.median(x[1] for x in r),
                statistics.median(x[2] for x in r))
        row("sampling round (every 15 s): wall / vdsmd thread CPU",
            [rounds(n, "rounds") for n in counts])
        row("status round (every 2 s): wall / vdsmd thread CPU",
            [rounds(n, "status_rounds") for n in counts])
        row("CPU s per minute at rest: vdsmd + supervdsmd",
            ["%.1f + %.1f" % (rows[n]["cpu"]["vdsmd"],
                              rows[n]["cpu"]["supervdsmd"])
             for n in counts],
            "%.1f + %.1f with no container" % (base["cpu"]["vdsmd"],
                                               base["cpu"]["supervdsmd"]))
        row("  ... beyond no container, % of one core",
            ["%.1f %%" % ((rows[n]["cpu"]["vdsmd"] +
                           rows[n]["cpu"]["supervdsmd"] -
                           base["cpu"]["vdsmd"] -
                           base["cpu"]["supervdsmd"]) / 60 * 100)
             for n in counts])
        row("conmon PSS per container, KiB",
            ["%.0f" % rows[n]["memory"]["conmon_pss_kib"]
             for n in counts])
        row("vdsmd + supervdsmd RSS growth per container, KiB",
            ["%.0f + %.0f" % (rows[n]["memory"]["vdsmd_per_ctr_kib"],
                              rows[n]["memory"]["supervdsmd_per_ctr_kib"])
             for n in counts],
            "RSS with no container: %.0f + %.0f MiB" % (
                base["vdsmd_rss_kib"] / 1024,
                base["supervdsmd_rss_kib"] / 1024))
        row("threads: vdsmd / supervdsmd (no per-container thread)",
            ["%d / %d" % (rows[n]["memory"]["vdsmd_threads"],
                          rows[n]["memory"]["supervdsmd_threads"])
             for n in counts],
            "%d / %d with no container" % (base["vdsmd_threads"],
                                           base["supervdsmd_threads"]))
        row("vdsmd restart -> all N Up in getAllVmStats, s",
            ["%.1f" % rows[n]["restart"]["all_up_s"] for n in counts],
            "%.1f to answer with no container" % (
                base["restart"]["answering_s"]))
        row("  of which the plugin's recovery (log), s",
            ["%.2f" % rows[n]["restart"]["plugin"][1]
             if rows[n]["restart"]["plugin"] else "-" for n in counts])
        row("destroy of all N (VM.destroy each, until Down events), s",
            ["%.1f" % rows[n]["destroy_s"] if "destroy_s" in rows[n]
             else "-" for n in counts])
    row("creating to reach N (sequential, each waits Up), s",
        ["%.0f" % rows[n]["create_s"] for n in counts])
    return "\n".join(lines) + "\n"


def write_section(path, name, text):
    """Put ``text`` into the report at ``path`` between this section's
    markers, replacing an earlier run's; the rest of the report stays
    (``make bench`` and ``make bench-scale`` write one report)."""
    begin, end = "<!-- %s -->" % name, "<!-- /%s -->" % name
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    block = "%s\n%s%s\n" % (begin, text, end)
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old + ("\n" if old else "") + block
    with open(path, "w") as f:
        f.write(new)


def live_rows(counts, image):
    """``make bench``'s rows through the live vdsmd (already running):
    create->Up event and getAllVmStats at each count."""
    base, rows = run(counts, 0, 20, image, full=False,
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    out = {"bare_runc": base["bare_runc"], "bare_conmon": base["bare_conmon"],
           "create": rows[counts[0]]["first"],
           "getall": {n: rows[n]["getall"] for n in counts},
           "listed_up": {n: rows[n]["listed_up"] for n in counts}}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,500,1000")
    ap.add_argument("--rest", type=float, default=60.0,
                    help="seconds at rest for the CPU figures")
    ap.add_argument("--stats-runs", type=int, default=30)
    ap.add_argument("--report", default=None,
                    help="the report whose 'scale' section to write")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-setup", action="store_true",
                    help="the live host is set up and running already")
    ap.add_argument("--live-rows", default=None, metavar="COUNTS",
                    help="only make bench's rows (live host running): "
                    "JSON on stdout")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-scale: run as root")
    counts = [int(c) for c in args.counts.split(",")]
    os.makedirs(WORK, exist_ok=True)
    image = os.path.join(WORK, "busybox.tar")
    subprocess.run([BUILD_IMAGE, image], check=True,
                   stdout=subprocess.DEVNULL)
    if args.live_rows:
        json.dump(live_rows([int(c) for c in args.live_rows.split(",")],
                            image), sys.stdout)
        return
    if not args.no_setup:
        LiveHost.setup()
        LiveHost.services("start")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    base, rows = run(counts, args.rest, args.stats_runs, image,
                     log=lambda m: print(m, flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"base": base, "rows": rows}, f, default=str)
    text = report(base, rows, {"when": when})
    print(text)
    if args.report:
        write_section(args.report, "scale", text)


if __name__ == "__main__":
    main()

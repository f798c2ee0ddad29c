"""The vdsm side of ``ovirt-container move``'s downtime, beside a plain
stop and start, through the live vdsmd of tests/live.

    flock /tmp/live.lock /usr/bin/python3 bench/move_downtime.py \
        [--runs 10] [--no-setup] [--two-hosts]

As root with Debian's /usr/bin/python3, on the live host (setup-host,
services: started here unless ``--no-setup``, stopped at the end either
way).  One container VM (busybox; its PID 1 ends on SIGTERM, as a
service that stops cleanly does) is created Up, then, alternately,
``--runs`` times each, timed from the first request to the VM's Up event
on ``jms.queue.events``, as Engine sees it:

    move   what a move asks of vdsm: VM.shutdown (Engine's ShutdownVm:
           DestroyVm, gracefully), the Down event, VM.destroy (Engine's
           clean-up of a VM it saw Down), VM.create of the same domain XML
           (RunVm on the target: the same XML, the same MAC), the Up event.
           On one host, source and target are one vdsmd: what a second
           host adds is its own prepareImage of the shared volume (in
           VM.create, timed here) and the network between them (nothing
           is copied).
    stop   a plain stop and start on one host: VM.destroy (Engine's
           StopVm: the container is killed), VM.create of the same XML,
           the Up event.

With ``--two-hosts``, the move goes between two hosts: the live host (A)
and tests/live/hostb's host B (its own daemons in namespaces of their
own), through a file domain both share, A its SPM, B in the pool as host
id 2; the image disk a volume of that domain, prepared by each host's own
prepareImage at VM.create.  The moves alternate A to B and B to A; each is
followed by a stop and start on the host it reached.

Printed: each phase's median, min and max (seconds).  Numbers, never
assertions.  Not in it: Engine's own part (its RunVm and scheduling, its
monitoring, which hears the Up event at once) and the tool's polling of
Engine (``--poll``, default 2 s, per wait).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.scale import (  # noqa: E402
    BUILD_IMAGE, COMMAND, WAIT, WORK, LiveHost, container_xml)

# Before each timed step, the VM has been Up this long: its PID 1 (a
# shell) has installed its SIGTERM trap (a PID 1 without a handler ignores
# SIGTERM: a shutdown at once after Up can find none and never end).
SETTLE = 0.5
HOSTB = os.path.join(os.path.dirname(HERE), "tests", "live", "hostb")
B_ADDR = "10.35.0.2"
SHARED = "/var/tmp/vdsm-twohosts"     # hostb's shared mount


def _event(host, vm_id, status, since, timeout=WAIT):
    """When the VM's first ``status`` event at or after ``since`` came
    (events of earlier rounds, or a late Down of a destroy, don't count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with host._lock:
            for st, when in host._status.get(vm_id, ()):
                if st == status and when >= since:
                    return when
        time.sleep(0.002)
    raise RuntimeError("no %s event for %s in %.0f s" % (status, vm_id,
                                                        timeout))


def move(host, vm_id, xml):
    time.sleep(SETTLE)
    t0 = time.monotonic()
    host.cli.VM.shutdown(vmID=vm_id, delay="0", message="move")
    down = _event(host, vm_id, "Down", t0)
    host.cli.VM.destroy(vmID=vm_id)
    t1 = time.monotonic()
    host.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    up = _event(host, vm_id, "Up", t1)
    return {"shutdown to Down": down - t0, "clean-up destroy": t1 - down,
            "create to Up": up - t1, "downtime": up - t0}


def stop_start(host, vm_id, xml):
    time.sleep(SETTLE)
    t0 = time.monotonic()
    host.cli.VM.destroy(vmID=vm_id)
    t1 = time.monotonic()
    host.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    up = _event(host, vm_id, "Up", t1)
    return {"destroy": t1 - t0, "create to Up": up - t1,
            "downtime": up - t0}


class HostB(LiveHost):
    """tests/live/hostb's vdsm, at its address."""

    def connect(self, timeout=WAIT):
        client = self._client_mod
        deadline = time.monotonic() + timeout
        while True:
            try:
                cli = client.connect(B_ADDR, 54321, use_tls=False,
                                     timeout=60)
                cli.Host.ping2()
                return cli
            except (client.ServerError, client.ConnectionError,
                    client.TimeoutError, OSError) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError("host B never answered: %s" % e) \
                        from e
                time.sleep(0.2)


def move_between(src, dst, vm_id, xml):
    """The VM, Up on ``src``, moved to ``dst`` as Engine drives it."""
    time.sleep(SETTLE)
    t0 = time.monotonic()
    src.cli.VM.shutdown(vmID=vm_id, delay="0", message="move")
    down = _event(src, vm_id, "Down", t0)
    src.cli.VM.destroy(vmID=vm_id)
    t1 = time.monotonic()
    dst.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    up = _event(dst, vm_id, "Up", t1)
    return {"shutdown to Down": down - t0, "clean-up destroy": t1 - down,
            "create to Up": up - t1, "downtime": up - t0}


def two_hosts(runs, image):
    """A move between host A and tests/live/hostb's host B, through a
    file domain both share (its volumes prepared by each host's own
    prepareImage), beside a stop and start on one host: ``runs`` of each,
    the moves alternately A to B and B to A."""
    from tests.live import conftest, storage
    subprocess.run([HOSTB, "start"], check=True, stdout=subprocess.DEVNULL)
    a, b = LiveHost(), HostB()
    fs = dc = dc_b = None
    vm_id = str(uuid.uuid4())
    results = {"move A<->B": [], "stop": []}
    try:
        a.open()
        b.open()
        fs = storage.LocalFS(parent=SHARED)
        dc = storage.DataCenter(a.cli, fs.path)
        dc.build()
        dc_b = dc.on(b.cli, host_id=2)
        dc_b.connect_server()
        dc_b.connect_pool()
        img = dc.create_volume(storage.volume_size_for(image))
        dc.upload(*img, image)
        xml = storage.with_volume_disks(
            conftest.container_xml(vm_id, "bench-2h-" + vm_id[:8],
                                   "/nonexistent", COMMAND),
            dc, {"sda": img})
        a.create(xml, vm_id)
        here, there = a, b
        for _ in range(runs):
            results["move A<->B"].append(move_between(here, there, vm_id,
                                                      xml))
            here, there = there, here
            results["stop"].append(stop_start(here, vm_id, xml))
    finally:
        for host in (a, b):
            try:
                host.cli.VM.destroy(vmID=vm_id)
            except Exception:
                pass
        for step in (lambda: dc_b and dc_b.destroy(),
                     lambda: dc and dc.destroy(), b.close, a.close,
                     lambda: fs and fs.remove()):
            try:
                step()
            except Exception as e:
                print("clean-up: %r" % e, file=sys.stderr)
        subprocess.run([HOSTB, "stop"], stdout=subprocess.DEVNULL)
    return results


def report(name, runs):
    print("%s (%d runs): median [min, max], s" % (name, len(runs)))
    if not runs:
        return
    for key in runs[0]:
        values = [r[key] for r in runs]
        print("  %-18s %.3f [%.3f, %.3f]" % (
            key, statistics.median(values), min(values), max(values)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-setup", action="store_true",
                    help="the live host is set up and its services run")
    ap.add_argument("--two-hosts", action="store_true",
                    help="moves between the live host and tests/live/"
                    "hostb's host B through a shared file domain")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("move_downtime: run as root")
    os.makedirs(WORK, exist_ok=True)
    image = os.path.join(WORK, "busybox.tar")
    subprocess.run([BUILD_IMAGE, image], check=True,
                   stdout=subprocess.DEVNULL)
    if not args.no_setup:
        LiveHost.setup()
        LiveHost.services("start")
    if args.two_hosts:
        try:
            results = two_hosts(args.runs, image)
        finally:
            if not args.no_setup:
                LiveHost.services("stop")
        print("vdsm side of a move between two hosts vs a plain stop and "
              "start (%s, %d cores)" % (time.strftime(
                  "%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count()))
        report("move A<->B: shutdown on one, Down, destroy, create on the "
               "other, Up", results["move A<->B"])
        report("stop and start on one host", results["stop"])
        return
    host = LiveHost()
    vm_id = str(uuid.uuid4())
    xml = container_xml(image, vm_id)
    results = {"move": [], "stop": []}
    failed = []
    try:
        host.open()
        host.create(xml, vm_id)
        for i in range(args.runs):
            for name, measure in (("move", move), ("stop", stop_start)):
                try:
                    results[name].append(measure(host, vm_id, xml))
                except Exception as e:
                    # Not timed; the VM made Up again for the next round.
                    print("round %d, %s: %s" % (i + 1, name, e),
                          file=sys.stderr)
                    failed.append((i + 1, name, str(e)))
                    try:
                        host.cli.VM.destroy(vmID=vm_id)
                    except Exception:
                        pass
                    host.create(xml, vm_id)
    finally:
        try:
            host.cli.VM.destroy(vmID=vm_id)
        except Exception as e:      # gone already, or vdsm down
            print("destroy %s: %s" % (vm_id, e), file=sys.stderr)
        host.close()
        if not args.no_setup:
            LiveHost.services("stop")
    print("vdsm side of a move vs a plain stop and start (%s, %d cores)"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             os.cpu_count()))
    report("move: shutdown, Down, destroy, create, Up", results["move"])
    report("stop and start: destroy, create, Up", results["stop"])
    for i, name, e in failed:
        print("failed: round %d, %s: %s" % (i, name, e[:300]))


if __name__ == "__main__":
    main()

"""vdsmd restart: with the plugin (and N containers) against without it.

    flock /tmp/live.lock /usr/bin/python3 bench/restart.py --runs 5 \
        --containers 20

Runs as root with Debian's /usr/bin/python3 on the live host of tests/live
(setup-host, services).  Each run: ``services stop vdsmd``, then the clock
starts and ``services start vdsmd`` runs the drop-in as systemd would
(ExecStartPre as root, then vdsmd as user vdsm) and returns once vdsm
listens on 54321; then Host.ping2 is asked until vdsm answers it (vdsm
answers every call with code 99 "Recovering from crash or Initializing"
until clientIF is ready: yajsonrpc ``_handle_request``), and with
containers, Host.getAllVmStats until all of them are listed Up.

Modes (``--modes interleaved``: plugin and bare in turn, under the same
load, only the drop-in differing, the containers running on), in this
order:

- ``plugin``: as setup-host installs it (the drop-in, the launcher,
  supervdsmd's module), with ``--containers`` busybox containers running;
  the first restart after supervdsmd's start has the probe cache as it
  is (``--cold`` removes it first: probes run in the background);
- ``bare``: vdsm's own unit command (a drop-in that only resets
  ExecStart= to vdsm's), no ExecStartPre, supervdsmd without the plugin's
  module, no container: vdsm as it is without the plugin.

setup-host is run again at the end, which puts the plugin back.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from bench import scale  # noqa: E402

DROPIN = "/etc/systemd/system/vdsmd.service.d/50-vdsm-container.conf"
SVDSM_MODULE = "/opt/vdsm-container-live/vdsm/lib/vdsm/supervdsm_api/" \
    "vdsm_container.py"
CACHE = "/var/lib/vdsm-container/probes.json"
BARE_DROPIN = """[Service]
ExecStart=
ExecStart=/usr/libexec/vdsm/daemonAdapter -0 /dev/null -1 /dev/null \
-2 /dev/null "/usr/libexec/vdsm/vdsmd"
"""


def services(*args):
    subprocess.run([scale.SERVICES] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


def one_restart(host, vm_ids):
    """Seconds from the start to: vdsm listening, answering, all Up."""
    from vdsm import client
    services("stop", "vdsmd")
    since = os.path.getsize(scale.VDSM_LOG)
    wall0 = time.time()
    t0 = time.monotonic()
    services("start", "vdsmd")
    listening = time.monotonic() - t0
    cli = host.connect()        # Host.ping2 until it answers
    answering = time.monotonic() - t0
    mine = set(vm_ids)
    while mine:
        try:
            vms = cli.Host.getAllVmStats()
            if sum(1 for v in vms if v.get("status") == "Up" and
                   v.get("vmId") in mine) >= len(mine):
                break
        except client.ServerError:
            pass
        time.sleep(0.02)
    up = time.monotonic() - t0
    cli.close()
    row = {"listening": listening, "answering": answering, "all_up": up}
    row.update(log_marks(since, wall0))
    return row


# vdsm.log lines that time the start: vdsm's first, the plugin's install,
# recovery's end (lib/vdsm/clientIF.py _recoverExistingVms).
MARKS = {"vdsm_first_line": "I am the actual vdsm",
         "plugin_installed": "Container support enabled",
         "recovered": "recovery: completed"}
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")


def log_marks(since, wall0):
    """Seconds from ``wall0`` to each of ``MARKS`` in vdsm.log."""
    found = {}
    with open(scale.VDSM_LOG, errors="replace") as f:
        f.seek(since)
        for line in f:
            for key, text in MARKS.items():
                m = _STAMP.match(line)
                if key not in found and text in line and m:
                    when = calendar.timegm(time.strptime(
                        m.group(1), "%Y-%m-%d %H:%M:%S")) + \
                        int(m.group(2)) / 1000.0
                    found[key] = when - wall0
    return found


def measure(host, runs, vm_ids, log):
    rows = []
    for i in range(runs):
        rows.append(one_restart(host, vm_ids))
        log("  run %d: %s" % (i + 1, _fmt(rows[-1])))
    return rows


def _fmt(row):
    return ", ".join("%s %.2f s" % (k, v) for k, v in row.items())


def summary(rows):
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    return {k: {"median": statistics.median(r[k] for r in rows),
                "min": min(r[k] for r in rows),
                "max": max(r[k] for r in rows)} for k in keys}


def destroy(host, vm_ids):
    """Destroy ``vm_ids`` through a vdsmd with the plugin (the drop-in as
    setup-host installed it: ``interleaved`` ends with it back)."""
    host.close()
    services("restart", "vdsmd")
    host.open()
    for vm_id in vm_ids:
        try:
            host.cli.VM.destroy(vmID=vm_id)
        except Exception as e:
            print("restart: %s not destroyed: %s" % (vm_id, e),
                  file=sys.stderr)
    host.close()


def interleaved(host, runs, vm_ids, log):
    """Plugin and bare restarts in turn, under the same load: only the
    drop-in differs (supervdsmd keeps the plugin's module, which a vdsmd
    restart does not load; the containers run on, unseen by a vdsm
    without the plugin)."""
    with open(DROPIN) as f:
        plugin_dropin = f.read()
    rows = {"plugin": [], "bare": []}
    try:
        for i in range(runs):
            for mode, text in (("plugin", plugin_dropin),
                               ("bare", BARE_DROPIN)):
                with open(DROPIN, "w") as f:
                    f.write(text)
                rows[mode].append(one_restart(
                    host, vm_ids if mode == "plugin" else []))
                log("  run %d %s: %s" % (i + 1, mode, _fmt(rows[mode][-1])))
    finally:
        with open(DROPIN, "w") as f:
            f.write(plugin_dropin)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--cold", action="store_true",
                    help="remove the probe cache before the plugin runs")
    ap.add_argument("--modes", default="plugin,bare",
                    help="plugin,bare: one after the other; interleaved: "
                    "in turn, containers running")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("restart: run as root")

    def log(m):
        print(m, flush=True)

    result = {}
    modes = args.modes.split(",")
    image = os.path.join(scale.WORK, "busybox.tar")
    os.makedirs(scale.WORK, exist_ok=True)
    subprocess.run([scale.BUILD_IMAGE, image], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        if "plugin" in modes or "interleaved" in modes:
            scale.LiveHost.setup()
            if args.cold and os.path.exists(CACHE):
                os.unlink(CACHE)
            services("restart")
            host = scale.LiveHost()
            vm_ids = []
            try:
                host.open()
                for _ in range(args.containers):
                    vm_id = str(uuid.uuid4())
                    host.create(scale.container_xml(image, vm_id), vm_id)
                    vm_ids.append(vm_id)
                host.close()
                if "interleaved" in modes:
                    log("in turn, %d containers:" % len(vm_ids))
                    both = interleaved(host, args.runs, vm_ids, log)
                    for mode, rows in both.items():
                        result[mode] = {"containers": len(vm_ids) if mode
                                        == "plugin" else 0, "runs": rows,
                                        "summary": summary(rows)}
                else:
                    log("plugin, %d containers:" % len(vm_ids))
                    rows = measure(host, args.runs, vm_ids, log)
                    result["plugin"] = {"containers": len(vm_ids),
                                        "runs": rows,
                                        "summary": summary(rows)}
            finally:
                destroy(host, vm_ids)
        if "bare" in modes:
            services("stop")
            with open(DROPIN, "w") as f:
                f.write(BARE_DROPIN)
            if os.path.exists(SVDSM_MODULE):
                os.unlink(SVDSM_MODULE)
            services("start")
            host = scale.LiveHost()
            log("bare (no plugin, no container):")
            rows = measure(host, args.runs, [], log)
            result["bare"] = {"containers": 0, "runs": rows,
                              "summary": summary(rows)}
    finally:
        services("stop")
        scale.LiveHost.setup()      # the plugin back
    for mode, r in result.items():
        log("%s: %s" % (mode, ", ".join(
            "%s median %.2f s (%.2f-%.2f)" % (k, v["median"], v["min"],
                                              v["max"])
            for k, v in r["summary"].items())))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

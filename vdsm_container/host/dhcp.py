"""The DHCP client of a container's NICs: busybox udhcpc, on the host.

Application containers have no DHCP client, so the plugin runs one for
each ``containerNetwork=dhcp`` NIC, from the host side, inside the
container's network namespace (Incus and Proxmox do the same); it keeps
renewing the lease for the container's life.  EL9's busybox (EPEL)
installs no applet links: there udhcpc runs as ``busybox udhcpc``.

udhcpc sets the lease's address and default route on the namespace's link
through the script below.  Under a runtime with its own network stack
(runsc) the stack takes the address at start; from then on the script
leaves the kernel's side of the link alone (``host.netstack``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.linux import pidinfo

SCRIPT_FILE = "udhcpc.script"

# udhcpc calls this with $1 = deconfig|bound|renew|leasefail|nak and the
# lease in the environment; it runs inside the container's namespace.
# Once a runtime's own network stack holds the addresses (NETSTACK_MARK
# beside the script), it leaves the kernel's side alone.
NETSTACK_MARK = "netstack-owned"
_UDHCPC_SCRIPT = """#!/bin/sh
[ -e "${0%/*}/@MARK@" ] && exit 0
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${subnet:-255.255.255.0}" dev "$interface"
    if [ -n "$router" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    ;;
esac
exit 0
"""


def udhcpc_command():
    """How to run udhcpc here: the ``udhcpc`` command where there is one
    (Debian's udhcpc package), else busybox's applet (EL9's busybox has
    no applet links); CannotCreateVM when neither is installed."""
    if shutil.which("udhcpc"):
        return ["udhcpc"]
    if shutil.which("busybox"):
        return ["busybox", "udhcpc"]
    raise errors.CannotCreateVM("containerNetwork=dhcp needs busybox's "
                                "udhcpc: neither udhcpc nor busybox is "
                                "installed on this host")


def _is_udhcpc(argv):
    """The command line is udhcpc's own (not ``ip netns exec`` before it
    has exec'd it), as a command or as busybox's applet."""
    name = os.path.basename(argv[0]) if argv else b""
    return name == b"udhcpc" or \
        name == b"busybox" and argv[1:2] == [b"udhcpc"]


def start(paths, vm_id, netns_name, ifname):
    run_dir = paths.vm_run_dir(vm_id)
    script = os.path.join(run_dir, SCRIPT_FILE)
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write(_UDHCPC_SCRIPT.replace("@MARK@", NETSTACK_MARK))
        os.chmod(script, 0o700)
    pidfile = os.path.join(run_dir, "udhcpc-%s.pid" % ifname)
    # Its own session: the client outlives the process that started it,
    # as the container does.
    subprocess.Popen(["ip", "netns", "exec", netns_name]
                     + udhcpc_command()
                     + ["-f", "-i", ifname, "-s", script, "-p", pidfile,
                        "-t", "5", "-T", "1", "-A", "5", "-S"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    return pidfile


def stop(pidfile, netns_name):
    deadline = time.monotonic() + 2
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = files.read_pid(pidfile)
        if pid is None:
            # Started but not yet written its pid: find it by netns.
            pid = _find_udhcpc(pidfile)
            if pid is None:
                time.sleep(0.02)
    files.kill_if_ours(pid, pidfile, signal.SIGTERM)


def _find_udhcpc(pidfile):
    for pid, argv in pidinfo.argvs():
        if pidfile.encode() in argv and _is_udhcpc(argv):
            return pid
    return None

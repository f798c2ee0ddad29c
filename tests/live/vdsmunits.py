"""vdsm's own systemd units for the live host where systemd is PID 1
(tests/hostvm; EL9), as vdsm's RPM installs them, adapted only where this
host lacks what they name.  Run by tests/live/setup-host:

    vdsmunits.py FILLED_DIR DEST_DIR

FILLED_DIR holds vdsmd.service and supervdsmd.service, filled from vdsm's
static/usr/lib/systemd/system/*.service.in by setup-host as vdsm's
configure would.  What changes, each said in a comment in the unit:

- ``Requires=``/``Wants=`` on units this host has no unit file for are
  dropped (multipathd, iscsid, rpcbind, sanlock, vdsm-network, mom-vdsm,
  ovirt-imageio, lldpad, kdump: oVirt's storage, network and host packages,
  which the live suite doesn't use; with them required, systemd would
  refuse to start vdsmd).  Ordering (``After=``/``Before=``) on a missing
  unit is a no-op and stays as vdsm wrote it.
- vdsmd: vdsm's ``ExecStartPre=vdsmd_init_common.sh --pre-start`` is
  dropped: its tasks run ``vdsm-tool is-configured`` and the configurators
  (libvirt with SASL, multipath, sanlock, lvm), which this host doesn't
  have; setup-host makes the directories and logs those tasks would.  The
  plugin's drop-in (50-vdsm-container.conf) adds its own ExecStartPre.
- supervdsmd: ``--disable-gluster``, as tests/live/services runs it
  elsewhere: Debian has no libgfapi.so.0 for vdsm's gluster module.

Nothing else: User=vdsm, Group=kvm, Nice=-20, KillMode=control-group,
Restart=always, EnvironmentFile=-/etc/sysconfig/... are vdsm's.
"""

import os
import re
import subprocess
import sys

UNITS = ("vdsmd.service", "supervdsmd.service")
DEPENDENCIES = ("Requires", "Wants")
INIT_COMMON = "vdsmd_init_common.sh"


def unit_exists(name):
    """Whether systemd has a unit file for ``name`` (LoadState)."""
    if name in UNITS:       # installed together
        return True
    out = subprocess.run(["systemctl", "show", "-p", "LoadState", "--value",
                          name], stdout=subprocess.PIPE,
                         universal_newlines=True)
    return out.stdout.strip() not in ("", "not-found")


def _logical_lines(text):
    """Unit file lines with backslash continuations joined."""
    lines = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        lines.append(pending + line.strip() if pending else line)
        pending = ""
    if pending:
        lines.append(pending.rstrip())
    return lines


def adapt(name, text, exists=unit_exists):
    """The unit ``name`` (filled ``text``) for this host, with a comment
    saying what was changed and why."""
    notes = []
    out = []
    for line in _logical_lines(text):
        m = re.match(r"^(%s)=(.*)$" % "|".join(DEPENDENCIES), line)
        if m:
            kept = [u for u in m.group(2).split() if exists(u)]
            dropped = [u for u in m.group(2).split() if u not in kept]
            if dropped:
                notes.append("%s= without %s: no such unit on this host"
                             % (m.group(1), " ".join(dropped)))
            if kept:
                out.append("%s=%s" % (m.group(1), " ".join(kept)))
            continue
        if line.startswith("ExecStartPre=") and INIT_COMMON in line:
            notes.append("no %s: its tasks need vdsm-tool's configurators "
                         "(SASL, multipath, sanlock), absent here; "
                         "setup-host makes its directories" % line)
            continue
        if name == "supervdsmd.service" and line.startswith("ExecStart="):
            line += " --disable-gluster"
            notes.append("--disable-gluster: no libgfapi.so.0 on Debian")
        out.append(line)
    header = ["# vdsm's %s (static/usr/lib/systemd/system/%s.in), filled "
              "by" % (name, name),
              "# tests/live/setup-host; changed by tests/live/vdsmunits.py "
              "for this host:"]
    header += ["#   - %s" % n for n in notes]
    return "\n".join(header + out) + "\n"


def main(argv):
    src, dest = argv
    os.makedirs(dest, exist_ok=True)
    for name in UNITS:
        with open(os.path.join(src, name)) as f:
            text = adapt(name, f.read())
        path = os.path.join(dest, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o644)
        os.rename(path + ".tmp", path)
        print("setup-host: installed %s" % path)


if __name__ == "__main__":
    main(sys.argv[1:])

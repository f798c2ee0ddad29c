"""The kernel settings a host running many containers needs, raised (never
lowered) by ``vdsm-container mark-host`` before vdsmd starts.

One so far: ``fs.inotify.max_user_instances``.  On cgroup v2 (EL9) each
container's conmon watches its ``memory.events`` with an inotify instance
of its own (conmon src/cgroup.c ``setup_oom_handling_cgroup_v2``), charged
to root, whose limit is 128 by default; root's services (systemd, udev,
libvirtd ...) hold some of them too.  Past the limit conmon's
``inotify_init`` fails, conmon warns on a stderr that is /dev/null and runs
the container without the watch, and every other root process that asks
for an instance from then on fails with EMFILE.  Measured in the host-shape
VM (docs/performance.rst "At scale"): 8 instances in use at boot, conmon
#121 and later without a watch.

The values come from the package's sysctl.d file,
``/usr/lib/sysctl.d/50-vdsm-container.conf`` (contrib/vdsm/
50-vdsm-container.sysctl), which systemd-sysctl applies at boot, as libvirt
ships 60-libvirtd.conf; a file of the same name in /etc/sysctl.d or
/run/sysctl.d takes its place (sysctl.d(5)), so an admin's value is the one
applied.  Where no such file is installed (a pip install), the package's
defaults below.  mark-host applies them at each vdsmd start, so a host where
the package was installed without a reboot has them too; it only raises, so
a higher value set by anyone else stays.
"""

from __future__ import annotations

import os

FILE_NAME = "50-vdsm-container.conf"
# sysctl.d(5): the first directory with a file of that name wins.
DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d",
        "/usr/lib/sysctl.d")
PROC_SYS = "/proc/sys"
# Enough for a thousand containers and root's own services many times
# over; an instance costs the kernel about 1 KiB until it is used.
DEFAULTS = {"fs.inotify.max_user_instances": 8192}


def parse(text):
    """``key = value`` lines of a sysctl.d file (comments, blanks and
    keys this module does not manage are left out)."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().lstrip("-").replace("/", ".")
        if key in DEFAULTS:
            try:
                settings[key] = int(value.strip())
            except ValueError:
                pass
    return settings


def wanted(dirs=DIRS):
    """The settings to apply and where they come from."""
    for d in dirs:
        path = os.path.join(d, FILE_NAME)
        try:
            with open(path) as f:
                return parse(f.read()), path
        except FileNotFoundError:
            continue
    return dict(DEFAULTS), None


def _proc_path(key, proc_sys):
    return os.path.join(proc_sys, *key.split("."))


def apply(settings, proc_sys=PROC_SYS):
    """Raise each setting to its value if it is lower.

    Returns {key: {"was": old, "now": new}} and, for a setting that could
    not be read or written (a read-only /proc/sys), {key: {"error": ...}}:
    mark-host runs before vdsmd, which must start anyway.
    """
    result = {}
    for key, value in sorted(settings.items()):
        path = _proc_path(key, proc_sys)
        try:
            with open(path) as f:
                was = int(f.read().strip())
            if was < value:
                with open(path, "w") as f:
                    f.write("%d\n" % value)
            result[key] = {"was": was, "now": max(was, value)}
        except (OSError, ValueError) as e:
            result[key] = {"error": "%s: %s" % (path, e)}
    return result


def ensure(dirs=DIRS, proc_sys=PROC_SYS):
    """What mark-host runs: the wanted settings, applied raise-only."""
    settings, source = wanted(dirs)
    return {"source": source or "defaults", "settings": apply(settings,
                                                              proc_sys)}

"""``vdsm-container mark-host``: what the drop-in runs, as root, before
vdsmd starts (contrib/vdsm/50-vdsm-container.conf ``ExecStartPre``).

Every vdsmd start waits for it, so it does the least that must be done
before vdsmd and nothing else:

- the hook that marks the host container-capable for Engine
  (``hostmark``), from the runtimes' verdicts kept (``probestore``):
  installed when one is usable, removed when every runtime is known
  unusable or absent, left as it is while one is not known yet (never
  probed, or its binary or the kernel changed): supervdsmd probes it in
  the background and marks the host when that ends
  (``supervdsm_api``);
- the kernel limits conmon needs, raised (``hostsysctl``).

It imports no runtime driver, no image or container code (``__main__``
sends ``mark-host`` here without loading ``cli``): Python's start and
these few modules are what a vdsmd restart pays for it.
"""

from __future__ import annotations

import argparse
import json
import sys

from vdsm_container import config
from vdsm_container import constants
from vdsm_container import errors
from vdsm_container import probestore
from vdsm_container.vdsm import hostmark
from vdsm_container.vdsm import hostsysctl


def verdicts(paths):
    """``{runtime: True (usable) | False (absent) | None (not known)}``:
    a runtime whose program is here has a verdict only while its kept
    one's key matches; an unusable one is never kept (``probecache``)."""
    entries = probestore.load(paths)
    result = {}
    for name in probestore.NAMES:
        k = probestore.key(name, paths)
        entry = entries.get(name)
        if k["binary"] is None:
            result[name] = False
        elif entry and entry.get("key") == k and \
                (entry.get("availability") or {}).get("available"):
            result[name] = True
        else:
            result[name] = None
    return result


def capable(found):
    """True if a runtime is usable, False if none can be, None while
    that is not known."""
    values = list(found.values())
    if True in values:
        return True
    if None in values:
        return None
    return False


def run(paths, hooks_dir=hostmark.HOOKS_DIR, sysctl_dirs=None,
        proc_sys=hostsysctl.PROC_SYS):
    """Mark the host and raise the limits; what was done, as a dict."""
    found = verdicts(paths)
    can = capable(found)
    if can is None:
        installed = hostmark.is_marked(hooks_dir)
    else:
        installed = hostmark.mark(can, hooks_dir)
    usable = sorted(n for n, v in found.items() if v)
    # Raise-only, and never a reason for vdsmd not to start: a setting
    # that cannot be written is reported, on stderr too (the journal).
    limits = hostsysctl.ensure(sysctl_dirs or hostsysctl.DIRS, proc_sys)
    for key, res in limits["settings"].items():
        if "error" in res:
            print("vdsm-container: cannot raise %s: %s" % (key, res["error"]),
                  file=sys.stderr)
    return {"additionalFeatures": [constants.FEATURE] + [
                constants.FEATURE_RUNTIME_PREFIX + n for n in usable]
            if usable else [],
            "probing": sorted(n for n, v in found.items() if v is None),
            "hook": hostmark.hook_path(hooks_dir),
            "installed": installed, "sysctl": limits}


def parser(p=None):
    p = p or argparse.ArgumentParser(prog="vdsm-container mark-host")
    p.add_argument("--hooks-dir", default=hostmark.HOOKS_DIR)
    p.add_argument("--sysctl-dir", action="append",
                   help="where to look for %s, in order (default: %s)"
                   % (hostsysctl.FILE_NAME, " ".join(hostsysctl.DIRS)))
    p.add_argument("--proc-sys", default=hostsysctl.PROC_SYS)
    return p


def main(argv=None):
    """As ``cli.main`` runs a command: JSON out, an error as one line
    with vdsm's code and exit status 1."""
    args = parser().parse_args(argv)
    try:
        result = run(config.Paths.from_env(), args.hooks_dir,
                     args.sysctl_dir, args.proc_sys)
    except (errors.VdsmException, OSError) as e:
        err = errors.describe(e)
        sys.stderr.write("vdsm-container: error %d: %s\n"
                         % (err["code"], err["message"]))
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0

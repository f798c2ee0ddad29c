"""The versions of the helper tools the OCI runtimes need: conmon and umoci.

The runtimes' own versions are in their ``Availability`` (each driver's
probe reads them); these two are no runtime, but a behaviour the plugin
relies on may change with them (conmon's exit file and options, umoci's
``raw unpack``), so ``caps`` and vdsm.log at start-up say which ran.  A
tool that is missing or fails reports None and why; it is not a reason to
refuse anything here (the runtimes' probes decide that).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from vdsm_container.runtimes import proc

TOOLS = ("conmon", "umoci")

# "conmon version 2.1.6", "umoci version 0.4.7+ds-3+b7", "runc version 1.2.5"
_VERSION = re.compile(r"\bversion\s+v?(\S+)")


def parse(output):
    """The version in a ``--version`` output's first line, else None."""
    first = (output.splitlines() or [""])[0]
    m = _VERSION.search(first)
    return m.group(1) if m else None


def tool_version(name):
    """``{"version": str or None, "reason": str}`` of tool ``name``."""
    path = shutil.which(name)
    if path is None:
        return {"version": None, "reason": "%s not found in PATH" % name}
    try:
        out = proc.run([path, "--version"], timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"version": None, "reason": "%s --version: %s" % (name, e)}
    if out.returncode != 0:
        return {"version": None, "reason": "%s --version: %s" % (
            name, proc.last_line(out.stderr))}
    version = parse(out.stdout)
    if version is None:
        return {"version": None, "reason": "%s --version printed no "
                "version: %s" % (name, proc.last_line(out.stdout))}
    return {"version": version, "reason": ""}


def tools():
    """``{tool: tool_version(tool)}`` for conmon and umoci."""
    return {name: tool_version(name) for name in TOOLS}


def summary(availability, tool_versions):
    """One line for vdsm.log: each runtime's and tool's version."""
    parts = ["%s %s" % (n, a.version or "(%s)" % (a.reason or "unknown"))
             for n, a in sorted(availability.items())]
    parts += ["%s %s" % (n, v["version"] or "(%s)" % v["reason"])
              for n, v in sorted(tool_versions.items())]
    return ", ".join(parts)

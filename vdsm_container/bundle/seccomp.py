"""The default seccomp profile every container gets.

Debian and EL ship the containers-common profile (the one podman and CRI-O
use) at /usr/share/containers/seccomp.json, in docker's profile format: an
``archMap`` and syscall rules that apply only with (``includes``) or
without (``excludes``) given capabilities and architectures.  ``profile``
resolves those conditions for the container's capabilities and the host's
architecture into the OCI runtime spec's ``linux.seccomp``, as podman and
docker do when they build a container's config.

No profile on the host: no seccomp filter, and ``profile`` says so by
returning None (the container keeps its other confinements).
"""

from __future__ import annotations

import json
import logging
import os
import platform

log = logging.getLogger("vdsm_container.seccomp")

PROFILES = ("/usr/share/containers/seccomp.json",
            "/etc/containers/seccomp.json")

_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
           "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X"}
_RULE_KEYS = ("names", "action", "args", "errnoRet")

_cache = {}


def _kernel_at_least(version):
    want = tuple(int(x) for x in version.split(".")[:2])
    have = tuple(int(x) for x in
                 platform.release().split("-")[0].split(".")[:2])
    return have >= want


def _applies(rule, caps, arch):
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
        return False
    if set(exc.get("caps") or ()) & caps:
        return False
    if arch in (exc.get("arches") or ()):
        return False
    return True


def convert(doc, caps, machine=None):
    """docker-format profile ``doc`` -> OCI ``linux.seccomp``."""
    machine = machine or platform.machine()
    arch_name = _ARCHES.get(machine)
    short = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    archs = []
    for entry in doc.get("archMap") or ():
        if entry["architecture"] == arch_name:
            archs = [entry["architecture"]] + list(
                entry.get("subArchitectures") or [])
    rules = []
    for rule in doc.get("syscalls") or ():
        if not _applies(rule, set(caps), short):
            continue
        out = {k: rule[k] for k in _RULE_KEYS if rule.get(k) not in
               (None, [], "")}
        rules.append(out)
    result = {"defaultAction": doc["defaultAction"], "syscalls": rules}
    if archs:
        result["architectures"] = archs
    if doc.get("defaultErrnoRet") is not None:
        result["defaultErrnoRet"] = doc["defaultErrnoRet"]
    return result


def profile(caps):
    """``linux.seccomp`` for a container with ``caps``, or None."""
    key = tuple(sorted(caps))
    if key not in _cache:
        _cache[key] = None
        for path in PROFILES:
            if os.path.exists(path):
                with open(path) as f:
                    _cache[key] = convert(json.load(f), caps)
                break
        else:
            log.warning("No seccomp profile in %s: containers run without "
                        "a seccomp filter", ", ".join(PROFILES))
    return _cache[key]

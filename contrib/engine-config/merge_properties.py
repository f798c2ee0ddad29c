#!/usr/bin/python3
"""Merge the container custom properties into UserDefinedVMProperties.

Engine keeps VM custom properties in one engine-config value per cluster
level, ``name1=regex1;name2=regex2``, which every vdsm hook shares.  This
prints the value with the container properties added (or replaced, when an
older version of them is there) and every other property kept as it was:

    engine-config -g UserDefinedVMProperties --cver=4.7   # the bare value
    merge_properties.py 'sap_agent=^(true|false)$'        # -> merged value

    engine-config -g UserDefinedVMProperties | merge_properties.py --levels
                                                # -> 4.2 4.3 ... 4.8

What engine-config prints, read in ovirt-engine's
backend/manager/tools/.../config/EngineConfigLogic.java:
``printKeyWithSpecifiedVersion`` (``-g KEY --cver=X``) writes the bare
value and a newline; ``printAllValuesForKey`` (``-g KEY``) writes one line
per level, ``KEY: <value> version: <level>``.

The regexes are strict: they accept what vdsm-container's parsers accept
(vdsm_container/spec/properties.py) and refuse the rest in Engine's dialog
and REST API already.  ``containerType`` is an alternation, which Engine's
dialog shows as a drop-down.  ``check`` applies them as Engine does
(CustomPropertiesUtils.validateProperties: ``value.matches(regex)``, a
whole-string match), so ovirt-container refuses before sending what
Engine would refuse.
"""

import re
import sys

KEY = "UserDefinedVMProperties"

PROPERTIES = [
    ("containerType", r"^(runc|crun|rkt|runsc)$"),
    # A registry reference (docker.io/library/redis:7, quay.io/x/y@sha256:..)
    # or an OCI ref name: no spaces, no ';' (Engine's separator).
    ("containerImage",
     r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$"),
    # A command line, split like a shell splits words; no ';' or newline.
    # (';' is written \x3b: a literal one would split Engine's setting.)
    ("containerCommand", r"^[^\x3b\n]{1,1024}$"),
    # NAME=VALUE words.
    ("containerEnv",
     r"^[A-Za-z_][A-Za-z0-9_]*=[^\x3b\n]*"
     r"( +[A-Za-z_][A-Za-z0-9_]*=[^\x3b\n]*)*$"),
    # DISK:/PATH[,DISK:/PATH...]; DISK is the disk's id (its <serial>).
    ("containerVolumes",
     r"^[A-Za-z0-9_.-]+:/[^,:\x3b\n]*(,[A-Za-z0-9_.-]+:/[^,:\x3b\n]*)*$"),
    # dhcp | none | static:ADDR/PREFIX[,gw=GW], one per NIC, '|'-separated
    # (';' is Engine's own separator between properties).
    ("containerNetwork",
     r"^(dhcp|none|static:[0-9a-fA-F.:]+/[0-9]{1,3}(,gw=[0-9a-fA-F.:]+)?)"
     r"(\|(dhcp|none|static:[0-9a-fA-F.:]+/[0-9]{1,3}"
     r"(,gw=[0-9a-fA-F.:]+)?))*$"),
    ("containerInsecure", r"^(true|false)$"),
    ("containerUserns", r"^(true|false)$"),
    # The writable layer's size limit: MiB, or with a unit (512M, 2G, 1T).
    ("containerDiskSize", r"^[0-9]{1,12} *([mMgGtT]([iI][bB])?)?$"),
]

OURS = {name for name, _ in PROPERTIES}

# CustomPropertiesUtils.java: property names and the separator.
_KEY = re.compile(r"[a-z_A-Z0-9]+")
SEPARATOR = ";"


def parse(value):
    """``name=regex;...`` -> [(name, regex)].  Regexes may contain '='."""
    result = []
    for item in filter(None, (value or "").strip().split(SEPARATOR)):
        name, sep, regex = item.partition("=")
        name = name.strip()
        if not sep or not _KEY.fullmatch(name):
            # e.g. engine-config's "KEY: ... version: X" line: never write
            # that back into Engine.
            raise ValueError("not name=regex: %r" % item)
        result.append((name, regex))
    return result


def merge(existing):
    kept = [(n, r) for n, r in parse(existing) if n not in OURS]
    return SEPARATOR.join("%s=%s" % p for p in kept + PROPERTIES)


def levels(listing):
    """The cluster levels in ``engine-config -g KEY``'s output.

    Each line is ``KEY: <value> version: <level>``; the value may itself
    hold anything but a line break, so the level is what follows the last
    `` version: ``.  Sorted as versions, without duplicates.
    """
    found = set()
    pattern = re.compile(r"^%s: .* version: (\S+)$" % KEY)
    for line in listing.splitlines():
        m = pattern.match(line)
        if m:
            found.add(m.group(1))
    return sorted(found, key=lambda v: [int(p) if p.isdigit() else p
                                        for p in v.split(".")])


def check(name, value):
    """Why Engine would refuse ``name=value`` for a VM, or None.

    Mirrors CustomPropertiesUtils.validateProperties: the name must be one
    of the defined ones, the value must hold no ';' (REST joins a VM's
    custom properties with ';', CustomPropertiesParser.parse) and must
    match the property's regex as a whole (Java's String.matches).
    """
    regex = dict(PROPERTIES).get(name)
    if regex is None or not _KEY.fullmatch(name):
        return "%s is not a container custom property" % name
    if SEPARATOR in value:
        return ("%s=%r holds ';', which Engine uses to separate custom "
                "properties: Engine would refuse the VM" % (name, value))
    if not re.fullmatch(regex, value):
        return ("%s=%r does not match %s, the regex engine-config holds "
                "for it (contrib/engine-config): Engine would refuse the VM"
                % (name, value, regex))
    return None


def main(argv):
    if argv[1:2] == ["--levels"]:
        print(" ".join(levels(sys.stdin.read())))
        return 0
    existing = argv[1] if len(argv) > 1 else ""
    print(merge(existing))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Merge the container custom properties into UserDefinedVMProperties.

Engine keeps VM custom properties in one engine-config value per cluster
version, ``name1=regex1;name2=regex2``, which vdsm hooks share.  This prints
the value with the container properties added (or replaced, when an older
version of them is there) and every other property kept as it was:

    engine-config -g UserDefinedVMProperties --cver=4.7   # prints the value
    merge_properties.py 'sap_agent=^(true|false)$'        # -> merged value

The regexes are strict: they accept what vdsm-container's parsers accept
(vdsm_container/spec/properties.py) and refuse the rest in Engine's dialog
already.  ``containerType`` is an alternation, which Engine's dialog shows
as a drop-down.
"""

import sys

PROPERTIES = [
    ("containerType", r"^(runc|crun|rkt)$"),
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
    # DISK:/PATH[,DISK:/PATH...]
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
]

OURS = {name for name, _ in PROPERTIES}


def parse(value):
    """``name=regex;...`` -> [(name, regex)].  Regexes may contain '='."""
    result = []
    for item in filter(None, (value or "").strip().split(";")):
        name, sep, regex = item.partition("=")
        if not sep:
            raise ValueError("not name=regex: %r" % item)
        result.append((name.strip(), regex))
    return result


def merge(existing):
    kept = [(n, r) for n, r in parse(existing) if n not in OURS]
    return ";".join("%s=%s" % p for p in kept + PROPERTIES)


def main(argv):
    existing = argv[1] if len(argv) > 1 else ""
    # engine-config -g prints "UserDefinedVMProperties: <value> version: X"
    if existing.startswith("UserDefinedVMProperties:"):
        existing = existing.split(":", 1)[1].rsplit(" version:", 1)[0]
        existing = existing.strip()
    print(merge(existing))


if __name__ == "__main__":
    main(sys.argv)

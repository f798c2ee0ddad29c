"""What an EL9 host with oVirt 4.5 (and EPEL 9, as docs/admin-guide.rst's
host steps enable it) can install: a table of provides, with versions, and
a check of an RPM's requirements against it (tests/test_rpm.py,
tests/test_el9repos.py).

Each row says where it comes from.  "listing" rows were read from the
repository's public package listing; "known" rows are what the EL9 /
oVirt 4.5 release notes and package sets are known to ship, not re-read
here (their versions are the ones of EL9.4-9.6 and oVirt 4.5.5; what
matters to the check is that the package exists there and, where a
requirement carries a version, that the version is met).  When a
requirement can't be met by any row the check fails: add a row only with
its source, never to make a requirement pass.

The built RPMs are made on the test host (tests/test_rpm.py), whose Python
is not EL9's 3.9: ``el9_requirement`` rewrites the build Python's
``python(abi)`` and ``python3.Ndist(...)`` names to the ones EL9's build
generates (python3.9dist), as rpmbuild on EL9 would.
"""

import re

EPEL9 = "EPEL 9"
OVIRT45 = "oVirt 4.5 (ovirt-release45)"
BASEOS = "EL9 BaseOS"
APPSTREAM = "EL9 AppStream"

PYROUTE2_EPEL9 = ("packages.fedoraproject.org, python3-pyroute2 in Fedora "
                  "EPEL 9: 0.5.14-3.el9")

# provide -> [(version, repository, source)]
PROVIDES = {
    "/bin/sh": [("5.1.8", BASEOS, "known: bash")],
    "/usr/bin/python3": [("3.9", BASEOS, "known: python3 (EL9's one "
                          "Python 3, the one vdsm runs on)")],
    "python(abi)": [("3.9", BASEOS, "known: python3-libs")],
    "systemd": [("252", BASEOS, "known: systemd 252")],
    "iproute": [("6.2.0", BASEOS, "known: iproute")],
    "util-linux": [("2.37.4", BASEOS, "known: util-linux")],
    "e2fsprogs": [("1.46.5", BASEOS, "known: e2fsprogs")],
    "runc": [("1.2.4", APPSTREAM, "known: runc (issue #24: EL9 ships "
              "1.2-1.4)")],
    "crun": [("1.21", APPSTREAM, "known: crun (issue #24)")],
    "conmon": [("2.1.12", APPSTREAM, "known: conmon (issue #24)")],
    "containers-common": [("1", APPSTREAM, "known: containers-common "
                           "(seccomp.json, registries.conf)")],
    "skopeo": [("1.18.1", APPSTREAM, "known: skopeo")],
    "umoci": [("0.6.0", EPEL9, "issue #24's reading of EPEL 9: umoci "
               "0.6.0; not re-read here")],
    "busybox": [("1.35.0", EPEL9, "packages.fedoraproject.org, busybox in "
                 "Fedora EPEL 9: 1.35.0-2.el9")],
    "python3-pyroute2": [("0.5.14", EPEL9, PYROUTE2_EPEL9),
                         ("0.6.6", OVIRT45, "issue #24: oVirt 4.5's "
                          "dependency repositories (OpenStack Yoga)")],
    "python3.9dist(pyroute2)": [("0.5.14", EPEL9, PYROUTE2_EPEL9),
                                ("0.6.6", OVIRT45, "as python3-pyroute2")],
    "vdsm": [("4.50.5.1", OVIRT45, "known: vdsm 4.50 (oVirt 4.5)")],
    "python3-ovirt-engine-sdk4": [("4.6.2", OVIRT45, "known: oVirt 4.5's "
                                   "Python SDK 4.6")],
    "ovirt-imageio-client": [("2.5.0", OVIRT45, "known: ovirt-imageio "
                              "2.5.0 (oVirt 4.5.5), its client package")],
}

# rpm's own capabilities (rpmlib(...) names), which EL9's rpm 4.16 has.
RPM_VERSION = "4.16.1.3"

_REQ = re.compile(r"^(?P<name>\S+)(?:\s+(?P<op><=|>=|=|<|>)\s+"
                  r"(?P<version>\S+))?$")


def vercmp(a, b):
    """rpm's version order, for the numbers and words these versions use
    (rpmvercmp: segments of digits compare as numbers, digits sort after
    letters).  The epoch and release are not compared."""
    def parts(v):
        v = v.split(":", 1)[-1].split("-", 1)[0]
        return [(1, int(s)) if s.isdigit() else (0, s)
                for s in re.findall(r"\d+|[A-Za-z]+", v)]
    pa, pb = parts(a), parts(b)
    for x, y in zip(pa, pb):
        if x != y:
            return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def _meets(have, op, want):
    c = vercmp(have, want)
    return {"=": c == 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0,
            "<": c < 0}[op]


def el9_requirement(requirement, build_python):
    """``requirement`` as EL9's rpmbuild would have written it, where the
    build ran on Python ``build_python`` ("3.11")."""
    requirement = requirement.replace("python%sdist(" % build_python,
                                      "python3.9dist(")
    if requirement == "python(abi) = %s" % build_python:
        requirement = "python(abi) = 3.9"
    return requirement


def unmet(requirements):
    """[(requirement, why)] of those no row of PROVIDES meets."""
    out = []
    for line in requirements:
        line = line.strip()
        if not line:
            continue
        m = _REQ.match(line)
        if not m:
            out.append((line, "not a requirement rpm writes"))
            continue
        name, op, version = m.group("name", "op", "version")
        if name.startswith("rpmlib("):
            if op and op != "<=":
                out.append((line, "not an rpmlib() requirement"))
            elif op and vercmp(version, RPM_VERSION) > 0:
                out.append((line, "needs rpm > EL9's %s" % RPM_VERSION))
            continue
        rows = PROVIDES.get(name)
        if not rows:
            out.append((line, "no EL9, EPEL 9 or oVirt 4.5 package "
                        "provides %s" % name))
        elif op and not any(_meets(v, op, version) for v, _, _ in rows):
            out.append((line, "EL9 + EPEL 9 + oVirt 4.5 have %s" % ", ".join(
                "%s %s (%s)" % (name, v, repo) for v, repo, _ in rows)))
    return out

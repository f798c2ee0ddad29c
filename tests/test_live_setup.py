"""What sets up the live host in the host-shape VM (``make check-el9-live``):
vdsm's own units adapted to the host (tests/live/vdsmunits.py), and the
VM image holding every package tests/live/setup-host installs (the VM has
no network, so a missing one fails only there, minutes into a CI run).
"""

import os
import re
import tarfile

import pytest

from .live import vdsmunits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(os.path.dirname(REPO), "shared", "vendor", "vdsm",
                      "vdsm-fd4b0df20.tar.gz")
UNIT_DIR = "static/usr/lib/systemd/system/"
# What setup-host fills these two templates with (its values).
FILLED = {"LIBEXECDIR": "/usr/libexec/vdsm", "VDSMRUNDIR": "/var/run/vdsm",
          "VDSMUSER": "vdsm", "VDSMGROUP": "kvm",
          "SERVICE_STOP_TIMEOUT": "10", "SYSTEMD_LIMIT_MEMLOCK": ""}
# Units a Debian 12 host with setup-host's packages has.
PRESENT = {"libvirtd.service", "libvirt-guests.service", "time-sync.target"}


def _deb_list(text):
    return {w for ln in text.splitlines() if not ln.startswith("#")
            for w in ln.split()}


def test_vm_image_has_every_package_setup_host_installs():
    with open(os.path.join(REPO, "tests", "live", "setup-host")) as f:
        wanted = _deb_list(re.search(r'DEB_PACKAGES="([^"]*)"',
                                     f.read()).group(1))
    with open(os.path.join(REPO, "tests", "hostvm", "packages")) as f:
        image = _deb_list(f.read())
    assert wanted and wanted - image == set()


def _template(name):
    if not os.path.exists(VENDOR):
        pytest.skip("%s not found: ../shared is absent beside the "
                    "checkout" % VENDOR)
    with tarfile.open(VENDOR) as tar:
        member = next(m for m in tar.getmembers()
                      if m.name.endswith(UNIT_DIR + name + ".in"))
        text = tar.extractfile(member).read().decode()
    return re.sub(r"@([A-Za-z0-9_]+)@", lambda m: FILLED[m.group(1)], text)


def _entries(text, key):
    return [ln.split("=", 1)[1] for ln in text.splitlines()
            if ln.startswith(key + "=")]


def _adapt(name):
    return vdsmunits.adapt(name, _template(name),
                           exists=lambda u: u in PRESENT or
                           u in vdsmunits.UNITS)


def test_vdsmd_unit_keeps_vdsm_service_settings():
    unit = _adapt("vdsmd.service")
    # Only units the host has are required; each dropped one is named.
    assert _entries(unit, "Requires") == [
        "time-sync.target supervdsmd.service"]
    assert _entries(unit, "Wants") == ["libvirt-guests.service"]
    for gone in ("multipathd.service", "sanlock.service",
                 "vdsm-network.service", "mom-vdsm.service"):
        assert gone in unit.split("[Unit]")[0]      # the header says so
    # vdsm's pre-start script is out; the plugin's drop-in adds its own.
    assert _entries(unit, "ExecStartPre") == []
    assert _entries(unit, "ExecStart") == [
        '/usr/libexec/vdsm/daemonAdapter -0 /dev/null -1 /dev/null '
        '-2 /dev/null "/usr/libexec/vdsm/vdsmd"']
    for key, value in (("User", "vdsm"), ("Group", "kvm"), ("Nice", "-20"),
                       ("KillMode", "control-group"),
                       ("Restart", "always"), ("TimeoutStopSec", "10"),
                       ("EnvironmentFile", "-/etc/sysconfig/vdsm")):
        assert _entries(unit, key) == [value], key


def test_supervdsmd_unit_without_gluster():
    unit = _adapt("supervdsmd.service")
    assert _entries(unit, "Requires") == ["libvirtd.service"]
    assert _entries(unit, "Wants") == []        # lldpad.service: absent
    assert _entries(unit, "ExecStart") == [
        '/usr/libexec/vdsm/daemonAdapter "/usr/libexec/vdsm/supervdsmd" '
        '--sockfile "/var/run/vdsm/svdsm.sock" --disable-gluster']
    assert _entries(unit, "Restart") == ["always"]

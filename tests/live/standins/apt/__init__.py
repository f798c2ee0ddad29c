"""Stand-in for python3-apt's ``apt.Cache``, as vdsm reads it.

vdsm's lib/vdsm/osinfo.py ``package_versions`` reads Debian package
versions through python-apt, then lib/vdsm/common/dsaversion.py parses
them as dotted integers, as rpm's ``version`` field is on EL.  Debian's
full version strings (``1:7.2+dfsg-7+deb12u18``) make that raise, and
``qemu-kvm`` is not a Debian package name.  This answers each of vdsm's
names with the upstream version of the Debian package that provides it
(epoch, ``+dfsg``-style suffixes and Debian revision dropped); vdsm itself
is the snapshot's version.  Only vdsm's daemons get this module (their
PYTHONPATH, /etc/sysconfig/vdsm); Debian's own tools keep the real one.
"""

import re
import subprocess

# vdsm's Debian names (osinfo.package_versions) -> Debian packages here.
_PROVIDERS = {
    "qemu-kvm": "qemu-system-x86",
    "libvirt0": "libvirt0",
    "qemu-utils": "qemu-utils",
    "lvm2": "lvm2",
    "librbd1": "librbd1",
    "libspice-server1": "libspice-server1",
}
_VDSM_VERSION = "4.50.0"    # lib/vdsm/common/dsaversion.py, as filled


def upstream(debian_version):
    """'1:7.2+dfsg-7+deb12u18+b3' -> '7.2'; '9.0.0-4+deb12u2' -> '9.0.0'."""
    v = debian_version.split(":", 1)[-1]
    v = v.rsplit("-", 1)[0] if "-" in v else v
    return re.match(r"[0-9.]*[0-9]", v).group(0)


class _Version:
    def __init__(self, version):
        self.version = version


class _Package:
    def __init__(self, version):
        self.installed = _Version(version)


class Cache:

    def __getitem__(self, name):
        if name == "vdsmd":
            return _Package(_VDSM_VERSION)
        deb = _PROVIDERS.get(name, name)
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}",
             deb], capture_output=True, text=True)
        status, _, version = out.stdout.partition(" ")
        if out.returncode != 0 or status != "installed":
            raise KeyError("The cache has no package named %r" % name)
        return _Package(upstream(version))

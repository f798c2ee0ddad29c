"""Parsers for the container custom properties Engine passes through.

Engine sends each custom property as one string (engine-config
``UserDefinedVMProperties``, see contrib/engine-config).  Each parser here
turns one such string into plain data, or raises vdsm's InvalidParameter (91)
naming the property and the value.  No shell is ever run: command lines are
split the way a POSIX shell splits words (``shlex``), nothing more.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.spec.model import IPConfig
from vdsm_container.spec.model import Volume

RUNTIMES = ("runc", "crun", "rkt", "runsc")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


def runtime(value):
    if value not in RUNTIMES:
        raise errors.invalid(constants.PROP_TYPE, value,
                             "unknown runtime, expected one of %s"
                             % ", ".join(RUNTIMES))
    return value


def boolean(field):
    def parse(value):
        v = value.strip().lower()
        if v not in ("true", "false"):
            raise errors.invalid(field, value, "expected true or false")
        return v == "true"
    return parse


userns = boolean(constants.PROP_USERNS)

_SIZE = re.compile(r"^([0-9]{1,12})\s*(|m|mib|g|gib|t|tib)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "m": 1, "mib": 1, "g": 1024, "gib": 1024,
               "t": 1024 ** 2, "tib": 1024 ** 2}
# The writable layer's bounds: ext4 needs a few MiB for itself; 16 TiB is
# ext4's limit with 4 KiB blocks and no 64bit feature.
DISK_SIZE_MIN_MIB = 16
DISK_SIZE_MAX_MIB = 16 * 1024 ** 2


def size_mib(field, value, allow_zero=False):
    """A size in MiB: ``512`` (MiB), ``512M``, ``2G``, ``2GiB``, ``1T``;
    ``allow_zero``: 0 (no limit) is allowed too (the admin's default)."""
    m = _SIZE.match(str(value).strip())
    if not m:
        raise errors.invalid(field, value, "expected a size in MiB, or "
                             "with a unit: 512M, 2G, 1T")
    mib = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if mib < DISK_SIZE_MIN_MIB and not (allow_zero and mib == 0):
        raise errors.invalid(field, value, "must be at least %d MiB"
                             % DISK_SIZE_MIN_MIB)
    if mib > DISK_SIZE_MAX_MIB:
        raise errors.invalid(field, value, "must be at most %d MiB (16 TiB)"
                             % DISK_SIZE_MAX_MIB)
    return mib


def disk_size(value):
    """``containerDiskSize``: the container's writable layer limit."""
    return size_mib(constants.PROP_DISK_SIZE, value)


def image_ref(value):
    """``containerImage``: names the image inside a multi-image archive."""
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise errors.invalid(constants.PROP_IMAGE, value,
                             "expected an image reference such as "
                             "docker.io/library/redis:7 or an OCI ref name")
    return value


def _split(field, value):
    try:
        return tuple(shlex.split(value, comments=False, posix=True))
    except ValueError as e:
        raise errors.invalid(field, value,
                             "cannot split into words: %s" % e) from e


def command(value):
    """``containerCommand``: replaces the image's entrypoint and command."""
    words = _split(constants.PROP_COMMAND, value)
    if not words:
        raise errors.invalid(constants.PROP_COMMAND, value, "empty command")
    return words


def env(value):
    """``containerEnv``: ``NAME=VALUE`` words, e.g. ``A=1 B="two words"``."""
    result = []
    for word in _split(constants.PROP_ENV, value):
        name, sep, val = word.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise errors.invalid(constants.PROP_ENV, value,
                                 "expected NAME=VALUE, got %r" % word)
        result.append((name, val))
    return tuple(result)


def _absolute_clean_path(field, value, path):
    parts = path.split("/")
    if not path.startswith("/") or ".." in parts or "\0" in path:
        raise errors.invalid(field, value,
                             "mount path %r must be absolute, without '..'"
                             % path)
    if path.rstrip("/") == "":
        raise errors.invalid(field, value, "cannot mount over /")
    return "/" + "/".join(p for p in parts if p not in ("", "."))


def volumes(value):
    """``containerVolumes``: ``disk:/path,disk:/path``.

    ``disk`` is a disk's alias, serial or target name.  Engine writes a
    disk's alias as ``ua-<diskId>`` and its serial as ``<diskId>``
    (ovirt-engine LibvirtVmXmlBuilder.writeDisk), so the disk's id is what
    contrib/ovirt-container writes.
    """
    field = constants.PROP_VOLUMES
    result = []
    seen_paths = set()
    for item in filter(None, (s.strip() for s in value.split(","))):
        key, sep, path = item.partition(":")
        if not sep or not _VOLUME_KEY.match(key):
            raise errors.invalid(field, value,
                                 "expected DISK:/PATH, got %r" % item)
        path = _absolute_clean_path(field, value, path)
        if path in seen_paths:
            raise errors.invalid(field, value, "%s mounted twice" % path)
        seen_paths.add(path)
        result.append(Volume(disk=key, mount_path=path))
    if not result:
        raise errors.invalid(field, value, "no volume given")
    return tuple(result)


def _ip_config(field, value, item):
    if item in ("dhcp", "none"):
        return IPConfig(mode=item)
    mode, sep, rest = item.partition(":")
    if mode != "static" or not sep:
        raise errors.invalid(field, value,
                             "expected dhcp, none or static:ADDR/PREFIX"
                             "[,gw=GW], got %r" % item)
    addr, _, opts = rest.partition(",")
    try:
        iface = ipaddress.ip_interface(addr)
    except ValueError as e:
        raise errors.invalid(field, value, str(e)) from e
    if "/" not in addr:
        raise errors.invalid(field, value, "%r has no /PREFIX" % addr)
    gateway = None
    if opts:
        key, sep, gw = opts.partition("=")
        if key != "gw" or not sep:
            raise errors.invalid(field, value, "unknown option %r" % opts)
        try:
            gw_ip = ipaddress.ip_address(gw)
        except ValueError as e:
            raise errors.invalid(field, value, str(e)) from e
        if gw_ip.version != iface.version:
            raise errors.invalid(field, value, "gateway %s is not IPv%d"
                                 % (gw, iface.version))
        gateway = str(gw_ip)
    return IPConfig(mode="static", address=str(iface), gateway=gateway)


def network(value, nic_count):
    """``containerNetwork``: one IPConfig per NIC.

    ``dhcp`` (the default) or ``none`` applies to every NIC; otherwise a
    ``|``-separated list gives one entry per NIC, in order
    (``static:192.0.2.10/24,gw=192.0.2.1|dhcp``).  Not ``;``: Engine
    stores a VM's custom properties as ``name=value;name=value``.
    """
    field = constants.PROP_NETWORK
    items = [s.strip() for s in value.split("|")] if value else ["dhcp"]
    configs = tuple(_ip_config(field, value, item) for item in items)
    if len(configs) == 1 and configs[0].mode != "static":
        return configs * nic_count
    if len(configs) != nic_count:
        raise errors.invalid(field, value,
                             "%d entries for %d NICs" % (len(configs),
                                                          nic_count))
    return configs

"""Stand-in for nmstate's Python API (no Debian package): ``show()`` only.

vdsm reads the host's network state with ``libnmstate.show()``
(lib/vdsm/network/nmstate/api.py ``get_current_state``) for
Host.getCapabilities.  This answers it from the kernel through pyroute2,
in nmstate's shape with nmstate's key names (``schema``).  ``apply`` is
refused: the live tests never reconfigure the host network through vdsm.
"""

import socket

from . import error
from .schema import DNS, Interface, InterfaceIP, InterfaceIPv6, \
    InterfaceState, InterfaceType, Route, RouteRule

__all__ = ["apply", "error", "show"]

_KINDS = {"bridge": InterfaceType.LINUX_BRIDGE, "bond": InterfaceType.BOND,
          "vlan": InterfaceType.VLAN, "dummy": InterfaceType.DUMMY,
          "vxlan": InterfaceType.VXLAN, None: InterfaceType.ETHERNET}


def _addresses(ipr, index, family):
    return [{InterfaceIP.ADDRESS_IP: a.get_attr("IFA_ADDRESS"),
             InterfaceIP.ADDRESS_PREFIX_LENGTH: a["prefixlen"]}
            for a in ipr.get_addr(index=index, family=family)]


def _interface(ipr, link):
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    name = link.get_attr("IFLA_IFNAME")
    v4 = _addresses(ipr, link["index"], socket.AF_INET)
    v6 = _addresses(ipr, link["index"], socket.AF_INET6)
    return {
        Interface.NAME: name,
        Interface.TYPE: _KINDS.get(kind, InterfaceType.UNKNOWN)
        if name != "lo" else InterfaceType.UNKNOWN,
        Interface.STATE: InterfaceState.UP if link["flags"] & 1
        else InterfaceState.DOWN,
        Interface.MTU: link.get_attr("IFLA_MTU"),
        Interface.MAC: (link.get_attr("IFLA_ADDRESS") or "").upper(),
        Interface.IPV4: {InterfaceIP.ENABLED: bool(v4),
                         InterfaceIP.DHCP: False,
                         InterfaceIP.ADDRESS: v4},
        Interface.IPV6: {InterfaceIP.ENABLED: bool(v6),
                         InterfaceIP.DHCP: False,
                         InterfaceIPv6.AUTOCONF: False,
                         InterfaceIP.ADDRESS: v6},
    }


def _nameservers():
    try:
        with open("/etc/resolv.conf") as f:
            return [line.split()[1] for line in f
                    if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        return []


def show(*args, **kwargs):
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        ifaces = [_interface(ipr, link) for link in ipr.get_links()]
    return {
        Interface.KEY: ifaces,
        Route.KEY: {Route.RUNNING: [], Route.CONFIG: []},
        RouteRule.KEY: {RouteRule.CONFIG: []},
        DNS.KEY: {DNS.RUNNING: {DNS.SERVER: _nameservers()},
                  DNS.CONFIG: {}},
    }


def apply(*args, **kwargs):
    raise error.NmstateNotSupportedError(
        "libnmstate stand-in: the live tests do not change the network")

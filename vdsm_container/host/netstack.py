"""Handing a container's addresses to a runtime's own network stack.

Under runc or crun the container uses the host kernel's stack in its
namespace: the addresses there are its own, whenever they are set (a DHCP
lease lands when it comes).  gVisor's netstack (runsc) instead copies the
namespace's addresses and routes once, when the container starts, and
takes the addresses off the kernel's side (``runtimes.runscnet``).  So,
right before such a runtime starts the container, ``hand_over``:

- waits for the first lease of each DHCP NIC, ``LEASE_WAIT`` at most;
  without one the start is refused, naming the NIC: a lease that came
  later would never reach the container;
- records the addresses then on the links that are up in
  ``network.json`` (``netstack``): what the container has, reported as
  ``guestIPs`` and ``netIfaces`` (the namespace shows none once it runs),
  and put back before a restart (a reset) so that the next start copies
  them again.  A link that is down (Engine's ``<link state='down'>``) is
  not copied: the container has no such NIC, and none is reported;
- marks the DHCP clients' script (``dhcp.NETSTACK_MARK``): udhcpc keeps
  renewing the lease from the host side but no longer sets the kernel's
  side, where the address would answer ARP and reset the container's TCP.
  A lease the server changes is not followed (netstack is not told): the
  address of a running container under runsc stays the one it started
  with.
"""

from __future__ import annotations

import errno
import logging
import os
import time

from vdsm_container import errors
from vdsm_container.host import dhcp, network

log = logging.getLogger("vdsm_container.host.netstack")

#: How long a DHCP NIC may wait for its first lease: udhcpc sends its
#: discovers a second apart, five times (``dhcp.start``), then pauses.
LEASE_WAIT = 10.0

IFF_UP = 0x1    # include/uapi/linux/if.h


def hand_over(paths, vm_id, lease_wait=None):
    """Ready the namespace of ``vm_id`` for a runtime that takes its
    addresses at start; no-op for a VM without NICs."""
    state = network.read_state(paths, vm_id)
    if not state or not state.get("nics"):
        return
    from pyroute2 import NetNS
    with NetNS(state["netns"]) as ns:
        if "netstack" in state:
            _put_back(ns, state["netstack"])
        _await_leases(ns, vm_id, _dhcp_links(state),
                      LEASE_WAIT if lease_wait is None else lease_wait)
        # runsc copies the links that are up; a NIC Engine sent with its
        # link down is not in the sandbox at all.
        state["netstack"] = [i for i in network.links(ns)
                             if _up(ns, i["name"])]
        for iface in state["netstack"]:
            iface["routes"] = _routes(ns, iface["name"])
    network.write_state(paths, vm_id, state)
    with open(os.path.join(paths.vm_run_dir(vm_id), dhcp.NETSTACK_MARK),
              "w"):
        pass
    log.info("Container %s: addresses handed to the runtime's network "
             "stack: %s", vm_id, {i["name"]: i["inet"] + i["inet6"]
                                  for i in state["netstack"]})


def _dhcp_links(state):
    """The links whose DHCP client runs (``udhcpc-<link>.pid``)."""
    return [os.path.basename(p)[len("udhcpc-"):-len(".pid")]
            for p in state.get("dhcp", ())]


def _await_leases(ns, vm_id, names, wait):
    deadline = time.monotonic() + wait
    while True:
        missing = [name for name in names if not _ipv4(ns, name)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise errors.CannotCreateVM(
                "no DHCP lease on %s within %g s: this runtime's network "
                "stack takes the addresses a NIC has when the container "
                "starts, and a later lease would not reach it"
                % (", ".join(missing), wait), vmId=vm_id)
        time.sleep(0.1)


def _index(ns, name):
    return ns.link_lookup(ifname=name)[0]


def _up(ns, name):
    return bool(ns.get_links(_index(ns, name))[0]["flags"] & IFF_UP)


def _ipv4(ns, name):
    return [a for a in ns.get_addr(index=_index(ns, name))
            if ":" not in a.get_attr("IFA_ADDRESS")]


def _routes(ns, name):
    """The link's gateway routes (dst/len, gateway): what a restart puts
    back besides the addresses (connected routes come with them)."""
    found = []
    for r in ns.get_routes(oif=_index(ns, name), table=254):
        gateway = r.get_attr("RTA_GATEWAY")
        if gateway:
            found.append({"dst": r.get_attr("RTA_DST") or "default",
                          "dst_len": r["dst_len"], "gateway": gateway})
    return found


def _put_back(ns, recorded):
    """The addresses and routes the last start took, back on the links."""
    for iface in recorded:
        index = _index(ns, iface["name"])
        for address in iface["inet"] + iface["inet6"]:
            _ignore_exists(ns.addr, "add", index=index, address=address,
                           prefixlen=iface["prefixes"][address])
        for r in iface.get("routes", ()):
            dst = r["dst"] if r["dst"] != "default" else \
                ("::" if ":" in r["gateway"] else "0.0.0.0")
            _ignore_exists(ns.route, "add", dst=dst, dst_len=r["dst_len"],
                           gateway=r["gateway"], oif=index)


def _ignore_exists(add, *args, **kwargs):
    try:
        add(*args, **kwargs)
    except Exception as e:
        # the kernel made it again itself (an IPv6 link-local address)
        if getattr(e, "code", None) != errno.EEXIST:
            raise

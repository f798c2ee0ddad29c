"""Container NICs: veth pairs on the VMs' own Linux bridges.

Each ``<interface type='bridge'>`` becomes one NIC, in a network namespace
of the container's own: a veth pair whose host end joins the bridge VMs use
(ovirtmgmt, or any network's bridge) and whose container end is named
eth0, eth1 ... in order, carries Engine's MAC and MTU, and stays down when
the interface's ``<link state='down'>``.  Links are made over netlink with
pyroute2, not with ``ip`` commands.

Addresses (``containerNetwork``): ``static`` ones are set here; ``dhcp``
starts the container's DHCP client (``host.dhcp``); ``none`` sets nothing.

pyroute2 from 0.5.14 on (EPEL 9 ships 0.5.14, oVirt 4.5's OpenStack
repositories 0.6.6): before 0.7 its link deletion sets NLM_F_EXCL, which
kernels from 5.19 on read as NLM_F_BULK and refuse (EOPNOTSUPP);
``_delete_link`` sends the plain request then.

What was made is recorded in ``network.json`` in the VM's run directory
before it is made, so teardown (destroy, a failed start, another process
after a crash) finds and removes all of it.  Namespace names carry a random
suffix: the kernel tears a namespace down asynchronously, and a reused vmId
must never meet its predecessor's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
import uuid

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.host import dhcp

# pyroute2 is imported where NICs are handled: importing it costs ~150 ms,
# which containers without NICs (and most command invocations) never pay.

log = logging.getLogger("vdsm_container.network")

NETNS_DIR = "/var/run/netns"
# A Linux bridge numbers its ports in 10 bits and keeps port 0 unused
# (net/bridge/br_private.h BR_PORT_BITS, br_if.c find_portno): past this
# many, adding one more fails with EXFULL.
BRIDGE_MAX_PORTS = 1023
STATE_FILE = "network.json"
# include/uapi/linux/rtnetlink.h, netlink.h (_delete_link)
RTM_DELLINK = 17
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04

def netns_prefix(paths):
    """What the names of this run directory's network namespaces start
    with: "vdsm-ctr-" and a tag of the run directory, so that namespaces
    are told apart by owner (another plugin tree, a test) at a glance and
    by a garbage collector."""
    tag = hashlib.sha1(paths.run_dir.encode()).hexdigest()[:6]
    return "vdsm-ctr-%s-" % tag


def host_name(vm_id, index):
    """Host-side veth name: <= 15 characters, stable for (vmId, NIC)."""
    return "vc%s%d" % (hashlib.sha1(vm_id.encode()).hexdigest()[:8], index)


def _state_path(paths, vm_id):
    return os.path.join(paths.vm_run_dir(vm_id), STATE_FILE)


def write_state(paths, vm_id, state):
    """Record what the VM's network has (``network.json``)."""
    files.write_atomically(_state_path(paths, vm_id), json.dumps(state))


def read_state(paths, vm_id):
    """What ``write_state`` recorded, or None."""
    try:
        with open(_state_path(paths, vm_id)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def setup(paths, spec):
    """Create the namespace and NICs of ``spec``; return the netns path.

    On failure everything made so far is removed and CreateError names the
    cause (e.g. a bridge that doesn't exist).
    """
    from pyroute2 import IPRoute, NetNS, netns as pyroute2_netns
    name = "%s%s-%s" % (netns_prefix(paths), spec.vm_id[:8],
                        uuid.uuid4().hex[:6])
    state = {"netns": name, "nics": [], "dhcp": []}
    write_state(paths, spec.vm_id, state)
    try:
        _check_bridges(spec)
        pyroute2_netns.create(name)
        with IPRoute() as host, NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            for i, nic in enumerate(spec.nics):
                hname = host_name(spec.vm_id, i)
                state["nics"].append({"host": hname, "mac": nic.mac,
                                      "bridge": nic.bridge})
                write_state(paths, spec.vm_id, state)
                _add_nic(host, ns, name, hname, i, nic)
                _configure(ns, "eth%d" % i, spec.ip_configs[i]
                           if i < len(spec.ip_configs) else None)
        for i, cfg in enumerate(spec.ip_configs):
            if cfg.mode == "dhcp" and spec.nics[i].link_up:
                state["dhcp"].append(dhcp.start(paths, spec.vm_id, name,
                                                 "eth%d" % i))
                write_state(paths, spec.vm_id, state)
    except Exception as e:
        teardown(paths, spec.vm_id)
        if isinstance(e, errors.VdsmException):
            raise
        raise errors.CannotCreateVM("network setup failed: %s" % e,
                                    vmId=spec.vm_id) from e
    return os.path.join(NETNS_DIR, name)


def _check_bridges(spec):
    for nic in spec.nics:
        if not os.path.isdir("/sys/class/net/%s/bridge" % nic.bridge):
            raise errors.CannotCreateVM("bridge %s does not "
                                        "exist on this host" % nic.bridge,
                                        bridge=nic.bridge, mac=nic.mac)


def _add_nic(host, ns, netns_name, hname, index, nic):
    # The container end is born in the namespace, named and addressed:
    # moving a device between namespaces afterwards costs tens of ms.
    peer = {"ifname": "eth%d" % index, "net_ns_fd": netns_name,
            "address": nic.mac}
    if nic.mtu:
        peer["mtu"] = nic.mtu
    host.link("add", ifname=hname, kind="veth", peer=peer)
    idx = host.link_lookup(ifname=hname)[0]
    br = host.link_lookup(ifname=nic.bridge)[0]
    opts = {"master": br, "state": "up"}
    if nic.mtu:
        opts["mtu"] = nic.mtu
    try:
        host.link("set", index=idx, **opts)
    except Exception as e:
        if getattr(e, "code", None) != errno.EXFULL:
            raise
        raise errors.CannotCreateVM(
            "bridge %s is full: a Linux bridge takes at most %d ports (the "
            "kernel's limit); more NICs on this network need another bridge"
            % (nic.bridge, BRIDGE_MAX_PORTS), bridge=nic.bridge,
            mac=nic.mac) from e
    if nic.link_up:
        ns.link("set", index=ns.link_lookup(ifname="eth%d" % index)[0],
                state="up")


def _configure(ns, ifname, cfg):
    if cfg is None or cfg.mode != "static":
        return
    idx = ns.link_lookup(ifname=ifname)[0]
    addr, _, prefix = cfg.address.partition("/")
    ns.addr("add", index=idx, address=addr, prefixlen=int(prefix))
    if cfg.gateway:
        ns.route("add", dst="default" if ":" not in addr else "::/0",
                 gateway=cfg.gateway)


def teardown(paths, vm_id):
    """Remove the NICs, DHCP clients and namespace of ``vm_id``.

    Idempotent; works from ``network.json`` alone, in any process.
    """
    state = read_state(paths, vm_id)
    if state is None:
        return
    from pyroute2 import IPRoute, netns as pyroute2_netns
    for pidfile in state.get("dhcp", ()):
        dhcp.stop(pidfile, state["netns"])
    with IPRoute() as host:
        for nic in state.get("nics", ()):
            for idx in host.link_lookup(ifname=nic["host"]):
                try:
                    _delete_link(host, idx)
                except Exception as e:
                    log.warning("Cannot remove %s: %s", nic["host"], e)
    if os.path.exists(os.path.join(NETNS_DIR, state["netns"])):
        pyroute2_netns.remove(state["netns"])
    os.unlink(_state_path(paths, vm_id))


def _delete_link(host, index):
    """Delete a link, on any pyroute2 this package allows and any kernel.

    pyroute2 before 0.7 sends RTM_DELLINK with NLM_F_CREATE|NLM_F_EXCL;
    from Linux 5.19 on NLM_F_EXCL means NLM_F_BULK in a delete request and
    the kernel refuses it with EOPNOTSUPP.  Then the request goes again
    with NLM_F_REQUEST|NLM_F_ACK only (what ``ip link del`` sends): those
    versions take a (message type, flags) pair as the command.  The
    namespace's removal would take the veth along too, but asynchronously
    and only once nothing holds the namespace: teardown must not wait on
    that.  The kernel's numbers are written here: pyroute2 0.6's
    namespace-package modules fail to import on newer Pythons.
    """
    try:
        host.link("del", index=index)
    except Exception as e:
        if getattr(e, "code", None) != errno.EOPNOTSUPP:
            raise
        log.debug("RTM_DELLINK with pyroute2's flags refused (%s): again "
                  "with NLM_F_REQUEST|NLM_F_ACK", e)
        host.link((RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK), index=index)


def stats(paths, vm_id, now=None):
    """VmStats ``network``: counters of each NIC's host-side veth.

    From /sys/class/net (plain file reads), as vdsm reports a VM's vnet
    device; rx on the host end is tx of the container, and vice versa.
    """
    state = read_state(paths, vm_id)
    if state is None:
        return {}
    # vmstats.py nic_stats: sampleTime is monotonic seconds; Engine
    # divides rx/tx deltas by its deltas (VmAnalyzer)
    now = now or time.monotonic()
    result = {}
    for nic in state["nics"]:
        base = "/sys/class/net/%s" % nic["host"]
        if not os.path.isdir(base):
            continue

        def counter(name, base=base):
            try:
                with open("%s/statistics/%s" % (base, name)) as f:
                    return f.read().strip()
            except OSError:
                return "0"

        try:
            with open(base + "/operstate") as f:
                oper = f.read().strip()
        except OSError:
            oper = "unknown"
        result[nic["host"]] = {
            "name": nic["host"],
            "macAddr": nic["mac"],
            "state": oper if oper in ("up", "down") else "unknown",
            # vmstats.py nic_info: "1000" for e1000, e1000e and virtio
            # NICs, a container's veth stands for a virtio one.
            "speed": "1000",
            # The host end's tx is what the container received.
            "rx": counter("tx_bytes"), "tx": counter("rx_bytes"),
            "rxErrors": counter("tx_errors"),
            "txErrors": counter("rx_errors"),
            "rxDropped": counter("tx_dropped"),
            "txDropped": counter("rx_dropped"),
            "sampleTime": now,
        }
    return result


def links(ns):
    """The links of namespace ``ns`` (a pyroute2 NetNS) but lo, sorted by
    name: ``netIfaces`` items, and ``prefixes`` (address: length)."""
    ifaces = []
    for link in ns.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name == "lo":
            continue
        inet, inet6, prefixes = [], [], {}
        for a in ns.get_addr(index=link["index"]):
            addr = a.get_attr("IFA_ADDRESS")
            (inet6 if ":" in addr else inet).append(addr)
            prefixes[addr] = a["prefixlen"]
        ifaces.append({"name": name, "hw": link.get_attr("IFLA_ADDRESS"),
                       "inet": inet, "inet6": inet6, "prefixes": prefixes})
    ifaces.sort(key=lambda i: i["name"])
    return ifaces


def guest_info(paths, vm_id):
    """``guestIPs`` and ``netIfaces`` as a guest agent reports them: the
    namespace's, or what a runtime's own stack took from it at start
    (``netstack``: the namespace shows none of them then)."""
    state = read_state(paths, vm_id)
    if state is None or not state.get("nics"):
        return {}
    ifaces = state.get("netstack")
    if ifaces is None:
        from pyroute2 import NetNS
        with NetNS(state["netns"]) as ns:
            ifaces = links(ns)
    ifaces = [{k: i[k] for k in ("name", "hw", "inet", "inet6")}
              for i in ifaces]
    return {"netIfaces": ifaces,
            "guestIPs": " ".join(ip for i in ifaces for ip in i["inet"])}

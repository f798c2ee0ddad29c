"""runsc's network stack over the namespace the plugin prepared.

gVisor runs its own TCP/IP stack (netstack) in the Sentry.  With
``--network=sandbox``, ``runsc start`` joins the container's network
namespace, copies each link's addresses and routes into netstack, takes the
addresses off the host kernel's side of the link (so that the kernel
answers no ARP or TCP for them) and hands netstack a packet socket on the
link (gVisor's runsc/sandbox/network.go, ``setupNetwork`` and
``createInterfacesAndRoutesFromNS``).

Before it does, runsc refuses the host's own namespace.  Up to gVisor
2024-07-31 it tells the host's namespace by /proc/sys/net/core/rmem_default
existing (``isRootNS``), and Linux made that sysctl per namespace (commit
19249c0724f2, "net: make net.core.{r,w}mem_{default,max} namespaced"): on
current kernels every namespace looks like the host's, and runsc refuses
them all ("cannot run with network enabled in root network namespace",
gVisor issue #10704; fixed by 19f6b0c07, which looks at dev_weight
instead).  No Debian package has the fix (0.0~20221219 is the newest).

For such a runsc, ``runsc start`` runs in a mount namespace of its own with
an empty, read-only tmpfs over /proc/sys/net, where the file it looks for
does not exist; nothing else of runsc's start reads there (its platform
reads /proc/sys/vm, which stays).  The guard runsc had is then this
module's: the namespace the container joins must not be the host's,
compared by inode as ``ip netns identify`` does, before start.
"""

from __future__ import annotations

import json
import os
import re

from vdsm_container import errors

#: The first gVisor release date with the fixed root-namespace check.
FIXED_SINCE = 20240801

#: The host's network namespace: init's.
HOST_NETNS = "/proc/1/ns/net"

_DATE = re.compile(r"(20\d{6})")


def netns_path(config_path):
    """The network namespace the bundle's container joins, or None."""
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    for ns in config.get("linux", {}).get("namespaces", ()):
        if ns.get("type") == "network" and ns.get("path"):
            return ns["path"]
    return None


def check_not_host(path, vm_id):
    """CannotCreateVM if ``path`` is the host's network namespace (init's,
    where it can be seen, or the caller's, vdsmd's): netstack would take
    the host's addresses off its links."""
    try:
        joined = os.stat(path)
    except OSError as e:
        raise errors.CannotCreateVM(
            "runsc: the container's network namespace %s: %s"
            % (path, e.strerror), vmId=vm_id) from e
    for own in (HOST_NETNS, "/proc/self/ns/net"):
        try:
            st = os.stat(own)
        except PermissionError:
            continue    # init is not ours to look at (in a container)
        if (st.st_dev, st.st_ino) == (joined.st_dev, joined.st_ino):
            raise errors.CannotCreateVM(
                "runsc: %s is the host's network namespace; runsc's "
                "network stack would take the host's addresses" % path,
                vmId=vm_id)


def old_root_check(version):
    """True if runsc ``version`` tells the host's namespace by
    rmem_default (a release dated before ``FIXED_SINCE``: Debian's
    "0.0~20221219.0", gVisor's "release-20240807.0").  A version without a
    date is taken for a new one."""
    m = _DATE.search(version or "")
    return bool(m) and int(m.group(1)) < FIXED_SINCE


def without_sysctl_net(argv):
    """``argv`` run where /proc/sys/net is an empty read-only tmpfs, in a
    mount namespace of its own that ends with it."""
    return ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c",
            'mount -t tmpfs -o ro,size=4k,mode=0555 vdsm-container-no-net '
            '/proc/sys/net && exec "$0" "$@"'] + list(argv)

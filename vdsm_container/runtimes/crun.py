"""crun: a second OCI runtime, with runc's command line.

crun shares the whole runc driver.  Its self-check matters more: crun 1.8
(Debian 12) refuses hybrid cgroup hosts whose cgroup v2 side still lists a
controller ("cgroups in hybrid mode not supported, drop all controllers from
cgroupv2"); the check reports that at start-up instead of failing a VM.
"""

from vdsm_container.runtimes import oci


class Driver(oci.OCIDriver):
    name = "crun"
    binary = "crun"

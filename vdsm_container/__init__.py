"""vdsm-container: run containers on an oVirt host as bare-bones VMs.

The flow, one module per step:

    domain XML (domxml) -> validated spec (spec) -> image rootfs (images)
    -> OCI bundle (bundle, ocispec) -> runtime driver (runtimes/)
    -> supervised process (conmon) -> stats (cgroups, vmstats)

``container.Container`` ties the steps together behind vdsm's Vm interface.
"""

__version__ = "0.1.0"

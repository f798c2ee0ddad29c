"""runc: the OCI reference runtime (Debian and EL package ``runc``)."""

from vdsm_container.runtimes import oci


class Driver(oci.OCIDriver):
    name = "runc"
    binary = "runc"

"""The qcow2 chains of test_storage_qcow2.py on an NFS data domain
(test_storage_nfs.py's: where the kernel has no NFS server, as on this CI
machine, they skip saying why; they run in the systemd + cgroup v2 VM,
make check-el9-live).  A module of their own: vdsm connects a host to
one pool at a time.
"""

from .test_storage_nfs import nfs_dc  # noqa: F401 (fixture)
from .test_storage_qcow2 import (
    container_ending_on_its_own, nothing_prepared,
    snapshot_of_a_stopped_container_vm,
    stateless_run_leaves_the_volume_as_it_was, thin_vm_from_a_template)


def test_nfs_snapshot_of_a_stopped_container_vm(
        nfs_dc, events, image):  # noqa: F811
    snapshot_of_a_stopped_container_vm(nfs_dc, events, image)
    assert nothing_prepared(nfs_dc)


def test_nfs_thin_vm_from_a_template(nfs_dc, events, image):  # noqa: F811
    thin_vm_from_a_template(nfs_dc, events, image)
    assert nothing_prepared(nfs_dc)


def test_nfs_stateless_run(nfs_dc, events, image):  # noqa: F811
    stateless_run_leaves_the_volume_as_it_was(nfs_dc, events, image)
    assert nothing_prepared(nfs_dc)


def test_nfs_container_ending_on_its_own(nfs_dc, events, image):  # noqa: F811
    container_ending_on_its_own(nfs_dc, events, image)
    assert nothing_prepared(nfs_dc)

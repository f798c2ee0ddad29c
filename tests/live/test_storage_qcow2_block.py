"""The qcow2 chains of test_storage_qcow2.py on an iSCSI block domain
(test_storage_block.py's: where the kernel lacks device-mapper or
iscsi_tcp, as on this CI machine, they skip saying why; they run in the
systemd + cgroup v2 VM, make check-el9-live).

Every volume is an LV: vdsm's prepareImage activates each LV of the chain
(a thin VM's template LV too, linked into the VM's image by
blockVolume._share) and links them in the image's run directory, where
the leaf's relative backing name finds its parent; the plugin's teardown
deactivates them all (``lvs``).
"""

from .test_storage_block import block_dc  # noqa: F401 (fixture)
from .test_storage_qcow2 import (
    container_ending_on_its_own, nothing_prepared,
    snapshot_of_a_stopped_container_vm,
    stateless_run_leaves_the_volume_as_it_was, thin_vm_from_a_template)


def test_block_snapshot_of_a_stopped_container_vm(
        block_dc, events, image):  # noqa: F811
    snapshot_of_a_stopped_container_vm(block_dc, events, image)
    assert nothing_prepared(block_dc)


def test_block_thin_vm_from_a_template(
        block_dc, events, image):  # noqa: F811
    thin_vm_from_a_template(block_dc, events, image)
    assert nothing_prepared(block_dc)


def test_block_stateless_run(block_dc, events, image):  # noqa: F811
    stateless_run_leaves_the_volume_as_it_was(block_dc, events, image)
    assert nothing_prepared(block_dc)


def test_block_container_ending_on_its_own(block_dc, events, image):  # noqa: F811
    container_ending_on_its_own(block_dc, events, image)
    assert nothing_prepared(block_dc)

"""Which of the domain's disks is the container's image disk, and the
refusal of a VM that has none.

The image disk is the disk the VM boots from: the lowest ``<boot order>``
(Engine writes it for the bootable disk, or for the VM's only disk:
ovirt-engine common VmDeviceCommonUtils.setDiskBootOrder); XML without any
boot order (written by hand, or by an older tool) uses its first disk.

Engine leaves the image disk out where it copies a VM: it is shareable
(ovirt-container create makes it so, for several VMs to use one image), and
a template takes only a VM's non-shareable disks (AddVmTemplateCommand,
ONLY_NOT_SHAREABLE), so a template made from a container VM, every VM made
from that template and an OVA of one have only the data volumes.  Such a
VM is refused at create with what is missing and how to attach it, rather
than failing on a data volume read as an image archive:

- it has no disk at all;
- it has several disks and none is the boot disk (their copies are not
  bootable: Engine gives none a boot order).

A copy with a single disk gets a boot order all the same; its
``containerVolumes`` then names a disk id the copy doesn't have (copies
get new ids), and that refusal (``domxml._check_volumes``) says the image
disk may be missing.
"""

from __future__ import annotations

from vdsm_container import errors

HOW_TO_ATTACH = (
    "attach the image disk (the shareable raw disk holding the image "
    "archive) to the VM as its bootable, read-only disk, then start it "
    "again: Administration Portal, Compute > Virtual Machines > the VM > "
    "Disks > Attach, with OS ticked; or REST POST "
    "/ovirt-engine/api/vms/{vmId}/diskattachments with <bootable>true"
    "</bootable><read_only>true</read_only> and the disk's id.  Templates "
    "and OVAs of a container VM leave it out (Engine copies only "
    "non-shareable disks)")


# A template's, a VM-from-template's or an OVA's disks are copies with new
# ids: containerVolumes still names the originals, and the image disk is
# not among them.
COPIED = ("if the VM was made from a template or an OVA of a container VM, "
          "its disks are copies with new ids: set containerVolumes to "
          "them, and " + HOW_TO_ATTACH.split(", then start it again")[0])


def missing(vm_id, why, image_ref=None):
    """MissingParameter (11): the VM has no image disk, ``why``."""
    what = "the image disk of %s" % image_ref if image_ref else \
        "the image disk"
    return errors.MissingParameter(
        "container VM has no image disk: %s; %s is missing: %s"
        % (why, what, HOW_TO_ATTACH.replace("{vmId}", vm_id)),
        field="disk")


def choose(vm_id, disks, image_ref=None):
    """The image disk of ``disks``; the VM's refusal if it has none."""
    if not disks:
        raise missing(vm_id, "the VM has no disk", image_ref)
    booted = [d for d in disks if d.boot_order is not None]
    if not booted and len(disks) > 1:
        raise missing(vm_id, "none of its disks (%s) is the boot disk" % (
            ", ".join(d.target for d in disks)), image_ref)
    image = min(booted, key=lambda d: d.boot_order) if booted else disks[0]
    if image.fmt not in ("raw", "qcow2"):
        raise errors.UnsupportedImageFormat(
            "the image volume %s is %s; container images need a raw or "
            "qcow2 volume holding the archive" % (image.target, image.fmt))
    return image

"""A container VM without its image disk is refused, saying which disk is
missing and how to attach it (issue #37 item 2).

Engine's flow: Make Template of a container VM (AddVmTemplateCommand copies
only the non-shareable disks, ONLY_NOT_SHAREABLE: the shareable image disk
stays behind), New VM from that template (copies of the template's disks,
with new ids, none bootable), Run: VM.create with LibvirtVmXmlBuilder's XML,
whose disks carry a boot order only if bootable, or if the VM has one disk
(VmDeviceCommonUtils.setDiskBootOrder).  An OVA of a container VM loses the
image disk the same way.
"""

import os
import re
import uuid

import pytest

from vdsm_container import errors
from vdsm_container.container import Container
from vdsm_container.spec import domxml

OLD_DATA = [str(uuid.uuid4()) for _ in range(2)]


def copied_vm(image, copies):
    """The XML of a VM made from the template: ``copies`` data disks with
    new ids, the template's containerVolumes naming the originals, and no
    image disk."""
    vm_id = str(uuid.uuid4())
    new = [str(uuid.uuid4()) for _ in copies]
    xml = domxml.build(
        vm_id, "from-template", "runc", image, image_ref="busybox:latest",
        disks=[(path, "ua-" + disk_id, False)
               for path, disk_id in zip(copies, new)],
        custom={"containerVolumes": ",".join(
            "%s:/data%d" % (d, i) for i, d in enumerate(OLD_DATA[
                :len(copies)]))})
    # No image disk: drop the first <disk> (the image's, boot order 1).
    xml = re.sub(r"<disk [^>]*>.*?</disk>", "", xml, count=1)
    if len(copies) == 1:
        xml = xml.replace("<target dev=\"sdb\" bus=\"scsi\" />",
                          "<target dev=\"sdb\" bus=\"scsi\" />"
                          "<boot order=\"1\" />")
    return vm_id, xml


def volume(tmp_path, name):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return path


def assert_how_to_attach(text, vm_id):
    assert "image disk" in text and "busybox:latest" in text, text
    assert "bootable" in text and "read-only" in text, text
    assert "/ovirt-engine/api/vms/%s/diskattachments" % vm_id in text, text


def test_no_boot_disk_among_the_copies(busybox_oci, tmp_path, paths):
    vm_id, xml = copied_vm(busybox_oci, [volume(tmp_path, "a"),
                                         volume(tmp_path, "b")])
    with pytest.raises(errors.MissingParameter) as e:
        Container.from_xml(xml, paths=paths)
    text = str(e.value)
    assert "none of its disks (sdb, sdc) is the boot disk" in text, text
    assert_how_to_attach(text, vm_id)
    assert not os.path.exists(paths.run_dir)


def test_no_disk_at_all(busybox_oci):
    vm_id, xml = copied_vm(busybox_oci, [])
    with pytest.raises(errors.MissingParameter) as e:
        domxml.parse(xml)
    assert "the VM has no disk" in str(e.value)
    assert_how_to_attach(str(e.value), vm_id)


def test_single_copy_names_the_missing_image_disk(busybox_oci, tmp_path):
    """Its one disk gets boot order 1; containerVolumes names the
    original disk, which the copy doesn't have."""
    _, xml = copied_vm(busybox_oci, [volume(tmp_path, "a")])
    with pytest.raises(errors.InvalidParameter) as e:
        domxml.parse(xml)
    text = str(e.value)
    assert OLD_DATA[0] in text and "template or an OVA" in text, text
    assert "attach the image disk" in text, text

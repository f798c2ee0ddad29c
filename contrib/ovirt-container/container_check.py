"""ovirt-container check: container VMs whose next start would fail.

A container VM boots from its image disk: the bootable disk attachment,
the shareable raw disk holding the image archive (``create`` attaches it
so, read-only).  Engine leaves shareable disks out of what it copies: a
template made from a container VM (AddVmTemplateCommand copies only
non-shareable disks), every VM made from that template, an OVA of one.
Such a VM has only copies of its data volumes, none bootable, and the host
refuses its start (vdsm_container/spec/imagedisk.py).  ``check`` names
every such VM with how to attach its image disk; ``start`` refuses to
start one, with the same words, before asking Engine.
"""

from container_placement import is_container


def _disk_name(system, disk_id):
    try:
        disk = system.disks_service().disk_service(disk_id).get()
    except Exception:       # gone, or not visible to this user
        return disk_id
    return disk.alias or disk.name or disk_id


def missing_image(system, vm):
    """What is wrong with container VM ``vm``'s image disk, or None."""
    if not is_container(vm):
        return None
    attachments = system.vms_service().vm_service(
        vm.id).disk_attachments_service().list()
    if any(a.bootable for a in attachments):
        return None
    image = [p.value for p in vm.custom_properties or ()
             if p.name == "containerImage"]
    what = "the image disk of %s" % image[0] if image else "its image disk"
    disks = ", ".join(_disk_name(system, a.disk.id) for a in attachments)
    return (
        "container VM %s has no image disk (%s): %s is missing; a template "
        "or OVA of a container VM leaves it out (Engine copies only "
        "non-shareable disks). Attach it as the VM's bootable, read-only "
        "disk (Compute > Virtual Machines > %s > Disks > Attach, OS ticked; "
        "or POST /ovirt-engine/api/vms/%s/diskattachments with "
        "bootable=true, read_only=true and the image disk's id), then start "
        "it" % (vm.name, "its disks: %s, none bootable" % disks if disks
                else "it has no disk", what, vm.name, vm.id))


def check(system):
    """[(vm name, problem or None)] of every container VM."""
    return [(vm.name, missing_image(system, vm))
            for vm in system.vms_service().list() if is_container(vm)]


def report(system, out, err):
    """``check``: one line per container VM on ``out``, a warning per VM
    that would fail on ``err``; returns how many would."""
    failing = 0
    for name, problem in check(system):
        out.write("%s\t%s\n" % (name, "no image disk" if problem else "ok"))
        if problem:
            err.write("ovirt-container: warning: %s\n" % problem)
            failing += 1
    return failing


def add_parser(sub):
    sub.add_parser("check", help="container VMs whose next start would "
                   "fail (no image disk: templates and OVAs leave it out); "
                   "exit status 1 if any")

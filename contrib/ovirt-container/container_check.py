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

It also names every container VM that is not pinned.  The host refuses
every migration of a container VM (MigrationError), so Engine must know
it before it tries: ``create`` gives each container VM the placement
policy affinity ``pinned`` (REST VmBaseMapper: MigrationSupport
PINNED_TO_HOST), with no dedicated host unless ``--host``.  Engine then
refuses to migrate it (VmValidator.canMigrate:
ACTION_TYPE_FAILED_VM_IS_PINNED_TO_HOST) and refuses up front to put its
host into maintenance, naming it (MaintenanceNumberOfVdssCommand.validate:
VDS_CANNOT_MAINTENANCE_IT_INCLUDES_NON_MIGRATABLE_VM), where a migratable
one leaves the host PreparingForMaintenance, its migration failing every
300 s.  A pinned VM with no dedicated host still starts on any host
(PinToHostPolicyUnit: a VM not running passes every host), so HA
restarts and ``drain`` go elsewhere.  ``check --fix`` pins them: an
update of the placement policy, applied at once even to a running VM
(VmBase.migrationSupport is an @EditableVmField on every status), its
dedicated hosts sent back as they were (the update resets them to those
given: VmBaseMapper.mapVmBaseModelToEntity).
"""

import ovirtsdk4 as sdk
from ovirtsdk4 import types

from container_placement import is_container

PINNED = types.VmAffinity.PINNED


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


def not_pinned(vm):
    """What Engine would try with container VM ``vm``, or None."""
    policy = vm.placement_policy
    affinity = policy.affinity if policy and policy.affinity else \
        types.VmAffinity.MIGRATABLE
    if not is_container(vm) or affinity == PINNED:
        return None
    return ("container VM %s is %s, not pinned: Engine will try to migrate "
            "it (host maintenance, load balancing) and the host refuses "
            "every migration of a container VM; ovirt-container check --fix "
            "pins it" % (vm.name, affinity.value))


def pin(system, vm):
    """Placement affinity pinned, the dedicated hosts kept."""
    hosts = [types.Host(id=h.id) for h in
             (vm.placement_policy.hosts or ())] if vm.placement_policy \
        else []
    system.vms_service().vm_service(vm.id).update(types.Vm(
        placement_policy=types.VmPlacementPolicy(affinity=PINNED,
                                                 hosts=hosts or None)))


def check(system):
    """[(vm, missing image problem or None, not pinned problem or None)]
    of every container VM."""
    return [(vm, missing_image(system, vm), not_pinned(vm))
            for vm in system.vms_service().list() if is_container(vm)]


def report(system, out, err, fix=False):
    """``check``: one line per container VM on ``out``, a warning per
    problem on ``err``; with ``fix``, each VM not pinned is pinned.
    Returns what is still wrong, for the error line, or None."""
    failing = unpinned = 0
    for vm, problem, loose in check(system):
        what = ["no image disk"] if problem else []
        if problem:
            err.write("ovirt-container: warning: %s\n" % problem)
            failing += 1
        if loose and fix:
            try:
                pin(system, vm)
                what.append("pinned now")
            except sdk.Error as e:
                what.append("not pinned")
                err.write("ovirt-container: warning: %s: Engine refused to "
                          "pin it: %s\n" % (vm.name, str(e).splitlines()[0]))
                unpinned += 1
        elif loose:
            what.append("not pinned")
            err.write("ovirt-container: warning: %s\n" % loose)
            unpinned += 1
        out.write("%s\t%s\n" % (vm.name, ", ".join(what) or "ok"))
    problems = []
    if failing:
        problems.append("%d container VM(s) would fail to start" % failing)
    if unpinned:
        problems.append("%d container VM(s) not pinned" % unpinned)
    return "; ".join(problems) or None


def add_parser(sub):
    c = sub.add_parser("check", help="container VMs whose next start would "
                       "fail (no image disk: templates and OVAs leave it "
                       "out) or that are not pinned (Engine would try to "
                       "migrate them); exit status 1 if any")
    c.add_argument("--fix", action="store_true", help="pin every container "
                   "VM that is not pinned")

#!/usr/bin/python3
"""ovirt-container: container VMs from an admin's shell, through Engine.

Built on ovirt-engine-sdk-python.  A container VM is a VM whose custom
properties carry ``containerType`` (see contrib/engine-config), whose boot
disk holds the image archive, and which runs only on hosts that can run
containers.

Placement: container_placement.py (an affinity label and, per cluster,
an enforcing affinity group on the hosts vdsm reports vdsm-container's
marker for).

Values.  Engine joins a VM's custom properties with ';' (REST:
CustomPropertiesParser.parse) and checks each against the regex
engine-config holds (CustomPropertiesUtils.validateProperties).  Every
value is checked here against the same regexes first
(contrib/engine-config/merge_properties.py), so a refusal is a clear
message before anything is created.

Disks.  Engine's domain XML names a disk by alias ``ua-<diskId>``, serial
``<diskId>`` and target ``sdX`` (LibvirtVmXmlBuilder.writeDisk); so
``--volume DISK_ID:/PATH`` writes ``containerVolumes=DISK_ID:/PATH``, which
the host matches against the serial.  The image disk is attached read-only
and made shareable, so several container VMs can use one image disk
(AttachDiskToVmCommand refuses a second VM a disk that is not shareable).

    ovirt-container --url https://engine/ovirt-engine/api --user admin@internal
        hosts | sync-hosts | list | check [--fix]
        upload-image ARCHIVE --storage-domain SD [--name NAME]
        import REF --storage-domain SD [--name NAME]
        create NAME --cluster C --image-disk DISK_ID --runtime runc
               (or --image REF --storage-domain SD: import it first)
               [--memory MiB] [--cpus N] [--nic PROFILE_ID]... [--host H]
               [--volume DISK_ID:/PATH]... [--command ...] [--env ...]
               [--network dhcp|none|static:...]
        start|stop|remove NAME
        drain HOST | move NAME --to HOST   (container_drain.py)

The password comes from $OVIRT_PASSWORD or --password-file.  Errors are one
line on stderr and a non-zero exit status.
"""

import argparse
import importlib.util
import os
import sys

import ovirtsdk4 as sdk
from ovirtsdk4 import types


def _load_merge_properties():
    """contrib/engine-config/merge_properties.py: the regexes Engine holds.

    Installed beside this script (the RPM's %{_datadir}/vdsm-container/
    engine), or found in the source tree.
    """
    here = os.path.dirname(os.path.realpath(__file__))
    for d in (here, os.path.join(os.path.dirname(here), "engine-config")):
        path = os.path.join(d, "merge_properties.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location(
                "merge_properties", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError("merge_properties.py not found beside %s" % here)


merge_properties = _load_merge_properties()


def _tools_path():
    """The modules beside this script (container_*), and the host's
    vdsm_container.image that container_upload checks archives with: in
    the source tree, or installed beside them (the engine RPM)."""
    here = os.path.dirname(os.path.realpath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    for d in (here, os.path.dirname(os.path.dirname(here))):
        if os.path.isdir(os.path.join(d, "vdsm_container")) and \
                d not in sys.path:
            sys.path.append(d)


_tools_path()

import container_check  # noqa: E402
import container_drain  # noqa: E402
import container_import  # noqa: E402
import container_upload  # noqa: E402
from container_placement import (  # noqa: E402,F401
    GROUP, HOOK_EVENT, HOOK_NAME, LABEL, container_hosts, group_service,
    is_container, label_service, sync_hosts)

IMAGE_TOOLS = {"upload-image": container_upload, "import": container_import}


class Failure(Exception):
    """An error for the admin: printed as one line."""


def connect(args):
    password = os.environ.get("OVIRT_PASSWORD")
    if args.password_file:
        with open(args.password_file) as f:
            password = f.read().strip()
    if password is None:
        raise Failure("no password: set OVIRT_PASSWORD or --password-file")
    return sdk.Connection(url=args.url, username=args.user,
                          password=password, insecure=args.insecure,
                          ca_file=args.ca_file, timeout=args.timeout)


def volumes(specs):
    """``DISK_ID:/PATH`` -> [(disk_id, path)]."""
    result = []
    for spec in specs or ():
        disk_id, sep, path = spec.partition(":")
        if not sep or not disk_id or not path.startswith("/"):
            raise Failure("--volume %s: expected DISK_ID:/PATH (the disk's "
                          "id, which the host finds as the disk's serial)"
                          % spec)
        result.append((disk_id, path))
    return result


def custom_properties(args):
    """The VM's custom properties, each checked as Engine will check it."""
    props = [("containerType", args.runtime)]
    for name, value in (("containerImage", args.image_ref),
                        ("containerCommand", args.command),
                        ("containerEnv", args.env),
                        ("containerNetwork", args.network)):
        if value:
            props.append((name, value))
    if args.volume:
        props.append(("containerVolumes", ",".join(
            "%s:%s" % v for v in volumes(args.volume))))
    for name, value in props:
        why = merge_properties.check(name, value)
        if why:
            raise Failure(why)
    return [types.CustomProperty(name=n, value=v) for n, v in props]


def find_cluster(system, name):
    found = system.clusters_service().list(search="name=%s" % name)
    if not found:
        raise Failure("no cluster named %s" % name)
    return found[0]


def share_image_disk(system, disk_id):
    """Make the image disk shareable, so that every container VM of the
    image attaches it (read-only).  Engine refuses it for a qcow2 disk or
    one with snapshots (UpdateDiskCommand.validateCanUpdateShareable): the
    admin then copies the disk, one copy per VM (docs/admin-guide.rst)."""
    service = system.disks_service().disk_service(disk_id)
    disk = service.get()
    if not disk.shareable:
        try:
            service.update(types.Disk(shareable=True))
        except sdk.Error as e:
            raise Failure("image disk %s can't be made shareable (%s): copy "
                          "it, one copy per container VM"
                          % (disk_id, str(e).splitlines()[0])) from e


def create(system, args, props, conn=None):
    """The container VM; with ``--image REF`` its image disk is imported
    first (after the checks that need no disk) and removed again if the
    VM can't be made."""
    capable = sync_hosts(system)
    if not capable:
        raise Failure("no container-capable host: install vdsm-container "
                      "on a host (its marker %s/%s in vdsm's hooks "
                      "directory)" % (HOOK_EVENT, HOOK_NAME))
    if args.host and args.host not in capable:
        raise Failure("host %s can't run containers; capable: %s"
                      % (args.host, ", ".join(capable)))
    cluster = find_cluster(system, args.cluster)
    if not args.image:
        return _create(system, args, props, cluster)
    cafile, secure = container_upload.imageio_security(args)
    args.image_disk = container_import.import_image(
        conn, args.image, args.storage_domain, cluster=args.cluster,
        cafile=cafile, secure=secure,
        tls_verify=args.src_tls_verify == "true")
    try:
        return _create(system, args, props, cluster)
    except BaseException:
        try:
            system.disks_service().disk_service(args.image_disk).remove()
        except sdk.Error:
            pass
        raise


def _create(system, args, props, cluster):
    share_image_disk(system, args.image_disk)
    # Pinned: Engine neither migrates it nor tries to for maintenance
    # (container_check); with no host, it starts on any (PinToHost).
    placement = types.VmPlacementPolicy(
        hosts=[types.Host(name=args.host)] if args.host else None,
        affinity=types.VmAffinity.PINNED)
    vms = system.vms_service()
    vm = vms.add(types.Vm(
        name=args.name,
        cluster=types.Cluster(id=cluster.id),
        template=types.Template(name="Blank"),
        memory=args.memory * 2 ** 20,
        memory_policy=types.MemoryPolicy(guaranteed=args.memory * 2 ** 20),
        cpu=types.Cpu(topology=types.CpuTopology(sockets=args.cpus, cores=1,
                                                 threads=1)),
        custom_properties=props,
        placement_policy=placement,
        # Engine's "VirtIO serial console": its domain XML then has the
        # unix console the host serves (docs/admin-guide.rst, "Serial
        # console").
        console=types.Console(enabled=True) if args.serial_console
        else None,
    ))
    vm_service = vms.vm_service(vm.id)
    try:
        disks = vm_service.disk_attachments_service()
        disks.add(types.DiskAttachment(
            disk=types.Disk(id=args.image_disk), bootable=True, active=True,
            read_only=True, interface=types.DiskInterface.VIRTIO_SCSI))
        for disk_id, _ in volumes(args.volume):
            disks.add(types.DiskAttachment(
                disk=types.Disk(id=disk_id), bootable=False, active=True,
                interface=types.DiskInterface.VIRTIO_SCSI))
        for i, profile in enumerate(args.nic or ()):
            vm_service.nics_service().add(types.Nic(
                name="nic%d" % (i + 1), vnic_profile=types.VnicProfile(
                    id=profile)))
        label_id, label = label_service(system)
        label.vms_service().add(types.Vm(id=vm.id))
        group_service(system, cluster.id, label_id).vms_service().add(
            types.Vm(id=vm.id))
    except BaseException:
        # Nothing half-made left behind: the VM goes, with its attachments
        # (the disks themselves stay: detach_only).
        try:
            vm_service.remove(detach_only=True)
        except sdk.Error:
            pass
        raise
    return {"id": vm.id, "name": args.name}


def find_vm(system, name):
    found = system.vms_service().list(search="name=%s" % name)
    if not found:
        raise Failure("no VM named %s" % name)
    return system.vms_service().vm_service(found[0].id)


def list_containers(system):
    vms = system.vms_service()
    result = []
    for vm in vms.list():
        if not is_container(vm):
            continue
        ips = []
        for dev in vms.vm_service(vm.id).reported_devices_service().list():
            ips += [ip.address for ip in (dev.ips or ())]
        result.append({"name": vm.name, "id": vm.id,
                       "status": vm.status.value if vm.status else None,
                       "ips": ips})
    return result


def run(args):
    # Values first: a refusal costs no request.
    props = custom_properties(args) if args.cmd == "create" else None
    if args.cmd == "create" and args.image and not args.storage_domain:
        raise Failure("--image needs --storage-domain")
    conn = connect(args)
    try:
        system = conn.system_service()
        if args.cmd == "hosts":
            for host in container_hosts(system):
                print(host.name)
        elif args.cmd == "sync-hosts":
            print("\n".join(sync_hosts(system)))
        elif args.cmd == "list":
            for vm in list_containers(system):
                print("%(name)s\t%(status)s\t%(ips)s" % dict(
                    vm, ips=" ".join(vm["ips"])))
        elif args.cmd == "create":
            print(create(system, args, props, conn)["id"])
        elif args.cmd in IMAGE_TOOLS:
            print(IMAGE_TOOLS[args.cmd].run(conn, args))
        elif args.cmd == "check":
            problem = container_check.report(system, sys.stdout,
                                             sys.stderr, fix=args.fix)
            if problem:
                raise Failure(problem)
        elif args.cmd in container_drain.COMMANDS:
            problem = container_drain.run(system, args, sys.stdout)
            if problem:
                raise Failure(problem)
        elif args.cmd in ("start", "stop"):
            vm_service = find_vm(system, args.name)
            problem = args.cmd == "start" and container_check.missing_image(
                system, vm_service.get())
            if problem:
                raise Failure(problem)
            getattr(vm_service, args.cmd)()
        elif args.cmd == "remove":
            find_vm(system, args.name).remove()
    finally:
        try:
            conn.close()
        except sdk.Error:
            pass


def parser():
    p = argparse.ArgumentParser(prog="ovirt-container", description=(
        "Create and manage container VMs through oVirt Engine."))
    p.add_argument("--url", required=True,
                   help="https://ENGINE/ovirt-engine/api")
    p.add_argument("--user", default="admin@internal")
    p.add_argument("--password-file")
    p.add_argument("--ca-file")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--timeout", type=int, default=30)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("hosts", help="hosts that can run containers")
    sub.add_parser("sync-hosts", help="label exactly those hosts %s and "
                   "keep each cluster's affinity group %s" % (LABEL, GROUP))
    sub.add_parser("list", help="container VMs, status and IPs")
    container_check.add_parser(sub)
    container_drain.add_parser(sub)
    c = sub.add_parser("create", help="create a container VM")
    c.add_argument("name")
    c.add_argument("--cluster", required=True)
    image = c.add_mutually_exclusive_group(required=True)
    image.add_argument("--image-disk", metavar="DISK_ID")
    image.add_argument("--image", metavar="REF", help="import REF (as "
                       "import does) into --storage-domain first")
    container_upload.add_common(c, name=False)
    c.add_argument("--src-tls-verify", choices=("true", "false"),
                   default="true")
    c.add_argument("--runtime", default="runc",
                   choices=("runc", "crun", "rkt", "runsc"))
    c.add_argument("--image-ref", help="containerImage")
    c.add_argument("--memory", type=int, default=256, metavar="MiB")
    c.add_argument("--cpus", type=int, default=1)
    c.add_argument("--host", help="pin to this container-capable host")
    c.add_argument("--serial-console", action="store_true",
                   help="enable the VM's serial console (ssh -t -p 2222 "
                   "ovirt-vmconsole@ENGINE connect)")
    c.add_argument("--nic", action="append", metavar="PROFILE_ID")
    c.add_argument("--volume", action="append",
                   metavar="DISK_ID:/PATH",
                   help="attach disk DISK_ID, mounted at /PATH")
    c.add_argument("--command", help="containerCommand")
    c.add_argument("--env", help="containerEnv")
    c.add_argument("--network", help="containerNetwork")
    for verb in ("start", "stop", "remove"):
        sub.add_parser(verb).add_argument("name")
    for tool in IMAGE_TOOLS.values():
        tool.add_parser(sub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        run(args)
    except Failure as e:
        sys.stderr.write("ovirt-container: %s\n" % e)
        return 1
    except container_upload.StepFailed as e:
        sys.stderr.write("ovirt-container: %s %s\n" % (args.cmd, e))
        return 130 if e.interrupted else 1
    except KeyboardInterrupt:
        sys.stderr.write("ovirt-container: interrupted\n")
        return 130
    except sdk.AuthError as e:
        sys.stderr.write("ovirt-container: bad credentials for %s: %s\n"
                         % (args.user, e))
        return 1
    except sdk.ConnectionError as e:
        sys.stderr.write("ovirt-container: cannot reach Engine at %s: %s\n"
                         % (args.url, e))
        return 1
    except sdk.Error as e:
        sys.stderr.write("ovirt-container: %s\n" % str(e).splitlines()[0])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ovirt-container: container VMs from an admin's shell, through Engine.

Built on ovirt-engine-sdk-python.  A container VM is a VM whose custom
properties carry ``containerType`` (see contrib/engine-config), whose boot
disk holds the image archive, and which runs only on hosts that can run
containers.

Engine's API does not show vdsm's capabilities and no scheduling filter
reads ``additionalFeatures``, so placement is made visible another way:
vdsm-container installs the vdsm hook ``before_vm_start/50_vdsm_container``
on hosts that can run containers, Engine lists it under the host's hooks,
and this command keeps the affinity label ``container-capable`` on exactly
those hosts (``sync-hosts``) and on every container VM it creates, so that
Engine's VM-to-host affinity places container VMs only where they can run.

    ovirt-container --url https://engine/ovirt-engine/api --user admin@internal
        hosts | sync-hosts | list
        create NAME --cluster C --image-disk DISK_ID --runtime runc
               [--memory MiB] [--cpus N] [--nic PROFILE_ID]... [--host H]
               [--volume DISK_ID:ALIAS:/path]... [--command ...] [--env ...]
               [--network dhcp|none|static:...]
        start|stop|remove NAME

The password comes from $OVIRT_PASSWORD or --password-file.  Errors are one
line on stderr and a non-zero exit status.
"""

import argparse
import os
import sys

import ovirtsdk4 as sdk
from ovirtsdk4 import types

HOOK_EVENT = "before_vm_start"
HOOK_NAME = "50_vdsm_container"
LABEL = "container-capable"


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


def container_hosts(system):
    """Hosts whose hooks include vdsm-container's marker hook."""
    hosts_service = system.hosts_service()
    capable = []
    for host in hosts_service.list():
        hooks = hosts_service.host_service(host.id).hooks_service().list()
        if any(h.event_name == HOOK_EVENT and h.name == HOOK_NAME
               for h in hooks):
            capable.append(host)
    return capable


def label_service(system, create=True):
    labels = system.affinity_labels_service()
    for label in labels.list():
        if label.name == LABEL:
            return labels.label_service(label.id)
    if not create:
        return None
    label = labels.add(types.AffinityLabel(name=LABEL))
    return labels.label_service(label.id)


def sync_hosts(system):
    """The label on exactly the container-capable hosts."""
    capable = {h.id: h for h in container_hosts(system)}
    service = label_service(system)
    labelled = {h.id for h in service.hosts_service().list()}
    for host_id in sorted(set(capable) - labelled):
        service.hosts_service().add(types.Host(id=host_id))
    for host_id in sorted(labelled - set(capable)):
        service.hosts_service().host_service(host_id).remove()
    return sorted(h.name for h in capable.values())


def custom_properties(args):
    props = [("containerType", args.runtime)]
    for name, value in (("containerImage", args.image_ref),
                        ("containerCommand", args.command),
                        ("containerEnv", args.env),
                        ("containerNetwork", args.network)):
        if value:
            props.append((name, value))
    if args.volume:
        props.append(("containerVolumes", ",".join(
            "%s:%s" % tuple(v.split(":", 2)[1:]) for v in args.volume)))
    return [types.CustomProperty(name=n, value=v) for n, v in props]


def create(system, args):
    capable = sync_hosts(system)
    if not capable:
        raise Failure("no container-capable host: install vdsm-container "
                      "on a host (its hook %s/%s marks it)"
                      % (HOOK_EVENT, HOOK_NAME))
    if args.host and args.host not in capable:
        raise Failure("host %s can't run containers; capable: %s"
                      % (args.host, ", ".join(capable)))
    placement = None
    if args.host:
        placement = types.VmPlacementPolicy(
            hosts=[types.Host(name=args.host)],
            affinity=types.VmAffinity.PINNED)
    vms = system.vms_service()
    vm = vms.add(types.Vm(
        name=args.name,
        cluster=types.Cluster(name=args.cluster),
        template=types.Template(name="Blank"),
        memory=args.memory * 2 ** 20,
        memory_policy=types.MemoryPolicy(guaranteed=args.memory * 2 ** 20),
        cpu=types.Cpu(topology=types.CpuTopology(sockets=args.cpus, cores=1,
                                                 threads=1)),
        custom_properties=custom_properties(args),
        placement_policy=placement,
    ))
    vm_service = vms.vm_service(vm.id)
    disks = vm_service.disk_attachments_service()
    disks.add(types.DiskAttachment(
        disk=types.Disk(id=args.image_disk), bootable=True, active=True,
        interface=types.DiskInterface.VIRTIO_SCSI))
    for spec in args.volume or ():
        disk_id, alias, _ = spec.split(":", 2)
        disks.add(types.DiskAttachment(
            disk=types.Disk(id=disk_id), bootable=False, active=True,
            interface=types.DiskInterface.VIRTIO_SCSI))
    for i, profile in enumerate(args.nic or ()):
        vm_service.nics_service().add(types.Nic(
            name="nic%d" % (i + 1), vnic_profile=types.VnicProfile(
                id=profile)))
    label_service(system).vms_service().add(types.Vm(id=vm.id))
    return {"id": vm.id, "name": args.name}


def find_vm(system, name):
    found = system.vms_service().list(search="name=%s" % name)
    if not found:
        raise Failure("no VM named %s" % name)
    return system.vms_service().vm_service(found[0].id)


def is_container(vm):
    return any(p.name == "containerType"
               for p in (vm.custom_properties or ()))


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
            print(create(system, args)["id"])
        elif args.cmd in ("start", "stop"):
            getattr(find_vm(system, args.name), args.cmd)()
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
    sub.add_parser("sync-hosts", help="label exactly those hosts "
                   + LABEL)
    sub.add_parser("list", help="container VMs, status and IPs")
    c = sub.add_parser("create", help="create a container VM")
    c.add_argument("name")
    c.add_argument("--cluster", required=True)
    c.add_argument("--image-disk", required=True, metavar="DISK_ID")
    c.add_argument("--runtime", default="runc",
                   choices=("runc", "crun", "rkt"))
    c.add_argument("--image-ref", help="containerImage")
    c.add_argument("--memory", type=int, default=256, metavar="MiB")
    c.add_argument("--cpus", type=int, default=1)
    c.add_argument("--host", help="pin to this container-capable host")
    c.add_argument("--nic", action="append", metavar="PROFILE_ID")
    c.add_argument("--volume", action="append",
                   metavar="DISK_ID:ALIAS:/PATH")
    c.add_argument("--command", help="containerCommand")
    c.add_argument("--env", help="containerEnv")
    c.add_argument("--network", help="containerNetwork")
    for verb in ("start", "stop", "remove"):
        sub.add_parser(verb).add_argument("name")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        run(args)
    except Failure as e:
        sys.stderr.write("ovirt-container: %s\n" % e)
        return 1
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

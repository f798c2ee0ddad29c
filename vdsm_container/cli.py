"""The ``vdsm-container`` command: the plugin without vdsm.

Each invocation is a new process that rebuilds its view of the containers
from their state files, exactly as vdsm does when it recovers after a
restart, and drives the same ``Container`` class vdsm's verbs reach.
Results are JSON on stdout; an error is one line on stderr with vdsm's code
and message, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid

from vdsm_container.vdsm import caps
from vdsm_container import config
from vdsm_container.runtimes import consoleclient
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.vdsm import markhost
from vdsm_container.image import cache as images
from vdsm_container.linux import mounts
from vdsm_container.host import orphans
from vdsm_container.host.backend import HostBackend
from vdsm_container.container import Container, create

# Exit status for errors: 1 for vdsm errors, 2 for usage (argparse's).
EXIT_ERROR = 1


def _print(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _load(paths, vm_id):
    ctr = Container.load(vm_id, paths=paths)
    ctr.refresh()
    return ctr


def cmd_caps(args, paths):
    _print(caps.report(paths))


def cmd_mark_host(args, paths):
    _print(markhost.run(paths, args.hooks_dir, args.sysctl_dir,
                        args.proc_sys))


def cmd_create(args, paths):
    try:
        with open(args.xml) as f:
            xml = f.read()
    except OSError as e:
        raise errors.invalid("xml", args.xml, e.strerror or str(e)) \
            from None
    _print(create(xml, paths=paths).status())


def cmd_run(args, paths):
    vm_id = args.vm_id or str(uuid.uuid4())
    nics = []
    if args.bridge:
        nics.append((args.bridge, args.mac or _random_mac()))
    xml = domxml.build(vm_id, args.name or "container-" + vm_id[:8],
                       args.runtime, args.image, memory_mib=args.memory,
                       vcpus=args.cpus, image_ref=args.image_ref,
                       command=args.command or None, nics=nics,
                       custom={"containerInsecure": "true"}
                       if args.insecure else None)
    _print(create(xml, paths=paths).status())


def _random_mac():
    # Engine's default MAC pool range starts with 56:6f.
    raw = uuid.uuid4().bytes
    return "56:6f:%02x:%02x:%02x:%02x" % tuple(raw[:4])


def cmd_list(args, paths):
    result = []
    for ctr in Container.load_all(paths=paths):
        ctr.refresh()
        entry = ctr.status()
        entry.pop("statusTime")
        entry["vmName"] = ctr.name
        result.append(entry)
    result += _orphan_entries(HostBackend(paths).orphans())
    _print(result)


# What the runtime says of an orphan, in vdsm's VM states.
_ORPHAN_STATUS = {"running": "Up", "paused": "Paused"}


def _orphan_entries(found):
    """Containers with no record, from the runtime's own state and the
    names of what they left (``host.orphans``): ``destroy`` or ``gc``
    removes them."""
    entries = []
    for vm_id, kinds in sorted(orphans.by_vm(found).items(),
                               key=lambda kv: kv[0] or ""):
        if vm_id is None:
            continue        # a namespace whose vmId is not known: gc
        ctrs = [p for p in found if p["vmId"] == vm_id and
                p["kind"] == "container"]
        entry = {"vmId": vm_id, "orphan": True, "left": kinds,
                 "status": _ORPHAN_STATUS.get(
                     ctrs[0]["status"] if ctrs else None, "Down")}
        if ctrs and ctrs[0].get("vmName"):
            entry["vmName"] = ctrs[0]["vmName"]
        entries.append(entry)
    return entries


def cmd_stats(args, paths):
    ctr = _load(paths, args.vm_id)
    ctr.sample()
    if args.interval > 0:
        time.sleep(args.interval)
        ctr.sample()
    _print(ctr.getStats())


def cmd_logs(args, paths):
    ctr = _load(paths, args.vm_id)
    try:
        if args.raw:
            with open(ctr.log_path(), "rb") as f:
                sys.stdout.flush()
                shutil.copyfileobj(f, sys.stdout.buffer)
            return
        # A container writes whatever bytes it likes: never fail on them.
        with open(ctr.log_path(), errors="replace") as f:
            for line in f:
                sys.stdout.write(log_text(line))
    except FileNotFoundError:
        pass


# conmon's k8s-file lines: TIMESTAMP STREAM P|F TEXT (P: a partial line)
_K8S_LINE = re.compile(r"\S+ (?:stdout|stderr) ([PF])(?: (.*))?\Z", re.S)


def log_text(line):
    """What the container wrote, from one line of its log: a k8s-file
    line (conmon's, runc and crun) without its prefix; any other (rkt's
    pod console) as it is, without the console's carriage return."""
    line = line.rstrip("\n")
    m = _K8S_LINE.match(line)
    if m:
        return (m.group(2) or "") + ("" if m.group(1) == "P" else "\n")
    return line.rstrip("\r") + "\n"


def cmd_console(args, paths):
    ctr = _load(paths, args.vm_id)
    path = ctr.spec.console
    if not path:
        raise errors.UnsupportedOperation(
            "VM %s has no serial console (no <console type='unix'> in its "
            "domain XML)" % ctr.id, vmId=ctr.id)
    if not os.path.exists(path):
        raise errors.UnsupportedOperation(
            "the console of VM %s is not available (%s): the VM is %s"
            % (ctr.id, path, ctr.lastStatus), vmId=ctr.id)
    consoleclient.attach(path, ctr.id)


def cmd_shutdown(args, paths):
    ctr = _load(paths, args.vm_id)
    result = ctr.shutdown(timeout=args.timeout, force=args.force, wait=True)
    _print(dict(result, vmStatus=ctr.status()))


def cmd_destroy(args, paths):
    try:
        ctr = _load(paths, args.vm_id)
    except errors.NoSuchVM:
        # No record: a container whose run directory is gone, found by
        # the names of its parts (NoSuchVM again when there are none).
        HostBackend(paths).reap(args.vm_id)
        _print({"status": {"code": 0, "message": "Machine destroyed"},
                "orphan": True})
        return
    _print(ctr.destroy())


def cmd_gc(args, paths):
    result = HostBackend(paths).gc(dry_run=not args.force)
    _print(result)
    if result.get("failed"):
        raise errors.GeneralException("%d orphans could not be removed"
                                      % len(result["failed"]))


def cmd_pause(args, paths):
    _print(_load(paths, args.vm_id).pause())


def cmd_cont(args, paths):
    _print(_load(paths, args.vm_id).cont())


def cmd_migrate(args, paths):
    _print(_load(paths, args.vm_id).migrate({"dst": args.dst}))


def _image_users(paths):
    users = {}
    for ctr in Container.load_all(paths=paths):
        key = (ctr.image or {}).get("key")
        if key:
            users.setdefault(key, []).append(ctr.id)
    return users


def cmd_images(args, paths):
    cache = images.Cache(paths.image_cache)
    users = _image_users(paths)
    if args.action == "prune":
        removed = []
        in_use = mounts.overlay_lowerdirs()
        for key in cache.keys():
            rootfs = os.path.join(cache.entry(key), "rootfs")
            if not users.get(key) and rootfs not in in_use:
                cache.remove(key)
                removed.append(key)
        # and what killed unpacks left: staging dirs, lock files
        _print({"removed": removed, "stale": cache.prune_stale()})
        return
    result = []
    for key in cache.keys():
        info = cache.info(key)
        info["users"] = users.get(key, [])
        result.append(info)
    _print(result)


def parser():
    p = argparse.ArgumentParser(
        prog="vdsm-container",
        description="Run containers as oVirt VMs (the vdsm plugin, "
                    "standalone).")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log to stderr")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    add("caps", cmd_caps, "additionalFeatures and runtime availability")
    markhost.parser(add("mark-host", cmd_mark_host, "install the vdsm hook "
                        "that marks this host container-capable for "
                        "Engine (or remove it)"))
    sp = add("create", cmd_create, "create a container VM from domain XML")
    sp.add_argument("xml", metavar="DOMAIN.xml")
    sp = add("run", cmd_run, "create a container VM from options")
    sp.add_argument("--runtime", required=True)
    sp.add_argument("--image", required=True,
                    help="image volume: an OCI or docker archive")
    sp.add_argument("--image-ref", help="image to run when the archive "
                    "holds several (containerImage)")
    sp.add_argument("--memory", type=int, default=256, metavar="MiB")
    sp.add_argument("--cpus", type=int, default=1, metavar="N")
    sp.add_argument("--insecure", action="store_true",
                    help="run an unsigned image (rkt: containerInsecure)")
    sp.add_argument("--name")
    sp.add_argument("--vm-id")
    sp.add_argument("--bridge", metavar="BR")
    sp.add_argument("--mac", metavar="MAC")
    sp.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD",
                    help="command replacing the image's")
    add("list", cmd_list, "list container VMs (and containers with no "
        "record: orphan)")
    sp = add("gc", cmd_gc, "list what containers left with no record "
             "(containers, processes, cgroups, mounts, loop devices, "
             "namespaces, storage directories); --force removes it")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", default=True,
                      help="only list (the default)")
    mode.add_argument("--force", action="store_true",
                      help="remove what is listed")
    sp = add("images", cmd_images, "list cached images, or prune unused ones")
    sp.add_argument("action", nargs="?", choices=("list", "prune"),
                    default="list")
    for name, fn, help_ in (
            ("stats", cmd_stats, "VmStats of a container VM"),
            ("logs", cmd_logs, "the container's output"),
            ("console", cmd_console, "the serial console, interactive; "
             "^] detaches"),
            ("shutdown", cmd_shutdown, "graceful stop"),
            ("destroy", cmd_destroy, "stop and remove"),
            ("pause", cmd_pause, "freeze the container"),
            ("cont", cmd_cont, "thaw the container"),
            ("migrate", cmd_migrate, "refused: containers don't migrate")):
        sp = add(name, fn, help_)
        sp.add_argument("vm_id", metavar="VMID")
        if name == "stats":
            sp.add_argument("--interval", type=float, default=1.0,
                            help="seconds between the two samples")
        if name == "shutdown":
            sp.add_argument("--timeout", type=float, metavar="SECONDS",
                            help="how long to wait for the container to "
                            "end (default: the stop timeout)")
            sp.add_argument("--force", action="store_true",
                            help="kill it when it has not ended by then")
        if name == "logs":
            sp.add_argument("--raw", action="store_true",
                            help="conmon's k8s-file lines as they are")
        if name == "migrate":
            sp.add_argument("dst", metavar="DST")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    logging.basicConfig(level=logging.INFO if args.verbose else
                        logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: "
                               "%(message)s")
    paths = config.Paths.from_env()
    try:
        args.func(args, paths)
    except errors.VdsmException as e:
        sys.stderr.write("vdsm-container: error %d: %s\n" % (e.code, e))
        return EXIT_ERROR
    except OSError as e:
        err = errors.describe(e)
        sys.stderr.write("vdsm-container: error %d: %s\n"
                         % (err["code"], err["message"]))
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())

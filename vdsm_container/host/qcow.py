"""qcow2 disks, read as raw through qemu-storage-daemon's FUSE export.

A snapshot, a thin VM from a template, a clone from a snapshot, a stateless
run and an OVA import give a VM qcow2 volumes: a COW leaf over a raw base
(or over more qcow2 layers), the chain vdsm prepared (its ``<driver
type='qcow2'>`` in Engine's XML, LibvirtVmXmlBuilder.writeDisk).  The
container reads its image disk, and mounts its volumes, as raw bytes: one
``qemu-storage-daemon`` per qcow2 disk opens the leaf (qemu follows the
chain from each volume's header, as it does for a VM) and exports it as a
raw file over FUSE (``--export type=fuse``), which the image cache reads or
``mount -o loop`` mounts, as it would a raw volume.  FUSE rather than NBD:
hosts without the nbd module (no /dev/nbd*) have /dev/fuse.

The image disk is exported read-only for as long as reading it takes
(``image``); a volume read-write (read-only with ``<readonly/>``), so its
writes land in the leaf, for the container's life (``serve_volumes``).
Each export is a file below the VM's storage directory with the daemon's
pidfile beside it; ``stop_all`` (teardown) unmounts the volumes over them,
then stops each daemon, which flushes the leaf and removes its FUSE mount,
and removes the files: no process, mount or export is left.

A volume's daemon lives as long as the container, not as long as the
process that started it (supervdsmd): where systemd is PID 1 it runs in a
scope of its own below the containers' slice (``systemd-run --scope``, as
conmon does), its unit's name in ``<export>.unit``.  In supervdsmd's
cgroup, a restart of supervdsmd.service (an upgrade, its Restart=always
after a crash; vdsmd.service Requires= it) would kill it with the
service (KillMode=control-group), and the running container's volume
would fail under it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid

from vdsm_container import errors
from vdsm_container.linux import mounts
from vdsm_container.linux import pidinfo
from vdsm_container.runtimes import base

QSD = "qemu-storage-daemon"
EXPORTS = "q"           # below the VM's storage dir (shorter than volumes/)
STOP_WAIT = 30.0        # seconds a daemon may take to flush and exit


def export(disk, target, writable, slice_=None):
    """Serve ``disk`` (a qcow2 leaf and its chain) as raw file ``target``,
    created here; the daemon's pid goes to ``target``.pid.  With
    ``slice_`` (systemd is PID 1), the daemon runs in a scope of its own
    in that slice."""
    with open(target, "x"):
        pass
    readonly = not writable
    try:
        block = stat.S_ISBLK(os.stat(disk.path).st_mode)
    except OSError as e:
        _remove(target)
        raise errors.ImageFileNotFound(str(e), disk=disk.target) from None
    argv = [QSD, "--blockdev", json.dumps({
        "driver": "host_device" if block else "file",
        "node-name": "proto", "filename": disk.path,
        "read-only": readonly}),
        "--blockdev", json.dumps({"driver": "qcow2", "node-name": "fmt",
                                  "file": "proto", "read-only": readonly}),
        "--export", json.dumps({"type": "fuse", "id": "exp",
                                "node-name": "fmt", "mountpoint": target,
                                "writable": writable}),
        "--pidfile", target + ".pid", "--daemonize"]
    if slice_:
        unit = "vdsm-container-qsd-%s.scope" % uuid.uuid4().hex
        with open(target + ".unit", "w") as f:
            f.write(unit)
        argv = ["systemd-run", "--scope", "--quiet", "--collect",
                "--slice=%s" % slice_, "--unit=%s" % unit,
                "--description=qcow2 disk %s of a container VM" % disk.target,
                "--"] + argv
    try:
        if shutil.which(QSD) is None:   # systemd-run would hide it
            raise FileNotFoundError(QSD)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
    except FileNotFoundError:
        _remove(target + ".unit")
        _remove(target)
        raise errors.UnsupportedImageFormat(
            "disk %s is qcow2 and %s is not installed (qemu-storage-daemon "
            "serves qcow2 disks to containers)" % (disk.target, QSD)) \
            from None
    if proc.returncode != 0:
        stop(target)
        raise errors.UnsupportedImageFormat(
            "cannot read qcow2 disk %s (%s): %s" % (
                disk.target, disk.path, proc.stderr.strip()),
            disk=disk.target)


def stop(target, wait=STOP_WAIT):
    """Stop the daemon serving ``target`` and remove the export; idempotent.

    SIGTERM lets it flush the leaf and unmount its export; a daemon still
    there after ``wait`` seconds is killed and the mount detached."""
    pid = _pid(target + ".pid")
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    unit = _read(target + ".unit")
    if unit:
        # Gone with its daemon; stopped here so that it is gone now.
        subprocess.run(["systemctl", "stop", "--quiet", unit],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if mounts.mounted_under(target):
        mounts.umount(target)
    _remove(target + ".unit")
    _remove(target + ".pid")
    _remove(target)


@contextlib.contextmanager
def image(spec, scratch_dir):
    """The path to read the image disk from: itself if raw; a read-only
    export, for the block's duration, if qcow2."""
    disk = spec.image_disk
    if disk.fmt != "qcow2":
        yield disk.path
        return
    os.makedirs(scratch_dir, exist_ok=True)
    where = tempfile.mkdtemp(prefix="qcow-%s-" % spec.vm_id, dir=scratch_dir)
    target = os.path.join(where, "image")
    try:
        export(disk, target, writable=False)
        yield target
    finally:
        stop(target)
        shutil.rmtree(where, ignore_errors=True)


def serve_volumes(bundle, spec, slice_=None):
    """Export each qcow2 volume (its daemon in a scope of ``slice_``, where
    given); return ``spec`` with each such disk's path the raw export (a
    file: mounted through a loop device)."""
    served = {}
    for i, (disk, _) in enumerate(spec.volume_disks):
        if disk.fmt != "qcow2" or disk in served:
            continue
        target = os.path.join(bundle.storage_dir, EXPORTS, str(i))
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        export(disk, target, writable=not disk.readonly, slice_=slice_)
        served[disk] = dataclasses.replace(disk, path=target, block=False,
                                           fmt="raw")
    if not served:
        return spec
    return dataclasses.replace(spec, disks=tuple(
        served.get(d, d) for d in spec.disks))


def stop_all(bundle):
    """Unmount the volumes (they sit on the exports), then stop every
    export of the VM (teardown)."""
    volumes = os.path.join(bundle.storage_dir, "volumes")
    targets = sorted(p[:-len(".pid")] for p in glob.glob(
        os.path.join(bundle.storage_dir, EXPORTS, "*.pid")))
    if not targets:
        return
    for point in mounts.mounted_under(volumes):
        mounts.umount(point)
    for target in targets:
        stop(target)


def release_disks(backend, vm_id):
    """``HostBackend.release_disks``: stop the exports of a container that
    ended (on its own, or killed) and is not yet destroyed; nothing while
    it runs or is paused.  VdsmContainer.setDownStatus calls it before
    vdsm tears the volumes down, as vdsm tears a VM's drives down once its
    qemu ended (vm.py ``_onQemuDeath``): an export holds its chain open (a
    block domain's LVs could not be deactivated).  Returns whether it
    stopped them."""
    def act(driver, bundle):
        if driver.state(bundle).status in (base.RUNNING, base.PAUSED):
            return False
        stop_all(bundle)
        return True
    return backend._act(vm_id, act)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _pid(pidfile):
    try:
        return int(_read(pidfile))
    except (TypeError, ValueError):
        return None


def _alive(pid):
    """Running (a zombie has let go of the files and the mount)."""
    return pidinfo.running(pid)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

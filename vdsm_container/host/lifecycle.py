"""The host side of a container's life: start it, look at it, remove it.

These functions hold the order of the steps and nothing else: which files,
mounts, links and runtime records one container has, built in the order
"image -> bundle -> volumes -> block I/O -> NICs -> runtime", and removed
in the reverse one.  They keep no state of their own and know nothing of
vdsm's VM states (``container.Container`` does): a ``HostBackend`` calls
them with root's paths, in whichever process is root.
"""

from __future__ import annotations

import logging
import os
import stat

from vdsm_container import constants
from vdsm_container.bundle import blockio
from vdsm_container.bundle import quota
from vdsm_container.bundle import volumes
from vdsm_container.host import netstack, network
from vdsm_container.host import qcow
from vdsm_container.image import cache as imagecache
from vdsm_container.runtimes import base, proc

log = logging.getLogger("vdsm_container.host.lifecycle")


def prepare_image(paths, spec, driver):
    """The image's cached rootfs (unpacked on first use), or None.

    Called before the VM's lock is taken: a first unpack may take minutes,
    and nothing else of this VM needs to wait for it (the cache has its own
    per-image lock).
    """
    if not driver.capabilities.get("rootfs"):
        return None
    with qcow.image(spec, os.path.join(paths.run_dir, "qcow")) as path:
        return imagecache.Cache(paths.image_cache).get(
            path, spec.image_ref, id_map(paths, spec))


def id_map(paths, spec):
    """(host base id, size) for a user-namespace container, else None."""
    if not spec.userns:
        return None
    return (paths.userns_base, paths.userns_size)


def disk_size_mib(paths, spec, driver):
    """The writable layer's limit: the VM's containerDiskSize, else the
    host's default (0: none).  A runtime without a rootfs of ours (rkt)
    has no writable layer of ours."""
    if not driver.capabilities.get("rootfs"):
        return 0
    if spec.disk_size_mib is not None:
        return spec.disk_size_mib
    size = quota.default_mib(paths.storage_dir, paths.disk_size_mib)
    if size != paths.disk_size_mib:
        log.info("Container %s: writable layer of %d MiB, the size of the "
                 "storage filesystem of %s (the default of %d MiB does not "
                 "fit)", spec.vm_id, size, paths.storage_dir,
                 paths.disk_size_mib)
    return size


def start(paths, spec, driver, bundle, hierarchy, image):
    """Build the container's bundle and start it; return its pid.

    On failure everything built so far is removed before the error goes
    up, so a failed start leaves nothing on the host.  Once it runs, its
    rootfs mounts leave the host's mount table
    (``Bundle.release_host_mounts``).
    """
    try:
        idm = id_map(paths, spec)
        bundle.create_dirs(owner=idm[0] if idm else None,
                           size_mib=disk_size_mib(paths, spec, driver))
        if image is not None:
            bundle.mount_rootfs(image.rootfs)
        spec = qcow.serve_volumes(
            bundle, spec,
            paths.cgroup_parent if proc.systemd_booted() else None)
        mounts = volumes.mount_all(bundle, spec)
        blkio = blockio.resources(
            spec, bundle,
            {disk.path: m["source"] for (disk, _), m in zip(
                spec.volume_disks, mounts)}, hierarchy)
        netns = network.setup(paths, spec) if spec.nics else None
        driver.prepare(bundle, spec, image, mounts=mounts, netns=netns,
                       blkio=blkio, id_map=idm)
        if netns and driver.owns_addresses:
            netstack.hand_over(paths, spec.vm_id)
        pid = driver.start(bundle)
        if spec.launch_paused:
            # Run Once paused (``spec.runonce``): frozen before anyone is
            # told it runs.  A runtime starts no frozen container (runc
            # and crun refuse to start a paused one): it runs from its
            # start to this freeze.
            driver.pause(bundle)
    except BaseException as e:
        log.error("Container %s failed to start: %s", spec.vm_id, e)
        try:
            teardown(paths, driver, bundle)
        except Exception as cleanup_error:
            # The run directory stays: it is the record of what is left.
            log.error("Container %s: cleanup after the failed start "
                      "failed too: %s", spec.vm_id, cleanup_error)
        raise
    bundle.release_host_mounts()
    return pid


def started_status(spec):
    """The VM status a container has once ``start`` returned."""
    return constants.PAUSED if spec.launch_paused else constants.UP


def restart(paths, driver, bundle, image_key):
    """Start the container again on the bundle and writable layer it has
    (a reset); return the new pid.  ``image_key`` is the cached image the
    rootfs overlays (None: the runtime has no rootfs of ours).

    The caller stopped and cleaned up the last run; its mounts went with
    its mount namespace (``Bundle.release_host_mounts``), so the layer and
    the overlay are mounted again first, and taken out of the host's table
    again once the container runs.
    """
    try:
        if image_key is not None:
            bundle.remount_rootfs(os.path.join(
                imagecache.Cache(paths.image_cache).entry(image_key),
                "rootfs"))
        if driver.owns_addresses:
            netstack.hand_over(paths, bundle.vm_id)
        return driver.start(bundle)
    finally:
        # Started: the container's namespace holds them.  Not started:
        # nothing needs them, and nothing else would unmount them.
        bundle.release_host_mounts()


def teardown(paths, driver, bundle):
    """Remove everything the container has on the host; idempotent.

    Every step runs even when an earlier one failed; the first error is
    raised at the end.
    """
    first_error = None
    steps = (lambda: driver.cleanup(bundle),
             lambda: network.teardown(paths, bundle.vm_id),
             lambda: qcow.stop_all(bundle),
             bundle.teardown)
    for step in steps:
        try:
            step()
        except Exception as e:
            log.error("Container %s teardown: %s", bundle.vm_id, e)
            first_error = first_error or e
    if first_error is not None:
        raise first_error


def observe(paths, spec, driver, bundle, hierarchy, sample):
    """What the host shows of one container right now.

    Always the runtime's state; with ``sample``, also a cgroup sample, the
    NICs' counters and addresses, and the disks' sizes (what VmStats
    reports).  Changes nothing.
    """
    rs = driver.state(bundle)
    seen = {"runtime": rs}
    if not sample or rs.status not in (base.RUNNING, base.PAUSED):
        return seen
    rel = driver.cgroup_path(bundle)
    seen["cgroup"] = hierarchy.read(rel) if rel else None
    if spec.nics:
        seen["network"] = network.stats(paths, spec.vm_id)
        try:
            seen["guest"] = network.guest_info(paths, spec.vm_id)
        except Exception as e:      # the netns went away meanwhile
            log.debug("Container %s guest info: %s", spec.vm_id, e)
    sizes = {}
    for disk in spec.disks:
        try:
            st = os.stat(disk.path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            # a block volume (LV) holds all of its size, as vdsm's
            # blockVolume.getVolumeSize reports truesize = apparentsize
            size = _device_size(disk.path)
            sizes[disk.path] = (size, size)
        else:
            # fileVolume: truesize is what the file allocates
            sizes[disk.path] = (st.st_size, st.st_blocks * 512)
    seen["sizes"] = sizes
    return seen


def _device_size(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)

"""The VM's other disks, mounted into the container (``containerVolumes``).

A disk vdsm prepared is a raw volume holding a filesystem: a regular file
on a file domain (mounted through a loop device, which the kernel frees on
unmount: ``mount -o loop`` sets autoclear), a block device on a block domain
(mounted directly).  It is mounted read-only when the disk has
``<readonly/>``, under the container's storage directory, then bind-mounted
into the container at the path ``containerVolumes`` gives.  Bundle teardown
unmounts everything below that directory, so destroy, a failed start and a
crash all release the volumes the same way.

mount(8) is used rather than mount(2): it finds a free loop device and
detects the filesystem type; volumes are rare enough to afford it.
"""

from __future__ import annotations

import os
import subprocess

from vdsm_container import errors
from vdsm_container.image import disk as diskpath


def _mount(disk, target):
    options = ["ro" if disk.readonly else "rw", "nodev", "nosuid"]
    if not disk.block:
        options.append("loop")
    proc = subprocess.run(["mount", "-o", ",".join(options), disk.path,
                           target], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise errors.CannotCreateVM("cannot mount volume %s: %s"
                                    % (disk.path, proc.stderr.strip()),
                                    disk=disk.target)


def mount_all(bundle, spec):
    """Mount every volume; return the OCI mounts that bind them in.

    Each mount's ``source`` is where the volume is mounted on the host.
    """
    result = []
    for i, (disk, path) in enumerate(spec.volume_disks):
        # A regular file or a block device the host doesn't use; then the
        # target as the image's symlinks make it, inside the rootfs.
        diskpath.check(disk.path, disk.target, own_mounts=bundle.storage_dir
                       and os.path.dirname(bundle.storage_dir))
        path = bundle.resolve(path)
        target = os.path.join(bundle.storage_dir, "volumes", str(i))
        os.makedirs(target, mode=0o700, exist_ok=True)
        _mount(disk, target)
        result.append({"destination": path, "type": "bind",
                       "source": target,
                       "options": ["rbind", "ro" if disk.readonly else "rw"]})
    return result

"""What the host advertises to Engine about containers.

vdsm's Host.getCapabilities carries a list of strings, ``additionalFeatures``
(lib/vdsm/host/caps.py ``get``: gluster adds its features the same way).  We
add ``containers`` when at least one runtime can run here, plus
``containers_<runtime>`` for each that can.  With none, we add nothing: the
host looks exactly as it would without the plugin.

``report`` (the ``caps`` command) says more, for the admin: each runtime's
version and why one is unusable, conmon's and umoci's versions
(``runtimes.versions``), and the writable layer's default size as it
applies on this host (``bundle.quota.default_mib``: the configured default,
or the storage filesystem's size where that is smaller).
"""

from __future__ import annotations

from vdsm_container import constants
from vdsm_container import runtimes
from vdsm_container.bundle import quota
from vdsm_container.runtimes import versions


def additional_features(availability):
    """``availability`` is ``runtimes.probe()``'s result."""
    usable = sorted(name for name, a in availability.items() if a.available)
    if not usable:
        return []
    return [constants.FEATURE] + [constants.FEATURE_RUNTIME_PREFIX + name
                                  for name in usable]


def disk_size(paths):
    """The writable layer's default size on this host (MiB): as configured
    (VDSM_CONTAINER_DISK_SIZE), as it applies, and the storage
    filesystem's size that bounds it."""
    return {
        "configuredMiB": paths.disk_size_mib,
        "defaultMiB": quota.default_mib(paths.storage_dir,
                                        paths.disk_size_mib),
        "storageFilesystemMiB": quota.filesystem_mib(paths.storage_dir),
    }


def report(paths):
    """``additionalFeatures``, each runtime's availability (with why and
    its version), the helper tools' versions and the layer's default."""
    availability = runtimes.probe(paths)
    return {
        "additionalFeatures": additional_features(availability),
        "runtimes": {name: a.to_dict() for name, a in availability.items()},
        "tools": versions.tools(),
        "containerDiskSize": disk_size(paths),
    }

"""What the host advertises to Engine about containers.

vdsm's Host.getCapabilities carries a list of strings, ``additionalFeatures``
(lib/vdsm/host/caps.py ``get``: gluster adds its features the same way).  We
add ``containers`` when at least one runtime can run here, plus
``containers_<runtime>`` for each that can.  With none, we add nothing: the
host looks exactly as it would without the plugin.  A runtime whose probe
has not ended yet (``runtimes.probecache``: they run in the background,
never holding vdsm's start up) has no feature of its own until it ends;
while one is probing ``containers`` is listed.

``report`` (the ``caps`` command) says more, for the admin: each runtime's
version and why one is unusable, conmon's and umoci's versions
(``runtimes.versions``), and the writable layer's default size as it
applies on this host (``bundle.quota.default_mib``: the configured default,
or the storage filesystem's size where that is smaller).
"""

from __future__ import annotations

from vdsm_container import constants
from vdsm_container.bundle import quota
from vdsm_container.runtimes import probecache
from vdsm_container.runtimes import versions


def additional_features(availability):
    """``availability`` is ``runtimes.probe()``'s result (or
    ``probe_cached``'s: a runtime still ``probing`` gets no feature of its
    own yet, but keeps ``containers``, the plugin's, listed)."""
    usable = sorted(name for name, a in availability.items() if a.available)
    if not usable and not any(a.probing for a in availability.values()):
        return []
    return [constants.FEATURE] + [constants.FEATURE_RUNTIME_PREFIX + name
                                  for name in usable]


def capable(verdicts):
    """Whether the host can run containers, from ``probecache.cached``'s
    ``{name: Availability or None}``: True if a runtime is usable, False
    if every one is known unusable, None while that is not known yet."""
    known = [a for a in verdicts.values() if a is not None]
    if any(a.available for a in known):
        return True
    if len(known) < len(verdicts) or any(a.probing for a in known):
        return None
    return False


def probing(availability):
    """The runtimes whose probe has not ended, sorted."""
    return sorted(n for n, a in availability.items() if a.probing)


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
    its version), the helper tools' versions and the layer's default.
    Probes every runtime afresh, and keeps the verdicts for vdsm
    (``probecache.refresh``)."""
    availability = probecache.refresh(paths)
    return {
        "additionalFeatures": additional_features(availability),
        "runtimes": {name: a.to_dict() for name, a in availability.items()},
        "tools": versions.tools(),
        "containerDiskSize": disk_size(paths),
    }

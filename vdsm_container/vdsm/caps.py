"""What the host advertises to Engine about containers.

vdsm's Host.getCapabilities carries a list of strings, ``additionalFeatures``
(lib/vdsm/host/caps.py ``get``: gluster adds its features the same way).  We
add ``containers`` when at least one runtime can run here, plus
``containers_<runtime>`` for each that can.  With none, we add nothing: the
host looks exactly as it would without the plugin.
"""

from __future__ import annotations

from vdsm_container import constants
from vdsm_container import runtimes


def additional_features(availability):
    """``availability`` is ``runtimes.probe()``'s result."""
    usable = sorted(name for name, a in availability.items() if a.available)
    if not usable:
        return []
    return [constants.FEATURE] + [constants.FEATURE_RUNTIME_PREFIX + name
                                  for name in usable]


def report(paths):
    """``additionalFeatures`` and each runtime's availability, with why."""
    availability = runtimes.probe(paths)
    return {
        "additionalFeatures": additional_features(availability),
        "runtimes": {name: a.to_dict() for name, a in availability.items()},
    }

"""How a part a container left is named after its vmId, and which vmIds
have a record.

Every part of a container is found again by its name alone (the package's
doc lists them), so the rules for reading a vmId out of a name are kept in
one place: the scanners use them to list parts, the classifier to match
parts with records.
"""

from __future__ import annotations

import json
import os
import re
import uuid

from vdsm_container.host import network

# The kinds, in the order they are removed: processes before their cgroups
# and namespaces, mounts before the directories holding them.
KINDS = ("container", "pod", "process", "cgroup", "netns", "mount", "loop",
         "storage")

SCOPE = re.compile(r"^vdsm-container-(?:conmon-)?([0-9a-f-]{36})\.scope$")
UUID_IN_PATH = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def is_uuid(name):
    """A vmId as vdsm writes it (lower case, dashed): names that merely
    look like one (upper case, braces) are not ours."""
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def listdir(path):
    """Sorted names in ``path``; none when it does not exist (a tree that
    never ran a container has no runtime root, no netns directory...)."""
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def storage_vm_id(paths, path):
    """The vmId of a path below ``<storage_dir>/vms/<vmId>/``, or None."""
    prefix = os.path.join(os.path.realpath(paths.storage_dir), "vms") + "/"
    if not path.startswith(prefix):
        return None
    vm_id = path[len(prefix):].split("/", 1)[0]
    return vm_id if is_uuid(vm_id) else None


def known_vm_ids(paths):
    """vmIds with a run directory: recorded, or claimed by a create."""
    return set(listdir(os.path.join(paths.run_dir, "vms")))


def known_netns(paths, vm_ids):
    """The network namespaces the records of ``vm_ids`` name: a namespace
    carries only the start of its vmId, so it is ours by its record."""
    names = set()
    for vm_id in vm_ids:
        try:
            with open(os.path.join(paths.vm_run_dir(vm_id),
                                   network.STATE_FILE)) as f:
                names.add(json.load(f)["netns"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return names

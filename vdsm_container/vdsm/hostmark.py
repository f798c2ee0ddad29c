"""The vdsm hook that tells Engine this host can run containers.

Engine's REST API shows neither vdsm's capabilities nor a way to schedule
on ``additionalFeatures``, but it lists each host's vdsm hooks
(``/hosts/{id}/hooks``, from the scripts under vdsm's hooks directory).  So
a host that can run containers carries the do-nothing hook
``before_vm_start/50_vdsm_container``, and a host that can't does not;
contrib/ovirt-container reads it to keep the ``container-capable``
affinity label on exactly those hosts.

``vdsm-container mark-host`` keeps the mark true to the host (the systemd
drop-in runs it, as root, before vdsmd starts).
"""

from __future__ import annotations

import os

HOOK_EVENT = "before_vm_start"
HOOK_NAME = "50_vdsm_container"
HOOKS_DIR = "/usr/libexec/vdsm/hooks"

SCRIPT = """#!/bin/sh
# Installed by vdsm-container: this host can run containers.  The hook does
# nothing; Engine lists it under the host's hooks, and ovirt-container
# labels such hosts 'container-capable' for VM-to-host affinity.
exit 0
"""


def hook_path(hooks_dir=HOOKS_DIR):
    return os.path.join(hooks_dir, HOOK_EVENT, HOOK_NAME)


def mark(capable, hooks_dir=HOOKS_DIR):
    """Install the hook if ``capable``, remove it otherwise.

    Returns True when the hook is installed afterwards.
    """
    path = hook_path(hooks_dir)
    if not capable:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(SCRIPT)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return True

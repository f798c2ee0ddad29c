"""The marker in vdsm's hooks directory that tells Engine this host can run
containers.

Engine's REST API shows neither vdsm's capabilities nor a way to schedule
on ``additionalFeatures``, but it lists each host's vdsm hooks
(``/hosts/{id}/hooks``), which vdsm reports from ``hooks.installed()``
(lib/vdsm/common/hooks.py): every directory under the hooks directory,
each with the executable files in it (``_scriptsPerDir``).  vdsm runs only
the directories its hook functions name (``before_vm_start``,
``after_vm_destroy``, ...: the literal passed to ``_runHooksDir``).  So the
marker lives in a directory of its own, ``container_capable``: vdsm lists
it, Engine shows it, and it never runs.  (A ``before_vm_start`` hook would
run before every VM the host starts.)  contrib/ovirt-container reads it to
keep the ``container-capable`` affinity label on exactly those hosts.

``vdsm-container mark-host`` keeps the mark true to the host (the systemd
drop-in runs it, as root, before vdsmd starts), and removes the marker
older versions put under ``before_vm_start``.
"""

from __future__ import annotations

import os

from vdsm_container.linux import files

HOOK_EVENT = "container_capable"
HOOK_NAME = "50_vdsm_container"
HOOKS_DIR = "/usr/libexec/vdsm/hooks"
# Where vdsm-container 0.1.0 put it: run before every VM start.
LEGACY_EVENT = "before_vm_start"

SCRIPT = """#!/bin/sh
# Installed by vdsm-container: this host can run containers.  vdsm lists
# this directory with the host's hooks (hooks.installed()) but runs no hook
# from it; ovirt-container labels such hosts 'container-capable'.
exit 0
"""


def hook_path(hooks_dir=HOOKS_DIR):
    return os.path.join(hooks_dir, HOOK_EVENT, HOOK_NAME)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_marked(hooks_dir=HOOKS_DIR):
    return os.path.exists(hook_path(hooks_dir))


def mark(capable, hooks_dir=HOOKS_DIR):
    """Install the marker if ``capable``, remove it otherwise.

    Returns True when the marker is installed afterwards.
    """
    path = hook_path(hooks_dir)
    _unlink(os.path.join(hooks_dir, LEGACY_EVENT, HOOK_NAME))
    if not capable:
        _unlink(path)
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_atomically(path, SCRIPT, mode=0o755)
    return True

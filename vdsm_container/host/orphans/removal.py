"""Removing orphans: one remover per kind, and ``reap``, which runs them
for each vmId while it holds that vmId's claim.

The claim (the vmId's run directory, ``records.StateStore.claim``) keeps a
create of the same vmId out while its parts go; a vmId that got a record
between ``find`` and ``reap`` is left alone.  Each remover checks, before it
acts, that the part still is what was found (a pid still names the vmId, a
loop device still backs the same file): both may have been reused
meanwhile.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import time

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.linux import pidinfo
from vdsm_container import runtimes
from vdsm_container.linux import loop
from vdsm_container.linux import mounts
from vdsm_container.host import network
from vdsm_container.host.orphans.scan import runtime_args
from vdsm_container.runtimes import rktgc
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.host.orphans")


def _reap_container(paths, part):
    args = runtime_args(paths, part["runtime"])
    subprocess.run(args + ["delete", "--force", part["vmId"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    shutil.rmtree(part["what"], ignore_errors=True)


def _reap_pod(paths, part):
    driver = runtimes.driver("rkt", paths)
    rktgc.remove_pod(driver._global(), paths, part["pod"], part["vmId"])


def _reap_process(paths, part):
    pid = part["pid"]
    # A console relay ends on SIGTERM and removes its socket from the
    # console directory, where a SIGKILL would leave it.
    signum = signal.SIGTERM if "consolerelay" in part.get("what", "") \
        else signal.SIGKILL
    if not files.kill_if_ours(pid, part["vmId"], signum):
        return      # gone (the pid maybe reused)
    # kill(2) returns before the process has ended; a zombie holds
    # nothing (its parent reaps it).
    deadline = time.monotonic() + 10
    while pidinfo.running(pid):
        if time.monotonic() > deadline:
            raise OSError(errno.ETIMEDOUT, "process %d did not end after "
                          "signal %d" % (pid, signum))
        time.sleep(0.01)


def _reap_cgroup(paths, part):
    """Kill what is in the scope and remove its cgroup.  Where systemd owns
    it (``unit``), systemd removes it: once the scope is empty, ``stop``
    returns at once with the cgroup gone (SIGKILL first: a stop would send
    SIGTERM and wait its timeout for a container init that ignores it),
    and ``reset-failed`` unloads a scope systemd kept as failed; both are
    no-ops for a unit systemd already dropped.  A cgroup removed from under
    systemd instead can leave its stop job waiting for an empty-cgroup
    event that never comes.  Mirrors the driver's own cleanup
    (``runtimes.oci``: ``_stop_conmon_scope``, ``reset-failed``)."""
    if part.get("unit"):
        cgroups.kill_members(part["dirs"])
        for verb in ("stop", "reset-failed"):
            subprocess.run(["systemctl", verb, part["unit"]],
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
    cgroups.empty_and_remove(part["dirs"])


def _reap_netns(paths, part):
    from pyroute2 import netns as pyroute2_netns
    if os.path.exists(os.path.join(network.NETNS_DIR, part["what"])):
        pyroute2_netns.remove(part["what"])


def _reap_mount(paths, part):
    mounts.umount(part["what"])


def _reap_loop(paths, part):
    # Unmounting freed it (autoclear), and it may back another file now.
    backing = loop.backing_file(part["what"])
    if backing is None:
        return
    if backing.endswith(" (deleted)"):
        backing = backing[:-len(" (deleted)")]
    if backing != part["file"]:
        return
    subprocess.run(["losetup", "--detach", part["what"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _reap_storage(paths, part):
    left = mounts.mounted_under(part["what"])
    if left:
        # Never remove files through a mount: it could be a volume.
        raise OSError(errno.EBUSY, "still mounted, not removed: %s" % left)
    shutil.rmtree(part["what"], ignore_errors=True)


_REAPERS = {"container": _reap_container, "pod": _reap_pod,
            "process": _reap_process,
            "cgroup": _reap_cgroup, "netns": _reap_netns,
            "mount": _reap_mount, "loop": _reap_loop,
            "storage": _reap_storage}


def reap(paths, store, parts, claim=True):
    """Remove ``parts`` (from ``find``), each vmId's while holding a claim
    on it (``claim=False``: the caller holds it).  Returns ``(removed,
    failed)``: parts, and ``(part, reason)``.  A vmId that got a record
    meanwhile (a create) is left alone."""
    removed, failed = [], []
    groups = {}
    for part in parts:
        groups.setdefault(part["vmId"], []).append(part)
    for vm_id, group in groups.items():
        claimed = False
        if vm_id is not None and claim:
            try:
                store.claim(vm_id)
                claimed = True
            except errors.VMExists:
                log.info("Orphans of %s: it has a record now, left alone",
                         vm_id)
                continue
        try:
            for part in group:
                try:
                    _REAPERS[part["kind"]](paths, part)
                except Exception as e:
                    log.error("Cannot remove %s %s: %s", part["kind"],
                              part["what"], e)
                    failed.append((part, str(e)))
                else:
                    log.info("Removed orphan %s %s", part["kind"],
                             part["what"])
                    removed.append(part)
        finally:
            if claimed:
                store.release(vm_id)
    return removed, failed

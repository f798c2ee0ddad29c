"""A container's serial console on the host: its relay, started and ended.

The OCI driver gives a console VM a terminal (``process.terminal``, conmon
``--terminal``); this module puts ``consolerelay`` between conmon's attach
socket and the socket Engine named (``spec.console``), as vdsm has libvirt
bind a VM's console there and supervdsm's ``prepareVmChannel`` give it to
group ovirt-vmconsole with group write (lib/vdsm/virt/vmdevices/core.py
``prepare_console``); ``stop`` removes it, as ``cleanup_console`` does.

The socket's path is in the bundle's config.json (an annotation written
with the terminal), so every step reads one file the root side wrote.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import signal as signals
import subprocess
import sys

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.runtimes import consolerelay
from vdsm_container.spec import console as spec_console

log = logging.getLogger("vdsm_container.runtimes.oci")

ANNOTATION = "org.ovirt.vdsm-container.console"
START_TIMEOUT = 30
# Group read and write for ovirt-vmconsole-host-shell (it checks R_OK and
# W_OK); nothing for others.  vdsm adds g+w to what qemu bound.
MODE = 0o660


def socket_path(bundle):
    """The console socket the container has, or None."""
    try:
        with open(bundle.config_path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not (config.get("process") or {}).get("terminal"):
        return None
    return (config.get("annotations") or {}).get(ANNOTATION)


def annotate(config, spec):
    """Record ``spec``'s console in the OCI config the driver writes."""
    if spec.console:
        config["annotations"][ANNOTATION] = spec.console


def pid_file(bundle):
    return os.path.join(bundle.dir, "console.pid")


def _gid():
    try:
        return grp.getgrnam(spec_console.CONSOLE_GROUP).gr_gid
    except KeyError:
        return -1


def alive(bundle):
    pid = files.read_pid(pid_file(bundle))
    return bool(pid) and files.kill_if_ours(pid, bundle.dir, 0)


def start(bundle, conmon_pid):
    """Start the relay of ``bundle``'s console (if it has one) for the
    container conmon ``conmon_pid`` holds; CannotCreateVM if it can't."""
    path = socket_path(bundle)
    if path is None:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        # vdsm makes it at vdsmd's start (vdsmd_init_common.sh); a host
        # without vdsm gets it here.
        os.makedirs(directory, mode=0o755, exist_ok=True)
    gid = _gid()
    if gid < 0:
        log.warning("Container %s: no group %s on this host: console %s "
                    "is root's only (install ovirt-vmconsole-host)",
                    bundle.vm_id, spec_console.CONSOLE_GROUP, path)
    argv = [sys.executable, "-I", "-S", consolerelay.__file__,
            "--socket", path, "--bundle", bundle.dir,
            "--vm-id", bundle.vm_id, "--conmon-pid", str(conmon_pid),
            "--pid-file", pid_file(bundle), "--gid", str(gid),
            "--mode", "%o" % (MODE if gid >= 0 else 0o600)]
    try:
        relay = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 start_new_session=True)
    except OSError as e:
        raise errors.CannotCreateVM("cannot run the console relay: %s" % e,
                                    vmId=bundle.vm_id) from e
    try:
        line = relay.stdout.readline().decode(errors="replace").strip()
        _, err = relay.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        relay.kill()
        relay.communicate()
        line, err = "", b"no answer in %d s" % START_TIMEOUT
    if not line.startswith("ready "):
        raise errors.CannotCreateVM(
            "console %s: %s" % (path, line.replace("error: ", "", 1) or
                                err.decode(errors="replace").strip()),
            vmId=bundle.vm_id)
    log.info("Container %s: console at %s (relay pid %s)", bundle.vm_id,
             path, line.split()[1])


def stop(bundle):
    """End the relay and remove the socket; idempotent."""
    pid = files.read_pid(pid_file(bundle))
    files.kill_if_ours(pid, bundle.dir, signals.SIGKILL)
    path = socket_path(bundle)
    if path and os.path.dirname(path) == spec_console.console_dir():
        try:
            if os.path.exists(path) and \
                    os.stat(path).st_mode & 0o170000 == 0o140000:
                os.unlink(path)
        except OSError as e:
            log.warning("Container %s: cannot remove console %s: %s",
                        bundle.vm_id, path, e)
    try:
        os.unlink(pid_file(bundle))
    except FileNotFoundError:
        pass


def ensure(bundle):
    """Rebuild the relay of a console container whose relay died while
    conmon holds it (recovery calls it): True if it started one."""
    if socket_path(bundle) is None or alive(bundle):
        return False
    conmon = files.read_pid(bundle.conmon_pid_file)
    if not files.kill_if_ours(conmon, bundle.dir, 0):
        return False
    stop(bundle)
    start(bundle, conmon)
    log.warning("Container %s: its console relay was gone: started again",
                bundle.vm_id)
    return True

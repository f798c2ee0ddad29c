"""The VM's serial console: where Engine wants its socket.

Engine, for a VM with "VirtIO serial console" enabled, writes
``<console type='unix'><source path='/var/run/ovirt-vmconsole-console/
<vmId>.sock' mode='bind'/>`` (and, for a serial target, a ``<serial
type='unix'>`` with the same path): ovirt-engine's
``LibvirtVmXmlBuilder.writeConsole``/``writeSerialConsole``.  Without it the
console is ``type='pty'``, which a container VM ignores as it runs today.

Only a socket directly in the console directory is accepted, the check
supervdsm's ``prepareVmChannel`` (lib/vdsm/supervdsm_api/virt.py) makes
before it touches a socket: the root side binds, chowns and later removes
this path, so it must never name anything else on the host.
"""

from __future__ import annotations

import os

from vdsm_container import errors

# vdsm's constants.P_OVIRT_VMCONSOLES; VDSM_CONTAINER_CONSOLE_DIR moves it
# (tests), in every process that parses the XML (vdsmd and supervdsmd).
CONSOLE_DIR = "/var/run/ovirt-vmconsole-console"
# vdsm's constants.OVIRT_VMCONSOLE_GROUP: ovirt-vmconsole-host-sshd's user
# is in it, and must read and write the socket.
CONSOLE_GROUP = "ovirt-vmconsole"
FIELD = "console"


def console_dir(environ=os.environ):
    return os.path.normpath(environ.get("VDSM_CONTAINER_CONSOLE_DIR",
                                        CONSOLE_DIR))


def _dir_forms(directory):
    """The console directory as Engine may spell it: /var/run is a symlink
    to /run on every current host."""
    forms = {directory}
    if directory.startswith("/var/run/"):
        forms.add(directory[len("/var"):])
    elif directory.startswith("/run/"):
        forms.add("/var" + directory)
    return forms


def socket_path(devices):
    """The console socket's path from ``<devices>`` (an Element or None),
    or None when the VM has no unix console; InvalidParameter when the
    path is outside the console directory or the devices disagree."""
    if devices is None:
        return None
    found = set()
    for tag in ("console", "serial"):
        for el in devices.findall(tag):
            if el.get("type") != "unix":
                continue
            source = el.find("source")
            path = source.get("path") if source is not None else None
            if not path:
                raise errors.invalid(FIELD, None, "<%s type='unix'> has no "
                                     "source path" % tag)
            if (source.get("mode") or "bind") != "bind":
                raise errors.invalid(FIELD, path, "mode must be 'bind' "
                                     "(the host listens)")
            found.add(path)
    if not found:
        return None
    if len(found) > 1:
        raise errors.invalid(FIELD, sorted(found), "one console socket per "
                             "VM")
    path = found.pop()
    directory = console_dir()
    name = os.path.basename(path)
    if os.path.normpath(path) != path or \
            os.path.dirname(path) not in _dir_forms(directory) or \
            not name or name.startswith("."):
        raise errors.invalid(FIELD, path, "not a socket in %s" % directory)
    # Always our spelling of the directory: the root side compares it.
    return os.path.join(directory, name)

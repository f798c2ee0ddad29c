"""Engine's serial console of a container VM through the live vdsmd (issue
#25): Engine-shaped domain XML with the console device
(LibvirtVmXmlBuilder.writeConsole/writeSerialConsole), the socket at
/var/run/ovirt-vmconsole-console/<vmId>.sock, reached by the real
socketproxy.py of ovirt-vmconsole under a pty as user ovirt-vmconsole,
across vdsmd and supervdsmd restarts; nothing left after destroy or crash.
"""

import contextlib
import functools
import os
import shutil
import signal
import stat
import uuid

import pytest

from vdsm import client

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.runtimes import console

from .. import vmconsole
from .conftest import RUN_DIR, WAIT, connect, container_xml, services, \
    stats, wait_stats
from .test_live import SYSTEMD, started_vdsmd

CONSOLE_DIR = "/var/run/ovirt-vmconsole-console"


@pytest.fixture(scope="module")
def proxy_src():
    top, src = vmconsole.source_tree()
    yield src
    shutil.rmtree(top)


def console_xml(vm_id, image, custom=None):
    """Engine's XML for a VM whose "VirtIO serial console" is on
    (LibvirtVmXmlBuilder's console and serial devices)."""
    xml = container_xml(vm_id, "live-console-%s" % vm_id[:8], image, ["sh"],
                        custom, serial_console=True)
    return xml, "%s/%s.sock" % (CONSOLE_DIR, vm_id)


def relay_pid(vm_id):
    bundle = os.path.join(RUN_DIR, "vms", vm_id, "bundle")
    return files.read_pid(os.path.join(bundle, "console.pid"))


wait_until = functools.partial(vmconsole.wait_until, timeout=WAIT,
                               step=0.1)


def type_and_read(src, path, command, wanted):
    """socketproxy.py as user ovirt-vmconsole: Enter until a prompt, then
    ``command``; what the terminal showed."""
    proxy = vmconsole.Proxy(src, path)
    try:
        for _ in range(int(WAIT)):
            proxy.type("\r")
            if b"# " in proxy.read_until(b"# ", timeout=1):
                break
        proxy.type(command + "\r")
        return proxy.read_until(wanted.encode(), timeout=WAIT)
    finally:
        proxy.close()


def create(made, cli):
    vm_id = str(uuid.uuid4())
    xml, path = console_xml(vm_id, made.image)
    made.vm_ids.append(("container", vm_id))
    cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    made.events.wait_status(vm_id, "Up")
    return vm_id, path


def test_console_through_vdsm_survives_restarts(made, cli, events,
                                                proxy_src):
    _, gid = vmconsole.ensure_user()
    vm_id, path = create(made, cli)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_gid == gid
    assert stat.S_IMODE(st.st_mode) == console.MODE
    relay = relay_pid(vm_id)
    assert b"42xy" in type_and_read(proxy_src, path, "echo $((6*7))xy",
                                    "42xy")

    services("restart", "vdsmd")
    with started_vdsmd(events) as cli2:
        wait_stats(cli2, vm_id, "Up")
    assert relay_pid(vm_id) == relay and not vmconsole.relay_gone(relay)
    assert b"kept1" in type_and_read(proxy_src, path, "echo kept$((0+1))",
                                     "kept1")

    services("restart", "supervdsmd")
    with (started_vdsmd(events) if SYSTEMD else
          contextlib.nullcontext(connect())) as cli3:
        wait_stats(cli3, vm_id, "Up")
        # The relay is out of supervdsmd's unit: the restart left it.
        assert relay_pid(vm_id) == relay and not vmconsole.relay_gone(relay)
        assert b"kept2" in type_and_read(proxy_src, path,
                                         "echo kept$((1+1))", "kept2")
        made.cli = cli3
        cli3.VM.destroy(vmID=vm_id)
    assert not os.path.exists(path)
    assert wait_until(lambda: vmconsole.relay_gone(relay))


def test_console_gone_with_a_crash(made, cli, events):
    vm_id, path = create(made, cli)
    relay = relay_pid(vm_id)
    os.kill(int(stats(cli, vm_id)["pid"]), signal.SIGKILL)
    events.wait_status(vm_id, "Down")
    assert wait_until(lambda: not os.path.exists(path))
    assert wait_until(lambda: vmconsole.relay_gone(relay))
    cli.VM.destroy(vmID=vm_id)
    assert not os.path.exists(os.path.join(RUN_DIR, "vms", vm_id))


def test_rkt_console_vm_is_refused_by_vm_create(made, cli):
    """rkt has no console: VM.create answers UnsupportedOperation with the
    reason, and nothing of the VM is on the host."""
    vm_id = str(uuid.uuid4())
    xml, path = console_xml(vm_id, made.image,
                            {"containerType": "rkt",
                             "containerInsecure": "true"})
    made.vm_ids.append(("container", vm_id))
    with pytest.raises(client.ServerError) as e:
        cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
    assert e.value.code == errors.UnsupportedOperation.code
    assert "rkt runtime does not support console" in str(e.value)
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.join(RUN_DIR, "vms", vm_id))

"""Engine's serial console on a container VM (issue #25): the socket
ovirt-vmconsole-host-shell connects to, reached with the real socketproxy.py
of ovirt-vmconsole under a pty, as user ovirt-vmconsole.

Each running test is leak-checked (``leakcheck``) and checks that the
console socket and its relay are gone after destroy or a crash.
"""

import functools
import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.container import Container, create
from vdsm_container.host.admission import check_supported
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes import console
from vdsm_container.spec import domxml
from . import vmconsole
from .conftest import bundle_of

SHELL = ["sh"]


@pytest.fixture(scope="module")
def proxy_src():
    top, src = vmconsole.source_tree()
    yield src
    shutil.rmtree(top)


@pytest.fixture
def console_dir(monkeypatch):
    """A console directory of the test's own, as vdsm makes
    /var/run/ovirt-vmconsole-console (vdsm:qemu 0775: here root 0755);
    it must be empty again at the end."""
    d = tempfile.mkdtemp(prefix="vdsmc-consoles-", dir="/tmp")
    os.chmod(d, 0o755)
    monkeypatch.setenv("VDSM_CONTAINER_CONSOLE_DIR", d)
    yield d
    left = os.listdir(d)
    shutil.rmtree(d)
    assert left == [], "left in the console directory: %s" % left


def xml_for(image, runtime, path, command=SHELL, vm_id=None):
    vm_id = vm_id or str(uuid.uuid4())
    return domxml.build(vm_id, "console-vm", runtime, image, memory_mib=64,
                        command=command, console=path(vm_id)
                        if callable(path) else path)


@pytest.fixture
def console_vm(paths, busybox_oci, runtime, console_dir, leakcheck):
    made = []

    def start(command=SHELL):
        ctr = create(xml_for(busybox_oci, runtime, lambda v: os.path.join(
            console_dir, v + ".sock"), command), paths=paths)
        made.append(ctr)
        return ctr, ctr.spec.console
    yield start
    for ctr in made:
        try:
            Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)
        except errors.NoSuchVM:
            pass


def relay_pid(ctr):
    return files.read_pid(console.pid_file(bundle_of(ctr)))


wait_until = functools.partial(vmconsole.wait_until, timeout=30)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(30)
    return s


def prompt(sock):
    """Press Enter until the shell shows its prompt, as an admin does on a
    serial line (a client sees no output from before it connected; what
    is typed while busybox's sh starts may go to its terminal query)."""
    for _ in range(60):
        sock.sendall(b"\r")
        if b"# " in read_until(sock, b"# ", timeout=0.5):
            return
    raise AssertionError("no prompt")


def read_until(sock, wanted, timeout=30):
    seen = b""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, BlockingIOError):
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_socketproxy_as_ovirt_vmconsole_types_into_the_shell(
        console_vm, proxy_src, paths):
    uid, gid = vmconsole.ensure_user()
    ctr, path = console_vm()
    st = os.stat(path)
    # What ovirt-vmconsole-host-shell needs: a stream socket user
    # ovirt-vmconsole may read and write through its group.
    assert stat.S_ISSOCK(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, gid)
    assert stat.S_IMODE(st.st_mode) == console.MODE
    relay = relay_pid(ctr)
    proxy = vmconsole.Proxy(proxy_src, path)
    try:
        for _ in range(60):
            proxy.type("\r")
            if b"# " in proxy.read_until(b"# ", timeout=0.5):
                break
        proxy.type("echo $((6*7))xy\r")
        assert b"42xy" in proxy.read_until(b"42xy")
    finally:
        proxy.close()
    # The output reached the container's log too.
    with open(bundle_of(ctr).log_path, "rb") as f:
        assert b"42xy" in f.read()
    ctr.destroy(gracefulAttempts=0)
    assert not os.path.exists(path)
    assert wait_until(lambda: vmconsole.relay_gone(relay))


def test_one_client_at_a_time_and_reconnect_continues(console_vm):
    ctr, path = console_vm()
    first = connect(path)
    prompt(first)
    first.sendall(b"X=abc\r")
    # The first one holds the line: a second gets a line saying so, then
    # end of file.
    second = connect(path)
    said = read_until(second, b"\n\xff")     # to its end of file
    second.close()
    assert b"is in use by another client" in said
    assert said.endswith(b"\r\n")
    first.sendall(b"echo $((5*5))q\r")
    assert b"25q" in read_until(first, b"25q")
    first.close()
    # The next client gets the same shell, where the first one left it.
    again = connect(path)
    again.sendall(b"echo $X$X\r")
    assert b"abcabc" in read_until(again, b"abcabc")
    again.close()


def test_output_never_waits_for_a_reader(console_vm, paths):
    """A client that reads nothing does not hold the container: its
    output goes on into the log (the relay drops what the client can't
    take, as a serial line overruns)."""
    cmd = ["sh", "-c", "sleep 1; i=0; while [ $i -lt 20000 ]; do "
           "echo line-$i-of-output-padding-padding-padding; i=$((i+1)); "
           "done; echo all-written; exec sleep 1000"]
    ctr, path = console_vm(cmd)
    idle = connect(path)        # connected, never reads
    log_path = bundle_of(ctr).log_path

    def written():
        with open(log_path, "rb") as f:
            return b"all-written" in f.read()
    try:
        assert wait_until(written, timeout=120)
    finally:
        idle.close()


def test_crash_removes_socket_and_relay(console_vm, paths):
    ctr, path = console_vm()
    relay = relay_pid(ctr)
    os.kill(bundle_of(ctr).pid(), signal.SIGKILL)
    assert wait_until(lambda: not os.path.exists(path))
    assert wait_until(lambda: vmconsole.relay_gone(relay))
    ctr.destroy(gracefulAttempts=0)


def test_recovery_rebuilds_a_dead_relay(console_vm, paths):
    ctr, path = console_vm()
    first = connect(path)
    prompt(first)
    first.sendall(b"Y=kept; echo set$((1+1))\r")
    assert b"set2" in read_until(first, b"set2")
    first.close()
    relay = relay_pid(ctr)
    os.kill(relay, signal.SIGKILL)
    assert wait_until(lambda: vmconsole.relay_gone(relay))
    HostBackend(paths).load_all()       # what vdsm's recovery calls
    assert relay_pid(ctr) not in (None, relay)
    again = connect(path)
    again.sendall(b"echo $Y$Y\r")
    assert b"keptkept" in read_until(again, b"keptkept")
    again.close()


def test_gc_of_an_orphan_removes_its_relay_and_socket(console_vm, paths):
    """A console container whose record is gone (its run directory
    removed): ``gc --force`` ends the relay, which removes its socket."""
    ctr, path = console_vm()
    relay = relay_pid(ctr)
    shutil.rmtree(paths.vm_run_dir(ctr.id))
    backend = HostBackend(paths)
    found = backend.gc(dry_run=True)["found"]
    assert [p for p in found if p["kind"] == "process" and
            p["pid"] == relay]
    result = backend.gc(dry_run=False)
    assert result["failed"] == []
    assert wait_until(lambda: vmconsole.relay_gone(relay))
    assert not os.path.exists(path)


def test_relay_lives_in_conmons_cgroup(console_vm):
    """Out of the caller's cgroup (supervdsmd's unit, whose restart kills
    what is in it), in conmon's scope, which outlives it."""
    ctr, _ = console_vm()
    conmon = files.read_pid(bundle_of(ctr).conmon_pid_file)
    with open("/proc/%d/cgroup" % relay_pid(ctr)) as a, \
            open("/proc/%d/cgroup" % conmon) as b:
        assert a.read() == b.read()


def test_a_file_at_the_path_fails_the_start_and_stays(
        paths, busybox_oci, runtime, console_dir, leakcheck):
    path = os.path.join(console_dir, "taken.sock")
    with open(path, "w") as f:
        f.write("not ours")
    try:
        with pytest.raises(errors.CannotCreateVM, match="not a socket"):
            create(xml_for(busybox_oci, runtime, path), paths=paths)
        with open(path) as f:
            assert f.read() == "not ours"
    finally:
        os.unlink(path)


def test_without_console_no_terminal(paths, busybox_oci, runtime, leakcheck):
    ctr = create(domxml.build(str(uuid.uuid4()), "plain", runtime,
                              busybox_oci, memory_mib=64,
                              command=["sleep", "1000"]), paths=paths)
    try:
        assert ctr.spec.console is None
        assert console.socket_path(bundle_of(ctr)) is None
        assert relay_pid(ctr) is None
    finally:
        ctr.destroy(gracefulAttempts=0)


# Parsing and refusals: no container runs.

def test_path_outside_the_console_dir_is_refused(monkeypatch):
    monkeypatch.delenv("VDSM_CONTAINER_CONSOLE_DIR", raising=False)
    vm = str(uuid.uuid4())
    ok = "/var/run/ovirt-vmconsole-console/%s.sock" % vm
    spec = domxml.parse(xml_for("/img", "runc", ok, vm_id=vm))
    assert spec.console == ok
    for bad in ("/etc/passwd", "/var/run/ovirt-vmconsole-console/../x.sock",
                "/var/run/ovirt-vmconsole-console/sub/x.sock",
                "/var/run/ovirt-vmconsole-console/.hidden", "relative.sock"):
        with pytest.raises(errors.InvalidParameter, match="console"):
            domxml.parse(xml_for("/img", "runc", bad))


def test_rkt_refuses_a_console_vm_before_it_starts():
    path = "/var/run/ovirt-vmconsole-console/x.sock"
    spec = domxml.parse(xml_for("/img", "rkt", path))
    with pytest.raises(errors.UnsupportedOperation,
                       match="rkt runtime does not support console"):
        check_supported(spec)


def test_pty_console_is_no_console():
    xml = domxml.build(str(uuid.uuid4()), "vm", "runc", "/img")
    xml = xml.replace("</devices>", "<console type='pty'><target "
                      "type='serial' port='0'/></console></devices>")
    assert domxml.parse(xml).console is None



def test_cli_console_is_interactive_and_detaches(console_vm, paths):
    """``vdsm-container console VMID`` under a pty: a command typed runs,
    ^] detaches and leaves the container and its console as they were."""
    ctr, path = console_vm()
    relay = relay_pid(ctr)
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    master, slave = pty.openpty()
    cli = subprocess.Popen([sys.executable, "-m", "vdsm_container",
                            "console", ctr.id], stdin=slave, stdout=slave,
                           stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    term = Terminal(master)
    try:
        assert b"Escape character is ^]" in term.read_until(b"^]")
        for _ in range(60):
            os.write(master, b"\r")
            if b"# " in term.read_until(b"# ", timeout=0.5):
                break
        os.write(master, b"echo $((3*4))zz\r")
        assert b"12zz" in term.read_until(b"12zz")
        os.write(master, b"\x1d")
        assert cli.wait(timeout=30) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        os.close(master)
    assert ctr.refresh() == "Up"
    assert relay_pid(ctr) == relay and not vmconsole.relay_gone(relay)
    again = connect(path)       # the line is free again
    prompt(again)
    again.close()


def test_cli_console_of_a_vm_without_one(paths, busybox_oci, runtime,
                                         leakcheck):
    ctr = create(domxml.build(str(uuid.uuid4()), "plain", runtime,
                              busybox_oci, memory_mib=64,
                              command=["sleep", "1000"]), paths=paths)
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    try:
        out = subprocess.run([sys.executable, "-m", "vdsm_container",
                              "console", ctr.id], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
        assert out.returncode == 1
        assert out.stderr.startswith("vdsm-container: error %d: "
                                     % errors.UnsupportedOperation.code)
        assert "has no serial console" in out.stderr
    finally:
        ctr.destroy(gracefulAttempts=0)


class Terminal:

    def __init__(self, fd):
        self.fd = fd
        self.seen = b""

    def read_until(self, wanted, timeout=30):
        deadline = time.monotonic() + timeout
        while wanted not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
        return self.seen

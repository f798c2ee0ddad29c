"""ovirt-vmconsole's host side, as the tests use it: the real socketproxy.py
from the snapshot in ../shared/vendor/ovirt-vmconsole (extracted, run in
place from its own tree, never copied into this one), under a pty, as
ovirt-vmconsole-host-shell runs it for user ovirt-vmconsole; and the user
and group ovirt-vmconsole-host makes (ovirt-vmconsole.spec), made here
when the host lacks them (tests/live/setup-host makes them too)."""

import grp
import os
import pty
import pwd
import select
import subprocess
import sys
import tarfile
import tempfile
import termios
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SNAPSHOT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared",
                        "vendor", "ovirt-vmconsole",
                        "ovirt-vmconsole-b11cf0cb7.tar.gz")
MODULE = "ovirt_vmconsole.ovirt_vmconsole_host_shell.socketproxy"
USER = GROUP = "ovirt-vmconsole"
# ovirt-vmconsole-host-shell runs on the system Python (a venv's may be
# out of reach of an unprivileged user).
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable


def ensure_user():
    """The group and user ovirt-vmconsole (system ones, no login), as its
    package makes them; (uid, gid)."""
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-g",
                        GROUP, "-s", "/sbin/nologin", USER], check=True)
    return pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid


def source_tree():
    """The snapshot's src/ extracted where user ovirt-vmconsole can read
    it; skip when the snapshot is not beside the repository."""
    if not os.path.exists(SNAPSHOT):
        pytest.skip("%s is absent: ../shared/vendor/ovirt-vmconsole must be "
                    "beside the repository" % SNAPSHOT)
    top = tempfile.mkdtemp(prefix="vdsmc-vmconsole-", dir="/tmp")
    os.chmod(top, 0o755)
    with tarfile.open(SNAPSHOT) as tar:
        members = [m for m in tar.getmembers() if "/src/" in m.name]
        tar.extractall(top, members)
    (name,) = os.listdir(top)
    src = os.path.join(top, name, "src")
    for dirpath, _dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
    return top, src


def relay_gone(pid):
    """The console relay ``pid`` has exited (a zombie counts: its parent,
    conmon, may not have reaped it yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(predicate, timeout, step=0.05):
    """Poll ``predicate`` until true or ``timeout`` seconds; its last value
    (the tests assert it: a timeout is a failure, never a pass)."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(step)
    return predicate()


class Proxy:
    """socketproxy.py connected to ``socket_path`` with a pty as its
    terminal, run as user ovirt-vmconsole (``as_user``) or root."""

    def __init__(self, src, socket_path, as_user=True, python=None):
        self.master, slave = pty.openpty()
        self.workdir = tempfile.mkdtemp(prefix="vdsmc-proxy-", dir="/tmp")
        os.chmod(self.workdir, 0o777)     # its socketproxy.log
        kw = {}
        if as_user:
            kw = dict(user=USER, group=GROUP, extra_groups=[])
        self.proc = subprocess.Popen(
            [python or SYSTEM_PYTHON, "-m", MODULE, socket_path],
            stdin=slave, stdout=slave, stderr=slave, cwd=self.workdir,
            env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
            start_new_session=True, **kw)
        os.close(slave)
        self.seen = b""
        # Typing before socketproxy made its terminal raw would have the
        # pty echo it here and turn \r into \n: wait for raw mode (the
        # master reads the slave's attributes).
        deadline = time.monotonic() + 30
        while termios.tcgetattr(self.master)[3] & termios.ECHO and \
                time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)

    def type(self, text):
        os.write(self.master, text.encode())

    def read_until(self, wanted, timeout=30):
        """What the terminal showed until ``wanted`` (bytes) appeared, or
        ``timeout`` s passed (the caller asserts on it)."""
        deadline = time.monotonic() + timeout
        while wanted not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break       # the proxy ended
                if not chunk:
                    break
                self.seen += chunk
        return self.seen

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        os.close(self.master)
        for n in os.listdir(self.workdir):
            os.unlink(os.path.join(self.workdir, n))
        os.rmdir(self.workdir)

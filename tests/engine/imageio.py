"""The real ovirt-imageio daemon (PyPI ovirt-imageio, the test extras), on
127.0.0.1 only, for the fake Engine's image transfers.

Configured as vdsm configures it on a host (vdsm's
static/.../ovirt-imageio/conf.d/50-vdsm.conf: TLS with the host's
certificate, the control service on a unix socket), but everything under a
temporary directory: a CA and a server certificate for 127.0.0.1 made with
openssl, the run directory, the log; the remote service on an ephemeral
port of 127.0.0.1 (read back from the daemon's log); no local (abstract
unix socket) service, no privilege drop.  Tickets are added and removed
through the control socket with imageio's own admin client, as Engine does
through vdsm (vdsm's storage/imagetickets.py add_image_ticket).
"""

import os
import re
import signal
import subprocess
import sys
import time

from ovirt_imageio import admin

CONF = """\
[daemon]
run_dir = {run}
drop_privileges = false
poll_interval = 0.1
systemd_enable = false

[tls]
enable = true
key_file = {key}
cert_file = {cert}
ca_file = {ca}

[remote]
host = 127.0.0.1
port = 0

[local]
enable = false

[control]
transport = unix
socket = {run}/sock

[handlers]
keys = logfile

[logger_root]
level = DEBUG
handlers = logfile

[handler_logfile]
keyword__class = logging.FileHandler
kwargs = {{}}
args = ("{log}",)
level = DEBUG
formatter = long
"""

_LISTENING = re.compile(r"remote\.service listening on \('127\.0\.0\.1', "
                        r"(\d+)\)")


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d):
    """ca.pem, and server.pem/server.key for IP 127.0.0.1 signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=vdsm-container test CA", "-keyout", "ca.key",
             "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
             "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr",
             cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName = IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-extfile",
             "ext.cnf", "-out", "server.pem", cwd=d)
    return {k: os.path.join(d, v) for k, v in (
        ("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


class Daemon:
    """One ovirt-imageio daemon under ``root`` (a temporary directory)."""

    def __init__(self, root, certs=None):
        """``certs``: make_certs' result to reuse (RSA keys take a while)."""
        self.root = str(root)
        self.run_dir = os.path.join(self.root, "run")
        self.log = os.path.join(self.root, "daemon.log")
        os.makedirs(self.run_dir)
        os.makedirs(os.path.join(self.root, "conf.d"))
        self.certs = certs or make_certs(self.root)
        with open(os.path.join(self.root, "conf.d", "daemon.conf"),
                  "w") as f:
            f.write(CONF.format(run=self.run_dir, log=self.log,
                                **self.certs))
        self.proc = None
        self.port = None
        self.tickets = set()        # every ticket ever added

    @property
    def ca_file(self):
        return self.certs["ca"]

    def start(self, wait=30):
        exe = os.path.join(os.path.dirname(sys.executable), "ovirt-imageio")
        self.proc = subprocess.Popen(
            [exe, "--conf-dir", self.root], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + wait
        while self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("ovirt-imageio exited: %s"
                                   % self.proc.stderr.read().decode())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ovirt-imageio did not start")
            try:
                with open(self.log) as f:
                    m = _LISTENING.search(f.read())
            except FileNotFoundError:
                m = None
            if m and os.path.exists(os.path.join(self.run_dir, "sock")):
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """Die at once, as a daemon that crashes."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None:
            self.proc.stderr.close()

    def url(self, ticket_id):
        return "https://127.0.0.1:%d/images/%s" % (self.port, ticket_id)

    def _client(self):
        return admin.Client(admin.load_config(self.root), timeout=10)

    def add_ticket(self, ticket):
        with self._client() as c:
            c.add_ticket(ticket)
        self.tickets.add(ticket["uuid"])

    def del_ticket(self, ticket_id):
        with self._client() as c:
            c.del_ticket(ticket_id)

    def open_tickets(self):
        """The tickets added here that the daemon still holds."""
        found = []
        with self._client() as c:
            for t in sorted(self.tickets):
                try:
                    c.get_ticket(t)
                except admin.ServerError as e:
                    if e.code != 404:
                        raise
                else:
                    found.append(t)
        return found

"""A local image registry for tests: Debian's docker-registry (the CNCF
distribution registry), on 127.0.0.1 only, with its own configuration and
storage under a temporary directory; plain HTTP (skopeo's
``--*-tls-verify=false``), no auth, no debug server."""

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

EXE = shutil.which("docker-registry") or "/usr/bin/docker-registry"

CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:

    def __init__(self, root):
        self.root = str(root)
        self.proc = None
        self.port = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def start(self, wait=30):
        os.makedirs(os.path.join(self.root, "data"), exist_ok=True)
        for _ in range(3):          # another process may take the port
            self.port = _free_port()
            conf = os.path.join(self.root, "config.yml")
            with open(conf, "w") as f:
                f.write(CONFIG.format(root=os.path.join(self.root, "data"),
                                      port=self.port))
            self.proc = subprocess.Popen(
                [EXE, "serve", conf], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + wait
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(
                            "http://%s/v2/" % self.host, timeout=2) as r:
                        if r.status == 200:
                            return self
                except (urllib.error.URLError, OSError):
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("docker-registry did not start")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def push(self, archive, name, all_=True):
        """skopeo copy an OCI archive in as ``name`` (--all: every image
        of an index, so a multi-arch archive becomes a manifest list)."""
        cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_:
            cmd.append("--all")
        subprocess.run(cmd + ["oci-archive:%s" % archive,
                              "docker://%s/%s" % (self.host, name)],
                       check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        return "docker://%s/%s" % (self.host, name)

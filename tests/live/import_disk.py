"""Make an image disk as an admin would on Engine: ``ovirt-container
import`` of an image archive through the fake Engine (tests/engine) and a
real ovirt-imageio daemon, both on 127.0.0.1, the disk a volume of the live
host's storage domain.

Run by the project's venv python (the SDK and ovirt-imageio live there,
not in Debian's python3 that runs the live suite and holds vdsm's client):

    .venv/bin/python tests/live/import_disk.py ARCHIVE DIR

The fake Engine reaches the host through the process that started this
one (tests/live/test_live_import.py's ``serve_host``, which holds the
JSON-RPC client): each host call is a JSON line on stdout, its answer a
JSON line on stdin.  The last line is ``{"done": [imageID, volumeID]}``
or ``{"failed": message}``.
"""

import contextlib
import io
import json
import os
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.engine.fake_engine import Engine, PASSWORD  # noqa: E402
from tests.engine.imageio import Daemon  # noqa: E402
from tests.engine.storage import Storage  # noqa: E402
from tests.test_ovirt_container import tool  # noqa: E402

OUT = sys.stdout


def send(message):
    OUT.write(json.dumps(message) + "\n")
    OUT.flush()


class Host:
    """The live host's storage verbs, called in the parent process; one
    call at a time (the fake Engine answers from several threads)."""

    def __init__(self):
        self._lock = threading.Lock()

    def _call(self, name, *args):
        with self._lock:
            send({"call": name, "args": list(args)})
            answer = json.loads(sys.stdin.readline())
        if "error" in answer:
            raise RuntimeError("host %s: %s" % (name, answer["error"]))
        return answer["ok"]

    def create_volume(self, img_id, vol_id, size, sparse):
        return self._call("create_volume", img_id, vol_id, size, sparse)

    def prepare(self, img_id, vol_id):
        return self._call("prepare", img_id, vol_id)

    def teardown(self, img_id, vol_id):
        return self._call("teardown", img_id, vol_id)


def main(archive, where):
    daemon = Daemon(os.path.join(where, "imageio")).start()
    try:
        engine = Engine().start()
        try:
            engine.storage = Storage(engine, daemon, where, host=Host())
            engine.storage.add_domain("data")
            os.environ["OVIRT_PASSWORD"] = PASSWORD
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = tool.main(["--url", engine.url, "--insecure", "import",
                                "oci-archive:%s" % archive,
                                "--storage-domain", "data",
                                "--imageio-ca-file", daemon.ca_file])
            if rc != 0:
                send({"failed": "ovirt-container import: %d" % rc})
                return rc
            left = daemon.open_tickets()
            if left:
                send({"failed": "tickets left in imageio: %s" % left})
                return 1
            disk_id = out.getvalue().strip()
            send({"done": [disk_id, engine.storage.volumes[disk_id]]})
            return 0
        finally:
            engine.stop()
    finally:
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

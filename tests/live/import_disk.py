"""Make an image disk as an admin would on Engine: ``ovirt-container
import`` of an image archive through the fake Engine (tests/engine) and a
real ovirt-imageio daemon, both on 127.0.0.1; print the disk's file.

Run by the project's venv python (the SDK and ovirt-imageio live there,
not in Debian's python3 that runs the live suite):

    .venv/bin/python tests/live/import_disk.py ARCHIVE DIR
"""

import contextlib
import io
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.engine.fake_engine import Engine, PASSWORD  # noqa: E402
from tests.engine.imageio import Daemon  # noqa: E402
from tests.engine.storage import Storage  # noqa: E402
from tests.test_ovirt_container import tool  # noqa: E402


def main(archive, where):
    disks = os.path.join(where, "sd")
    os.makedirs(disks)
    daemon = Daemon(os.path.join(where, "imageio")).start()
    try:
        engine = Engine().start()
        try:
            engine.storage = Storage(engine, daemon, disks)
            engine.storage.add_domain("data")
            os.environ["OVIRT_PASSWORD"] = PASSWORD
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = tool.main(["--url", engine.url, "--insecure", "import",
                                "oci-archive:%s" % archive,
                                "--storage-domain", "data",
                                "--imageio-ca-file", daemon.ca_file])
            if rc != 0:
                return rc
            print(engine.storage.path(out.getvalue().strip()))
            return 0
        finally:
            engine.stop()
    finally:
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

"""From an image to a running container VM: ``ovirt-container import``
puts busybox into a new disk (fake Engine, real ovirt-imageio daemon);
the host then creates the container VM on that disk's bytes as Engine's
domain XML names it, and it comes Up and runs its command.  In-process
(the plugin's backend, runc, conmon), leak-checked.

The live vdsmd host runs without a storage domain (tests/live: vdsm's
storage side is off), so the disk is the file the fake Engine's storage
domain holds, as a file domain's volume is a file."""

import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.container import Container, create
from vdsm_container.spec import domxml

from . import test_upload_image as up
from .conftest import in_container

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]

imageio, engine, run = up.imageio, up.engine, up.run
imageio_certs = up.imageio_certs


def test_imported_image_runs(engine, imageio, run, paths, busybox_oci):
    rc, out, err = run("import", "oci-archive:%s" % busybox_oci,
                       "--storage-domain", "data")
    assert (rc, err) == (0, "")
    disk = engine.storage.path(out.strip())
    xml = domxml.build(str(uuid.uuid4()), "imported", "runc", disk,
                       memory_mib=64, command=[
                           "sh", "-c", "echo from-the-disk > /tmp/mark; "
                           "exec sleep 1000"])
    ctr = create(xml, paths=paths)
    try:
        assert ctr.lastStatus == constants.UP
        deadline = time.monotonic() + 10
        mark = in_container(ctr, "/tmp/mark")
        while True:
            try:
                with open(mark) as f:
                    assert f.read() == "from-the-disk\n"
                break
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)

"""Consistency after crashes (issue #14): a container the runtime created
but never started, what a host reboot leaves, and what a lost run directory
leaves (orphans: ``list``, ``destroy`` and ``gc`` find them by name)."""

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.container import Container, create
from vdsm_container.runtimes import base
from vdsm_container.spec import domxml

from .conftest import bundle_of, driver_of

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


def xml(image, vm_id=None, command=("sleep", "1000"), **kw):
    return domxml.build(vm_id or str(uuid.uuid4()), "o", "runc", image,
                        command=list(command), **kw)


def recreate_as_created(ctr):
    """Leave ``ctr``'s container as a kill -9 between the runtime's create
    and start does: ``runc create`` done (its init waits on exec.fifo, no
    conmon), ``runc start`` never run.  Its record says whatever it said."""
    bundle, driver = bundle_of(ctr), driver_of(ctr)
    driver.stop(bundle, 0)
    driver.cleanup(bundle)
    bundle.clear_runtime_files()
    subprocess.run(driver._args() + ["create", "--bundle", bundle.dir,
                                     "--pid-file", bundle.pid_file, ctr.id],
                   check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = subprocess.run(driver._args() + ["state", ctr.id], check=True,
                         stdout=subprocess.PIPE).stdout
    assert json.loads(out)["status"] == "created"


@pytest.mark.parametrize("recorded", [constants.UP,
                                      constants.WAIT_FOR_LAUNCH])
def test_created_but_never_started_is_down(paths, busybox_oci, recorded):
    ctr = create(xml(busybox_oci), paths=paths)
    recreate_as_created(ctr)
    if recorded == constants.WAIT_FOR_LAUNCH:
        # The starter died (a pid that is no process).
        state = ctr.backend.store.read(ctr.id)
        state.update(status=recorded, starter=2 ** 22 + 1)
        ctr.backend.store.write(ctr.id, state)
    assert driver_of(ctr).state(bundle_of(ctr)).status == base.CREATED
    again = Container.load(ctr.id, paths=paths)
    assert again.lastStatus == recorded
    assert again.refresh() == constants.DOWN
    stats = again.getStats()
    assert stats["exitReason"] == constants.DESTROYED_ON_STARTUP
    assert "never started" in stats["exitMessage"]
    # Recorded: a new process sees it Down too, and destroy removes it all.
    assert Container.load(ctr.id, paths=paths).lastStatus == constants.DOWN
    Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)

"""Failure, concurrency and leak tests on real containers.

Every test runs under ``leakcheck``: mounts, cgroups, runtime state, files,
processes and loop devices are compared before and after.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.container import Container, create
from .conftest import bundle_of, driver_of

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]

CYCLES = int(os.environ.get("VDSM_CONTAINER_TEST_CYCLES", "500"))
# Containers started at once; make check-el9 runs fewer under emulation,
# where 20 runc creates through systemd take longer than conmon's 60 s.
PARALLEL = int(os.environ.get("VDSM_CONTAINER_TEST_PARALLEL", "20"))
FAILING = int(os.environ.get("VDSM_CONTAINER_TEST_FAILING", "100"))


def xml(image, command=("sleep", "1000"), vm_id=None, runtime="runc"):
    return domxml.build(vm_id or str(uuid.uuid4()), "f", runtime, image,
                        command=list(command))


def destroy_all(paths):
    for ctr in Container.load_all(paths=paths):
        ctr.destroy(gracefulAttempts=0)


def test_same_vm_id_twice_at_once(paths, busybox_oci):
    doc = xml(busybox_oci)
    outcomes = []

    def one():
        try:
            create(doc, paths=paths)
            outcomes.append("created")
        except errors.VMExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "exists"]
    destroy_all(paths)


@pytest.mark.parametrize("runtime,count", [("runc", PARALLEL),
                                           ("runsc", 3)])
def test_twenty_in_parallel_then_recovered_by_a_new_process(
        paths, busybox_oci, runtime, count):
    """runc: twenty at once; runsc: three (each a sandbox and a gofer, a
    few dozen MiB: what a CI machine can hold beside the rest)."""
    errors_seen = []

    def one():
        try:
            create(xml(busybox_oci, runtime=runtime), paths=paths)
        except Exception as e:      # noqa: BLE001 - reported below
            errors_seen.append(e)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    # "vdsm restarts": a new process rebuilds them all from disk.
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    out = subprocess.run([sys.executable, "-m", "vdsm_container", "list"],
                         env=env, check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    listed = json.loads(out)
    assert len(listed) == count
    assert {v["status"] for v in listed} == {"Up"}, listed
    for ctr in Container.load_all(paths=paths):
        ctr.sample()
        assert int(ctr.getStats()["pid"]) == bundle_of(ctr).pid()
    destroy_all(paths)


def test_destroy_during_start(paths, busybox_oci):
    vm_id = str(uuid.uuid4())
    outcome = []

    def start():
        try:
            outcome.append(create(xml(busybox_oci, vm_id=vm_id),
                                  paths=paths).lastStatus)
        except errors.CannotCreateVM as e:
            outcome.append(str(e))
    starter = threading.Thread(target=start)
    starter.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            ctr = Container.load(vm_id, paths=paths)
            break
        except errors.NoSuchVM:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    ctr.destroy(gracefulAttempts=0)     # waits for the start, then undoes it
    starter.join()
    assert Container.load_all(paths=paths) == []
    # Either the start had finished (Up, then destroyed), or it learns that
    # it was destroyed during the startup, as vdsm says it.
    assert outcome[0] == constants.UP or \
        "VM destroyed during the startup" in outcome[0], outcome


def test_conmon_killed(paths, busybox_oci, runtime):
    ctr = create(xml(busybox_oci, runtime=runtime), paths=paths)
    conmon = int(open(bundle_of(ctr).conmon_pid_file).read())
    os.kill(conmon, signal.SIGKILL)
    time.sleep(0.2)
    # The container outlives its monitor; destroy still removes it all.
    assert Container.load(ctr.id, paths=paths).refresh() == constants.UP
    Container.load(ctr.id, paths=paths).destroy(gracefulAttempts=0)


def test_runtime_state_removed(paths, busybox_oci, runtime):
    ctr = create(xml(busybox_oci, runtime=runtime), paths=paths)
    records = driver_of(ctr).records(ctr.id)
    assert any(os.path.exists(r) for r in records)
    for record in records:
        if os.path.isdir(record):
            shutil.rmtree(record)
        elif os.path.exists(record):
            os.unlink(record)
    again = Container.load(ctr.id, paths=paths)
    assert again.refresh() == constants.UP    # the process is still there
    again.destroy(gracefulAttempts=0)          # killed through its cgroup


def test_create_destroy_cycles(paths, busybox_oci):
    for _ in range(CYCLES):
        ctr = create(xml(busybox_oci), paths=paths)
        ctr.destroy(gracefulAttempts=0)
    assert Container.load_all(paths=paths) == []


def test_failing_creates(paths, busybox_oci, tmp_path):
    bad_image = tmp_path / "garbage"
    bad_image.write_bytes(os.urandom(8192))
    for i in range(FAILING):
        doc = xml(busybox_oci, ("/missing/binary",)) if i % 2 else \
            xml(str(bad_image))
        with pytest.raises(errors.VdsmException) as e:
            create(doc, paths=paths)
        assert e.value.code in (9, 17)
    assert Container.load_all(paths=paths) == []


@pytest.mark.parametrize("step,settles", [
    ("start", constants.UP), ("prepare", constants.DOWN)])
def test_start_interrupted_by_a_dying_process(paths, busybox_oci, step,
                                              settles):
    """kill -9 of the process that was starting the container, after the
    runtime started it or before: the next look settles the VM, and
    destroy removes everything."""
    code = ("import sys, os, signal\n"
            "from vdsm_container import container\n"
            "from vdsm_container.runtimes import oci\n"
            "real = oci.OCIDriver.%s\n"
            "def step(self, *args, **kwargs):\n"
            "    real(self, *args, **kwargs)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "oci.OCIDriver.%s = step\n"
            "container.create(sys.stdin.read())\n") % (step, step)
    vm_id = str(uuid.uuid4())
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    proc = subprocess.run([sys.executable, "-c", code],
                          input=xml(busybox_oci, vm_id=vm_id), env=env,
                          universal_newlines=True)
    assert proc.returncode == -signal.SIGKILL
    ctr = Container.load(vm_id, paths=paths)
    assert ctr.lastStatus == constants.WAIT_FOR_LAUNCH
    assert ctr.refresh() == settles
    again = Container.load(vm_id, paths=paths)
    assert again.lastStatus == settles
    if settles == constants.DOWN:
        assert again.getStats()["exitReason"] == \
            constants.DESTROYED_ON_STARTUP
    ctr.destroy(gracefulAttempts=0)

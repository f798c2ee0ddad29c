"""A gVisor (runsc) container VM through the live vdsmd (issue #27): the
runtime Engine's ``containerType=runsc`` custom property selects,
advertised in the capabilities, Up with its sandbox and gofer in the
container's cgroup, recovered by a new vdsmd, gone after destroy: no
sandbox process, no runsc record, no cgroup.
"""

import os

from vdsm.common import exception as vdsm_exc

from vdsm_container.runtimes import runsc
from vdsm_container.stats import cgroups

from ..vdsmschema import Schema
from .conftest import POLITE, RUN_DIR, services, stats, vm_list
from .test_live import ADMIN_SHUTDOWN, assert_stats_valid, code_of, \
    started_vdsmd

RUNSC_ROOT = os.path.join(RUN_DIR, "runtime", "runsc")  # Paths.runtime_root


def sandbox_of(vm_id):
    """Pids of the runsc sandbox and gofer serving ``vm_id``'s bundle."""
    return sorted(runsc._processes_of(
        os.path.join(RUN_DIR, "vms", vm_id, "bundle")))


def cgroup_procs(pid):
    """The processes in ``pid``'s cgroup (its own cgroup v2 directory, or
    the memory controller's on v1)."""
    h = cgroups.Hierarchy()
    rel = cgroups.of_pid(pid, h.version)
    d = h.path(rel) if h.version == 2 else h.path(rel, "memory")
    with open(os.path.join(d, "cgroup.procs")) as f:
        return {int(line) for line in f if line.strip()}


def test_runsc_vm_through_vdsm(made, cli, events):
    schema = Schema()
    caps = cli.Host.getCapabilities()
    assert "containers_runsc" in caps["additionalFeatures"], \
        caps["additionalFeatures"]
    vm_id = made.container(POLITE, custom={"containerType": "runsc"})
    st = stats(cli, vm_id)
    assert st["status"] == "Up"
    assert_stats_valid(schema, st)
    sandbox = sandbox_of(vm_id)
    # The sandbox (the Sentry) and its gofer at least, each in the
    # container's cgroup, which the limits and VmStats cover.
    assert len(sandbox) >= 2, sandbox
    in_cgroup = cgroup_procs(sandbox[0])
    assert set(sandbox) <= in_cgroup, (sandbox, in_cgroup)
    assert runsc.recorded(RUNSC_ROOT, vm_id)

    services("restart", "vdsmd")
    with started_vdsmd(events) as cli2:
        assert vm_list(cli2)[vm_id]["status"] == "Up"
        assert_stats_valid(schema, stats(cli2, vm_id))
        cli2.VM.destroy(vmID=vm_id)
        down = events.wait_status(vm_id, "Down")
        assert down["exitReason"] == ADMIN_SHUTDOWN
        assert code_of(cli2.VM.getStats, vmID=vm_id) == \
            vdsm_exc.NoSuchVM.code
    assert sandbox_of(vm_id) == []
    assert not runsc.recorded(RUNSC_ROOT, vm_id)
    assert not os.path.exists(os.path.join(RUN_DIR, "vms", vm_id))

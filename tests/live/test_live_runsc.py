"""A gVisor (runsc) container VM through the live vdsmd (issue #27): the
runtime Engine's ``containerType=runsc`` custom property selects,
advertised in the capabilities, Up with its sandbox and gofer in the
container's cgroup, recovered by a new vdsmd, gone after destroy: no
sandbox process, no runsc record, no cgroup.  With a NIC on a bridge:
gVisor's netstack has the address, started from supervdsmd as vdsm runs
it (runsc's start in a mount namespace of its own where its namespace
check is broken, ``runtimes.runscnet``).
"""

import os
import subprocess
import time
import uuid

from vdsm.common import exception as vdsm_exc

from vdsm_container import config
from vdsm_container.host import network
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


def _sh(*args):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout


def test_runsc_vm_with_a_nic_through_vdsm(made, cli, events):
    """The address is netstack's: the host reaches it, the namespace's
    kernel side no longer has it, and VmStats report it."""
    bridge = "vcbr%s" % uuid.uuid4().hex[:6]
    net = "198.18.%d" % (int(uuid.uuid4().hex[:2], 16) % 200 + 10)
    _sh("ip", "link", "add", bridge, "type", "bridge")
    try:
        _sh("ip", "addr", "add", net + ".1/24", "dev", bridge)
        _sh("ip", "link", "set", bridge, "up")
        vm_id = made.container(POLITE, bridge=bridge, custom={
            "containerType": "runsc",
            "containerNetwork": "static:%s.10/24,gw=%s.1" % (net, net)})
        assert stats(cli, vm_id)["status"] == "Up"
        assert _guest_ips(cli, vm_id) == net + ".10"
        ping = subprocess.run(["busybox", "ping", "-c", "1", "-W", "5",
                               net + ".10"], stdout=subprocess.PIPE)
        assert ping.returncode == 0
        state = network.read_state(config.Paths(), vm_id)
        kernel_side = _sh("ip", "netns", "exec", state["netns"], "ip", "-o",
                          "-4", "addr", "show", "eth0")
        assert "inet" not in kernel_side
        cli.VM.destroy(vmID=vm_id)
        events.wait_status(vm_id, "Down")
        assert not os.path.exists("/sys/class/net/" +
                                  network.host_name(vm_id, 0))
        assert sandbox_of(vm_id) == []
    finally:
        _sh("ip", "link", "del", bridge)


def _guest_ips(cli, vm_id, bound=60):
    """VmStats' guestIPs once a sample has them (after ``bound`` seconds,
    what the last one said)."""
    deadline = time.monotonic() + bound
    while True:
        ips = stats(cli, vm_id).get("guestIPs", "")
        if ips or time.monotonic() > deadline:
            return ips
        time.sleep(1)

"""NICs under runsc: gVisor's netstack takes the namespace's addresses at
start (``runtimes.runscnet``, ``host.netstack``).  The reachability of
static addresses is test_network's, for every runtime; here what is
runsc's own: a DHCP lease handed over, refused without one, given again
on a reset, and the start command and guard that replace runsc's broken
root-namespace check."""

import json
import os
import types
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.spec import domxml
from vdsm_container.container import create
from vdsm_container.host import dhcp, netstack, network
from vdsm_container.runtimes import runsc, runscnet

from . import test_network
from .conftest import wait_log
from .test_network import inside, make, ping, sh, wait_for_lease

pytestmark = [pytest.mark.runtime, pytest.mark.network,
              pytest.mark.usefixtures("leakcheck")]

bridge = test_network.bridge
dnsmasq = test_network.dnsmasq
only_runsc = pytest.mark.parametrize("runtime", ["runsc"], indirect=True)


def kernel_inet(ctr):
    """The IPv4 addresses on the host kernel's side of eth0."""
    return inside(ctr, "ip", "-o", "-4", "addr", "show", "eth0")


@only_runsc
def test_dhcp_lease_is_handed_to_the_sandbox(paths, busybox_oci, dnsmasq,
                                             runtime):
    name, net = dnsmasq
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:dd:00:01")], "dhcp",
               runtime=runtime,
               command=("sh", "-c", "ip -o addr show eth0; echo listed; "
                        "sleep 1000"))
    ips = wait_for_lease(ctr)
    assert ips.startswith(net + ".")
    assert "inet %s/24" % ips in wait_log(ctr, "listed")   # netstack has it
    assert ping(None, ips)
    assert "inet" not in kernel_inet(ctr)
    # udhcpc renews from the host side; its script must not put the
    # address back on the kernel's side, which would answer for it too.
    state = network.read_state(paths, ctr.id)
    script = os.path.join(paths.vm_run_dir(ctr.id), dhcp.SCRIPT_FILE)
    sh("ip", "netns", "exec", state["netns"], "env", "interface=eth0",
       "ip=" + ips, "subnet=255.255.255.0", "router=%s.1" % net, script,
       "renew")
    assert "inet" not in kernel_inet(ctr)
    ctr.sample()
    assert ctr.getStats()["guestIPs"] == ips
    ctr.destroy(gracefulAttempts=0)


@only_runsc
def test_no_lease_refuses_the_start_and_leaves_nothing(
        paths, busybox_oci, bridge, runtime, monkeypatch):
    """A lease after start would never reach netstack: refused, with the
    NIC named, and nothing of the VM left (leakcheck)."""
    monkeypatch.setattr(netstack, "LEASE_WAIT", 2.0)
    name, net = bridge      # no DHCP server on it
    with pytest.raises(errors.CannotCreateVM) as e:
        make(paths, busybox_oci, [(name, "56:6f:00:dd:00:02")], "dhcp",
             runtime=runtime)
    assert "no DHCP lease on eth0 within 2 s" in str(e.value)


@only_runsc
def test_a_start_failing_after_the_hand_over_leaves_nothing(
        paths, busybox_oci, bridge, runtime, monkeypatch, caplog):
    """The hand-over recorded the addresses and marked the DHCP script;
    the runtime's start then fails (its guard, made to refuse): the error
    names the cause, and none of it stays (leakcheck)."""
    def refuse(path, vm_id):
        raise errors.CannotCreateVM("refused for the test", vmId=vm_id)
    monkeypatch.setattr(runscnet, "check_not_host", refuse)
    caplog.set_level("INFO", logger="vdsm_container.host.netstack")
    name, net = bridge
    with pytest.raises(errors.CannotCreateVM) as e:
        make(paths, busybox_oci, [(name, "56:6f:00:dd:00:06")],
             "static:%s.40/24" % net, runtime=runtime)
    assert "refused for the test" in str(e.value)
    assert "addresses handed to the runtime's network stack" in caplog.text


@only_runsc
def test_reset_hands_the_addresses_over_again(paths, busybox_oci, bridge,
                                              runtime):
    """netstack took the addresses off the namespace at the first start;
    the restarted sandbox gets them (and the gateway) all the same."""
    name, net = bridge
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:dd:00:03")],
               "static:%s.20/24,gw=%s.1" % (net, net), runtime=runtime,
               command=("sh", "-c", "ip -o addr show eth0; ip route; "
                        "echo listed; sleep 1000"))
    assert "listed" in wait_log(ctr, "listed")    # the first run said all
    assert ping(None, net + ".20")
    assert ctr.reset()["status"]["code"] == 0
    assert ctr.lastStatus == constants.UP
    seen = wait_log(ctr, "listed", timeout=30, times=2)
    assert seen.count("inet %s.20/24" % net) == 2, seen
    assert seen.count("default via %s.1" % net) == 2, seen
    assert ping(None, net + ".20")
    assert "inet" not in kernel_inet(ctr)
    ctr.destroy(gracefulAttempts=0)


@only_runsc
def test_a_nic_with_its_link_down_is_not_in_the_sandbox(
        paths, busybox_oci, bridge, runtime):
    """runsc copies the links that are up: a NIC Engine sent with its link
    down is not the container's, and is not reported as its."""
    name, net = bridge
    xml = domxml.build(
        str(uuid.uuid4()), "net", runtime, busybox_oci,
        command=["sh", "-c", "ip -o link; echo listed; sleep 1000"],
        nics=[(name, "56:6f:00:dd:00:04"), (name, "56:6f:00:dd:00:05")],
        custom={"containerNetwork": "static:%s.30/24|static:%s.31/24"
                % (net, net)})
    xml = xml.replace('<link state="up" /><alias name="ua-net1"',
                      '<link state="down" /><alias name="ua-net1"', 1)
    ctr = create(xml, paths=paths)
    seen = wait_log(ctr, "listed")
    assert "56:6f:00:dd:00:04" in seen and "56:6f:00:dd:00:05" not in seen
    ctr.sample()
    reported = ctr.getStats()["netIfaces"]
    assert [i["hw"] for i in reported] == ["56:6f:00:dd:00:04"]
    assert ctr.getStats()["guestIPs"] == net + ".30"
    ctr.destroy(gracefulAttempts=0)


def _bundle(tmp_path, netns):
    config = tmp_path / "config.json"
    ns = [{"type": "network", "path": netns}] if netns else []
    config.write_text(json.dumps({"linux": {"namespaces": ns}}))
    return types.SimpleNamespace(config_path=str(config), vm_id="v1",
                                 dir=str(tmp_path))


@pytest.mark.parametrize("version,masked", [
    ("0.0~20221219.0", True),       # Debian 12's runsc
    ("release-20240807.0", False),  # gVisor's, with 19f6b0c07
    ("0.0.0", False)])
def test_start_command(paths, tmp_path, monkeypatch, version, masked):
    """runsc copies the namespace's links into netstack at ``start``
    (``Sandbox.StartRoot``), with that command's ``--network``: a bundle
    with a network namespace gets ``sandbox``, one without ``none``; a
    runsc with the rmem_default check starts without /proc/sys/net."""
    driver = runsc.Driver(paths)
    monkeypatch.setitem(runsc._versions, driver._path, version)
    argv = driver._start_argv(_bundle(tmp_path, "/var/run/netns/x"))
    assert argv[argv.index("--network") + 1] == "sandbox"
    assert argv[-2:] == ["start", "v1"]
    assert (argv[0] == "unshare" and "/proc/sys/net" in argv[7]) is masked
    assert argv[-6:-4] != ["--network", "none"]
    plain = driver._start_argv(_bundle(tmp_path, None))
    assert plain[plain.index("--network") + 1] == "none"
    assert plain[0] == driver._path


def test_masked_start_cannot_see_rmem_default(tmp_path):
    """What runsc 2022-12-19's check reads is gone where its start runs,
    and only there."""
    argv = runscnet.without_sysctl_net(
        ["sh", "-c", "test -e /proc/sys/net/core/rmem_default || echo gone; "
         "test -e /proc/sys/vm/mmap_min_addr && echo vm-stays"])
    out = sh(*argv).stdout.split()
    assert out == ["gone", "vm-stays"]
    assert os.path.exists("/proc/sys/net/core/rmem_default")


def test_host_namespace_is_refused(paths, tmp_path):
    """runsc's own guard is off where its start runs masked: the driver's
    refuses the host's namespace before start."""
    driver = runsc.Driver(paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        driver._before_start(_bundle(tmp_path, "/proc/self/ns/net"))
    assert "is the host's network namespace" in str(e.value)
    netns = "vdsm-test-%s" % uuid.uuid4().hex[:6]
    sh("ip", "netns", "add", netns)
    try:
        driver._before_start(_bundle(tmp_path,
                                     os.path.join(network.NETNS_DIR, netns)))
    finally:
        sh("ip", "netns", "del", netns)

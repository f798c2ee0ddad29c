"""Container NICs on a Linux bridge of the test's own, on loopback-only
test addresses (198.18.0.0/15, the benchmarking range, on a bridge with no
uplink: nothing leaves this machine)."""

import json
import os
import shutil
import signal
import subprocess
import time
import types
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container import files
from vdsm_container.host import network
from vdsm_container.container import Container, create

from .conftest import bundle_of

pytestmark = [pytest.mark.runtime, pytest.mark.network,
              pytest.mark.usefixtures("leakcheck")]


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)


@pytest.fixture
def bridge():
    """A bridge with 198.18.<n>.1/24, removed (and checked) afterwards."""
    name = "vcbr%s" % uuid.uuid4().hex[:6]
    net = "198.18.%d" % (int(uuid.uuid4().hex[:2], 16) % 200 + 10)
    sh("ip", "link", "add", name, "type", "bridge")
    sh("ip", "addr", "add", net + ".1/24", "dev", name)
    sh("ip", "link", "set", name, "up")
    yield name, net
    sh("ip", "link", "del", name)
    assert not os.path.exists("/sys/class/net/" + name)


@pytest.fixture
def dnsmasq(bridge, tmp_path):
    """A DHCP server bound to the test bridge only."""
    name, net = bridge
    pidfile = tmp_path / "dnsmasq.pid"
    proc = subprocess.Popen([
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
        "--interface=" + name, "--bind-interfaces", "--except-interface=lo",
        "--port=0", "--no-resolv", "--no-hosts",
        "--dhcp-range=%s.50,%s.99,255.255.255.0,2m" % (net, net),
        "--dhcp-leasefile=%s" % (tmp_path / "leases"),
        "--pid-file=%s" % pidfile], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    yield bridge
    proc.terminate()
    proc.wait(timeout=10)


def make(paths, image, nics, network_prop, command=("sleep", "1000"),
         vm_id=None, runtime="runc"):
    xml = domxml.build(vm_id or str(uuid.uuid4()), "net", runtime, image,
                       command=list(command), nics=nics,
                       custom={"containerNetwork": network_prop})
    return create(xml, paths=paths)


def netns_of(ctr):
    return network._read_state(ctr.paths, ctr.id)["netns"]


def ping(netns, address):
    args = ["busybox", "ping", "-c", "1", "-W", "2", address]
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    return sh(*args, check=False).returncode == 0


def inside(ctr, *command):
    """Run a command in the container's network namespace."""
    return sh("ip", "netns", "exec", netns_of(ctr), *command).stdout


def test_static_addresses_reachability_and_stats(paths, busybox_oci,
                                                 bridge):
    runtime = "runc"
    name, net = bridge
    # What the container's own network stack has (under runsc, gVisor's
    # netstack, not the host kernel's namespace).
    a = make(paths, busybox_oci, [(name, "56:6f:00:aa:00:01")],
             "static:%s.10/24,gw=%s.1" % (net, net), runtime=runtime,
             command=("sh", "-c", "ip -o addr show eth0; ip route; "
                      "echo listed; sleep 1000"))
    b = make(paths, busybox_oci, [(name, "56:6f:00:aa:00:02")],
             "static:%s.11/24" % net, runtime=runtime)
    deadline = time.monotonic() + 20    # a bound for a failure
    seen = ""
    while "listed" not in seen and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = open(a.log_path()).read()
    assert "inet %s.10/24" % net in seen, seen
    assert "default via %s.1" % net in seen, seen
    link = inside(a, "ip", "-o", "link", "show", "eth0")
    assert "56:6f:00:aa:00:01" in link and "UP" in link
    assert "default via %s.1" % net in inside(a, "ip", "route")
    assert ping(None, net + ".10")                 # host -> container
    assert ping(netns_of(a), net + ".11")          # container -> container
    assert ping(netns_of(b), net + ".1")           # container -> host
    a.sample()
    stats = a.getStats()
    nic = stats["network"][network.host_name(a.id, 0)]
    assert nic["macAddr"] == "56:6f:00:aa:00:01"
    assert nic["state"] == "up"
    assert nic["speed"] == "1000"       # vmstats.py nic_info, virtio
    assert int(nic["rx"]) > 0 and int(nic["tx"]) > 0
    assert stats["guestIPs"] == net + ".10"
    assert stats["netIfaces"][0]["hw"] == "56:6f:00:aa:00:01"
    for ctr in (a, b):
        ctr.destroy(gracefulAttempts=0)


def test_mtu_link_state_and_naming(paths, busybox_oci, bridge):
    name, net = bridge
    xml = domxml.build(str(uuid.uuid4()), "net", "runc", busybox_oci,
                       command=["sh", "-c", "ip -o link; sleep 1000"],
                       nics=[(name, "56:6f:00:bb:00:01"),
                             (name, "56:6f:00:bb:00:02")],
                       custom={"containerNetwork": "none"})
    # Engine's XML: second NIC down, MTU 1400 on the first.
    xml = xml.replace('<link state="up" /><alias name="ua-net1"',
                      '<link state="down" /><alias name="ua-net1"', 1)
    xml = xml.replace('<mac address="56:6f:00:bb:00:01" />',
                      '<mac address="56:6f:00:bb:00:01" />'
                      '<mtu size="1400" />')
    ctr = create(xml, paths=paths)
    assert ctr.spec.nics[1].link_up is False
    links = inside(ctr, "ip", "-o", "link")
    eth0 = [ln for ln in links.splitlines() if " eth0@" in ln][0]
    eth1 = [ln for ln in links.splitlines() if " eth1@" in ln][0]
    assert "mtu 1400" in eth0 and "56:6f:00:bb:00:01" in eth0
    assert "56:6f:00:bb:00:02" in eth1 and "state DOWN" in eth1
    # The container itself sees the same NICs: it listed them at start.
    deadline = time.monotonic() + 10
    seen = ""
    while "eth1" not in seen and time.monotonic() < deadline:
        time.sleep(0.1)
        with open(ctr.log_path(), errors="replace") as f:
            seen = f.read()
    own = [ln for ln in seen.splitlines() if " eth0@" in ln]
    assert own and "mtu 1400" in own[0] and "56:6f:00:bb:00:01" in own[0]
    assert any(" eth1@" in ln and "56:6f:00:bb:00:02" in ln
               for ln in seen.splitlines())
    ctr.destroy(gracefulAttempts=0)


def wait_for_lease(ctr, bound=20):
    """The container's guestIPs once udhcpc has a lease ("" after
    ``bound`` seconds without one)."""
    deadline = time.monotonic() + bound
    ips = ""
    while time.monotonic() < deadline and not ips:
        time.sleep(0.2)
        ips = network.guest_info(ctr.paths, ctr.id).get("guestIPs", "")
    return ips


def test_dhcp_lease(paths, busybox_oci, dnsmasq):
    name, net = dnsmasq
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:cc:00:01")], "dhcp")
    ips = wait_for_lease(ctr)
    assert ips.startswith(net + ".")
    assert ping(None, ips.split()[0])
    ctr.destroy(gracefulAttempts=0)


def test_runsc_refuses_nics_before_anything_starts(paths, busybox_oci,
                                                  bridge):
    """runsc 2022-12-19's netstack refuses every network namespace on
    this kernel (see ``runtimes.runsc``): a VM with NICs is refused with
    the reason, and nothing of it is on the host (leakcheck)."""
    name, net = bridge
    with pytest.raises(errors.UnsupportedOperation) as e:
        make(paths, busybox_oci, [(name, "56:6f:00:aa:00:09")],
             "static:%s.10/24" % net, runtime="runsc")
    assert "runsc runtime does not support nics" in str(e.value)
    assert "gVisor issue #10704" in str(e.value)


def test_runsc_sets_up_the_netstack_at_start(paths, tmp_path):
    """runsc copies the namespace's links into its netstack at ``start``
    (``Sandbox.StartRoot``), with that command's ``--network``: a bundle
    with a network namespace gets ``sandbox`` there, one without
    ``none``."""
    from vdsm_container.runtimes import runsc
    driver = runsc.Driver(paths)
    for netns, want in (("/var/run/netns/x", "sandbox"), (None, "none")):
        config = tmp_path / "config.json"
        ns = [{"type": "network", "path": netns}] if netns else []
        config.write_text(json.dumps({"linux": {"namespaces": ns}}))
        bundle = types.SimpleNamespace(config_path=str(config),
                                       vm_id="v1")
        argv = driver._start_argv(bundle)
        assert argv[argv.index("--network") + 1] == want
        assert argv[-2:] == ["start", "v1"]


def test_missing_bridge_leaves_nothing(paths, busybox_oci):
    ctr = Container.from_xml(domxml.build(
        str(uuid.uuid4()), "net", "runc", busybox_oci,
        command=["sleep", "1000"], nics=[("nosuchbr0", "56:6f:00:dd:00:01")]),
        paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert "nosuchbr0" in str(e.value)
    assert ctr.lastStatus == constants.DOWN


def test_teardown_after_a_crash(paths, busybox_oci, bridge):
    name, net = bridge
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:ee:00:01")], "none")
    host_end = network.host_name(ctr.id, 0)
    assert os.path.exists("/sys/class/net/" + host_end)
    # The container's init dies (from the host: PID 1 of a namespace
    # ignores SIGKILL sent from inside it).
    os.kill(bundle_of(ctr).pid(), signal.SIGKILL)
    again = Container.load(ctr.id, paths=paths)
    deadline = time.monotonic() + 10
    while again.refresh() != constants.DOWN and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert again.lastStatus == constants.DOWN
    assert "SIGKILL" in again.status()["exitMessage"]
    assert os.path.exists("/sys/class/net/" + host_end)    # until destroy
    again.destroy()
    assert not os.path.exists("/sys/class/net/" + host_end)


@pytest.fixture
def full_bridge(bridge, tmp_path):
    """The test bridge with all its ports taken: veths whose other ends
    wait in a namespace of the fixture's own, which takes them all along
    when it goes (one batch, instead of a second per hundred veths)."""
    name, net = bridge
    tag = uuid.uuid4().hex[:6]
    filler = "vcfill-%s" % tag
    sh("ip", "netns", "add", filler)
    out = ""
    try:
        # In batches of 200: ip keeps a descriptor per "netns NAME" it
        # parses, and the VM's job runs with 1024 of them.
        for first in range(0, network.BRIDGE_MAX_PORTS, 200):
            batch = tmp_path / ("fill-%d.batch" % first)
            with open(batch, "w") as f:
                for i in range(first, min(first + 200,
                                          network.BRIDGE_MAX_PORTS)):
                    f.write("link add vcf%s%d type veth peer name p%d "
                            "netns %s\nlink set vcf%s%d master %s\n"
                            % (tag, i, i, filler, tag, i, name))
            out += sh("ip", "-force", "-batch", str(batch),
                      check=False).stdout
        assert len(os.listdir("/sys/class/net/%s/brif" % name)) == \
            network.BRIDGE_MAX_PORTS, out[-2000:]
        yield bridge
    finally:
        sh("ip", "netns", "del", filler)
        # The kernel frees the namespace's 1023 veths in the background:
        # a few seconds here, over a minute under the VM's TCG (making
        # them took 99 s there); 30 s was outrun.
        deadline = time.monotonic() + 300
        while os.listdir("/sys/class/net/%s/brif" % name) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.listdir("/sys/class/net/%s/brif" % name) == []


def test_full_bridge_is_refused_and_leaves_nothing(paths, busybox_oci,
                                                   full_bridge):
    name, net = full_bridge
    ctr = Container.from_xml(domxml.build(
        str(uuid.uuid4()), "net", "runc", busybox_oci,
        command=["sleep", "1000"], nics=[(name, "56:6f:00:ff:00:01")],
        custom={"containerNetwork": "static:%s.10/24" % net}), paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert e.value.code == 9
    assert "bridge %s is full" % name in str(e.value)
    assert "1023" in str(e.value)
    assert ctr.lastStatus == constants.DOWN
    assert Container.load_all(paths=paths) == []
    assert not os.path.exists("/sys/class/net/" + network.host_name(ctr.id,
                                                                    0))
    assert len(os.listdir("/sys/class/net/%s/brif" % name)) == \
        network.BRIDGE_MAX_PORTS


@pytest.fixture
def path_without(tmp_path, monkeypatch):
    """``path_without(*names)``: PATH as it is, less the commands
    ``names`` (a directory of links to every other command on it)."""
    def hide(*names):
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for d in os.environ["PATH"].split(os.pathsep):
            for name in (os.listdir(d) if os.path.isdir(d) else ()):
                link = bindir / name
                if name not in names and not os.path.lexists(link):
                    os.symlink(os.path.join(d, name), link)
        monkeypatch.setenv("PATH", str(bindir))
        for name in names:
            assert shutil.which(name) is None
    return hide


def test_dhcp_through_busybox_where_there_is_no_udhcpc(paths, busybox_oci,
                                                       dnsmasq,
                                                       path_without):
    """EL9's busybox (EPEL) has no applet links: no udhcpc command."""
    path_without("udhcpc")
    assert network.udhcpc_command() == ["busybox", "udhcpc"]
    name, net = dnsmasq
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:cc:00:02")], "dhcp")
    ips = wait_for_lease(ctr)
    assert ips.startswith(net + ".")
    pidfile = network._read_state(ctr.paths, ctr.id)["dhcp"][0]
    with open("/proc/%d/cmdline" % files.read_pid(pidfile), "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"busybox", b"udhcpc"]
    ctr.destroy(gracefulAttempts=0)     # leakcheck: the client went too


def test_dhcp_without_busybox_is_refused_and_leaves_nothing(
        paths, busybox_oci, bridge, path_without):
    path_without("udhcpc", "busybox")
    name, net = bridge
    ctr = Container.from_xml(domxml.build(
        str(uuid.uuid4()), "net", "runc", busybox_oci,
        command=["sleep", "1000"], nics=[(name, "56:6f:00:cc:00:03")],
        custom={"containerNetwork": "dhcp"}), paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert "neither udhcpc nor busybox is installed" in str(e.value)
    assert ctr.lastStatus == constants.DOWN
    assert not os.path.exists("/sys/class/net/" + network.host_name(ctr.id,
                                                                    0))


def test_teardown_deletes_the_host_end_itself(paths, caplog):
    """The host end goes at once, by RTM_DELLINK, on every pyroute2 this
    package allows (before 0.7 it sets NLM_F_EXCL, which kernels >= 5.19
    refuse as NLM_F_BULK): its peer here stays in the host's namespace,
    so the namespace's removal cannot take it along."""
    vm_id = str(uuid.uuid4())
    tag = uuid.uuid4().hex[:6]
    host_end, peer = network.host_name(vm_id, 0), "vcpeer" + tag
    netns = network.netns_prefix(paths) + tag
    os.makedirs(paths.vm_run_dir(vm_id))
    network._write_state(paths, vm_id, {
        "netns": netns, "dhcp": [],
        "nics": [{"host": host_end, "mac": "56:6f:00:ee:00:02",
                  "bridge": "none"}]})
    sh("ip", "netns", "add", netns)
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", peer)
    try:
        network.teardown(paths, vm_id)
        assert not os.path.exists("/sys/class/net/" + host_end)
        assert not os.path.exists("/sys/class/net/" + peer)
        assert not os.path.exists(os.path.join(network.NETNS_DIR, netns))
        assert not os.path.exists(network._state_path(paths, vm_id))
        assert "Cannot remove" not in caplog.text
    finally:
        sh("ip", "link", "del", host_end, check=False)
        sh("ip", "netns", "del", netns, check=False)
        os.rmdir(paths.vm_run_dir(vm_id))

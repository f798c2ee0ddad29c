"""Container NICs on a Linux bridge of the test's own, on loopback-only
test addresses (198.18.0.0/15, the benchmarking range, on a bridge with no
uplink: nothing leaves this machine)."""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.host import dhcp, network
from vdsm_container.container import Container, create

from .conftest import bundle_of, wait_log

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
    return network.read_state(ctr.paths, ctr.id)["netns"]


def ping(netns, address):
    args = ["busybox", "ping", "-c", "1", "-W", "2", address]
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    return sh(*args, check=False).returncode == 0


def inside(ctr, *command):
    """Run a command in the container's network namespace."""
    return sh("ip", "netns", "exec", netns_of(ctr), *command).stdout


@pytest.fixture
def host_listener(bridge):
    """A TCP listener on the bridge's address: ``(port, received())``,
    where ``received()`` is what the first connection sent ("" if none
    came within 20 s)."""
    name, net = bridge
    server = socket.socket()
    server.bind((net + ".1", 0))
    server.listen(1)
    server.settimeout(20)

    def received():
        try:
            conn, _ = server.accept()
        except socket.timeout:
            return ""
        with conn:
            conn.settimeout(5)
            return conn.recv(100).decode()
    yield server.getsockname()[1], received
    server.close()


def send_until_accepted(address, port, text):
    """A shell loop for the container: send ``text`` to address:port with
    busybox nc, retrying while nothing listens yet."""
    return ("for i in $(seq 50); do echo %s | nc -w 2 %s %d && break; "
            "sleep 0.2; done; " % (text, address, port))


def test_static_addresses_reachability_and_stats(paths, busybox_oci,
                                                 bridge, runtime,
                                                 host_listener):
    """Reachability from the container's own network stack (nc in the
    containers: they have no CAP_NET_RAW for ping), which under runsc is
    gVisor's netstack, not the host kernel's namespace.  The listener's
    stdin stays open: busybox nc closes its sending half at its stdin's
    end, and the client, seeing that, could leave before it sent."""
    name, net = bridge
    port, received = host_listener
    a = make(paths, busybox_oci, [(name, "56:6f:00:aa:00:01")],
             "static:%s.10/24,gw=%s.1" % (net, net), runtime=runtime,
             command=("sh", "-c", "ip -o addr show eth0; ip route; "
                      "echo listed; sleep 1000 | nc -l -p 7000"))
    seen = wait_log(a, "listed")
    assert "inet %s.10/24" % net in seen, seen
    assert "default via %s.1" % net in seen, seen
    b = make(paths, busybox_oci, [(name, "56:6f:00:aa:00:02")],
             "static:%s.11/24" % net, runtime=runtime,
             command=("sh", "-c", send_until_accepted(net + ".10", 7000,
                                                      "from-b-to-a")
                      + send_until_accepted(net + ".1", port,
                                            "from-b-to-host")
                      + "sleep 1000"))
    assert "from-b-to-a" in wait_log(a, "from-b-to-a")   # container -> peer
    assert received().strip() == "from-b-to-host"     # container -> host
    assert ping(None, net + ".10")                      # host -> container
    link = inside(a, "ip", "-o", "link", "show", "eth0")
    assert "56:6f:00:aa:00:01" in link and "UP" in link
    kernel_side = inside(a, "ip", "-o", "-4", "addr", "show", "eth0")
    if runtime == "runsc":
        # netstack took the address: the kernel must not answer for it.
        assert "inet" not in kernel_side
    else:
        assert "inet %s.10/24" % net in kernel_side
    a.sample()
    stats = a.getStats()
    nic = stats["network"][network.host_name(a.id, 0)]
    assert nic["macAddr"] == "56:6f:00:aa:00:01"
    assert nic["state"] == "up"
    assert nic["speed"] == "1000"       # vmstats.py nic_info, virtio
    assert int(nic["rx"]) > 0 and int(nic["tx"]) > 0
    assert stats["guestIPs"] == net + ".10"
    assert stats["netIfaces"][0]["hw"] == "56:6f:00:aa:00:01"
    assert stats["netIfaces"][0]["inet"] == [net + ".10"]
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
    assert dhcp.udhcpc_command() == ["busybox", "udhcpc"]
    name, net = dnsmasq
    ctr = make(paths, busybox_oci, [(name, "56:6f:00:cc:00:02")], "dhcp")
    ips = wait_for_lease(ctr)
    assert ips.startswith(net + ".")
    pidfile = network.read_state(ctr.paths, ctr.id)["dhcp"][0]
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
    network.write_state(paths, vm_id, {
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

"""contrib/ovirt-container against a local fake Engine (127.0.0.1): the
exact requests it sends, read back with ovirt-engine-sdk's own reader."""

import importlib.util
import os
import socket

import pytest

pytest.importorskip("ovirtsdk4", reason="ovirt-engine-sdk-python is not "
                    "installed (make check installs it)")

from ovirtsdk4 import types  # noqa: E402

from .engine.fake_engine import Engine, PASSWORD  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(HERE), "contrib", "ovirt-container",
                    "ovirt_container.py")
spec = importlib.util.spec_from_file_location("ovirt_container", TOOL)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


@pytest.fixture
def engine():
    e = Engine().start()
    yield e
    e.stop()


@pytest.fixture
def run(engine, monkeypatch, capsys):
    monkeypatch.setenv("OVIRT_PASSWORD", PASSWORD)

    def run(*args, url=None):
        rc = tool.main(["--url", url or engine.url, "--insecure"]
                       + list(args))
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def test_hosts_lists_those_with_the_hook(engine, run):
    engine.add_host("host1", True)
    engine.add_host("host2", False)
    assert run("hosts") == (0, "host1\n", "")


def test_sync_hosts_labels_exactly_the_capable_ones(engine, run):
    h1 = engine.add_host("host1", True)
    h2 = engine.add_host("host2", False)
    label = types.AffinityLabel(id="lbl", name=tool.LABEL)
    engine.labels["lbl"] = {"label": label, "hosts": [h2.id], "vms": []}
    rc, out, _ = run("sync-hosts")
    assert (rc, out) == (0, "host1\n")
    added = engine.sent("POST", "/ovirt-engine/api/affinitylabels/lbl/hosts")
    assert [h.id for h in added] == [h1.id]
    removed = [r["path"] for r in engine.requests if r["method"] == "DELETE"]
    assert removed == ["/ovirt-engine/api/affinitylabels/lbl/hosts/%s"
                       % h2.id]
    assert engine.labels["lbl"]["hosts"] == [h1.id]


def test_create_sends_the_container_vm(engine, run):
    engine.add_host("host1", True)
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", "disk-1", "--runtime", "runc",
                       "--image-ref", "docker.io/library/nginx:1.25",
                       "--memory", "512", "--cpus", "2", "--host", "host1",
                       "--nic", "profile-1",
                       "--volume", "disk-2:data:/var/lib/data",
                       "--command", "nginx -g 'daemon off;'",
                       "--network", "dhcp")
    assert rc == 0, err
    vm = engine.sent("POST", "/ovirt-engine/api/vms")[0]
    assert vm.name == "web" and vm.cluster.name == "Default"
    assert vm.memory == 512 * 2 ** 20
    assert vm.cpu.topology.sockets == 2
    props = {p.name: p.value for p in vm.custom_properties}
    assert props == {"containerType": "runc",
                     "containerImage": "docker.io/library/nginx:1.25",
                     "containerCommand": "nginx -g 'daemon off;'",
                     "containerNetwork": "dhcp",
                     "containerVolumes": "data:/var/lib/data"}
    assert vm.placement_policy.hosts[0].name == "host1"
    assert vm.placement_policy.affinity == types.VmAffinity.PINNED
    vm_id = out.strip()
    disks = engine.sent("POST", "/ovirt-engine/api/vms/%s/diskattachments"
                        % vm_id)
    assert [(d.disk.id, d.bootable) for d in disks] == [("disk-1", True),
                                                        ("disk-2", False)]
    nics = engine.sent("POST", "/ovirt-engine/api/vms/%s/nics" % vm_id)
    assert nics[0].vnic_profile.id == "profile-1"
    labelled = engine.sent("POST", "/ovirt-engine/api/affinitylabels/"
                           "[^/]+/vms")
    assert [v.id for v in labelled] == [vm_id]


def test_create_without_capable_host(engine, run):
    engine.add_host("host2", False)
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", "d")
    assert rc == 1 and out == ""
    assert err.startswith("ovirt-container: no container-capable host")
    assert engine.sent("POST", "/ovirt-engine/api/vms") == []


def test_list_start_stop_remove(engine, run):
    engine.add_host("host1", True)
    run("create", "web", "--cluster", "C", "--image-disk", "d")
    plain = types.Vm(id="plain", name="plain-vm",
                     status=types.VmStatus.UP, custom_properties=[])
    engine.vms["plain"] = plain
    web = [v for v in engine.vms.values() if v.name == "web"][0]
    engine.reported[web.id] = [types.ReportedDevice(
        name="eth0", ips=[types.Ip(address="192.0.2.7")])]
    assert run("start", "web")[0] == 0
    rc, out, _ = run("list")
    assert out == "web\tup\t192.0.2.7\n"
    assert run("stop", "web")[0] == 0
    assert run("remove", "web")[0] == 0
    assert web.id not in engine.vms
    actions = [r["path"].rsplit("/", 1)[1] for r in engine.requests
               if r["method"] == "POST" and r["path"].endswith(
                   ("/start", "/stop"))]
    assert actions == ["start", "stop"]


def test_bad_credentials(engine, run, monkeypatch):
    monkeypatch.setenv("OVIRT_PASSWORD", "wrong")
    rc, out, err = run("hosts")
    assert rc == 1
    assert err.startswith("ovirt-container: bad credentials for "
                          "admin@internal")
    assert len(err.splitlines()) == 1


def test_unreachable_engine(run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out, err = run("hosts", url="http://127.0.0.1:%d/ovirt-engine/api"
                       % port)
    assert rc == 1
    assert err.startswith("ovirt-container: cannot reach Engine")
    assert len(err.splitlines()) == 1

"""contrib/ovirt-container against a local fake Engine (127.0.0.1): the
exact requests it sends, read back with ovirt-engine-sdk's own reader."""

import importlib.util
import os
import socket
import uuid

import pytest

pytest.importorskip("ovirtsdk4", reason="ovirt-engine-sdk-python is not "
                    "installed (make check installs it)")

from ovirtsdk4 import types  # noqa: E402

from .engine.fake_engine import Engine, PASSWORD, Refused  # noqa: E402

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


def test_hosts_lists_those_with_the_marker(engine, run):
    engine.add_host("host1", True)
    engine.add_host("host2", False)
    # A host with only the old before_vm_start marker: vdsm ran it before
    # every VM start; mark-host moves it (test_hostmark.py).
    engine.add_host("host3", True, hook_event="before_vm_start")
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


def _hosts_rule(group):
    rule = group.hosts_rule
    return (rule.enabled, rule.enforcing, rule.positive)


def test_sync_hosts_keeps_an_enforcing_group_per_cluster(engine, run):
    # Cluster levels >= 4.4 have no implicit label groups
    # (FeatureSupported.isImplicitAffinityGroupSupported): only an
    # affinity group with a hosts rule keeps container VMs on the label's
    # hosts.
    engine.add_cluster("Edge")
    engine.add_host("host1", True)
    engine.add_host("edge1", True, cluster="Edge")
    image = engine.add_disk("busybox")
    assert run("create", "web", "--cluster", "Default",
               "--image-disk", image.id)[0] == 0
    assert run("create", "cache", "--cluster", "Edge",
               "--image-disk", image.id)[0] == 0
    plain = types.Vm(id="plain", name="plain-vm", custom_properties=[],
                     cluster=types.Cluster(id=engine.cluster("Edge").id))
    engine.vms["plain"] = plain
    label_id = next(iter(engine.labels))
    members = {}
    for cluster in ("Default", "Edge"):
        group = engine.group(cluster)[tool.GROUP]
        assert _hosts_rule(group["group"]) == (True, True, True)
        assert group["group"].vms_rule.enabled is False
        assert group["hostlabels"] == [label_id]
        members[cluster] = [engine.vms[v].name for v in group["vms"]]
    assert members == {"Default": ["web"], "Edge": ["cache"]}

    # Someone weakens the rule and drops a VM; a plain VM slips in.
    group = engine.group("Edge")[tool.GROUP]
    group["group"].hosts_rule = types.AffinityRule(
        enabled=True, enforcing=False, positive=True)
    group["vms"] = ["plain"]
    assert run("sync-hosts") == (0, "edge1\nhost1\n", "")
    group = engine.group("Edge")[tool.GROUP]
    assert _hosts_rule(group["group"]) == (True, True, True)
    assert [engine.vms[v].name for v in group["vms"]] == ["cache"]
    assert len(engine.group("Edge")) == 1       # one group, not two


def test_create_sends_the_container_vm(engine, run):
    engine.add_host("host1", True)
    image = engine.add_disk("nginx-image")
    data = engine.add_disk("data")
    profile = engine.add_profile("ovirtmgmt")
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", image.id, "--runtime", "runc",
                       "--image-ref", "docker.io/library/nginx:1.25",
                       "--memory", "512", "--cpus", "2", "--host", "host1",
                       "--nic", profile,
                       "--volume", "%s:/var/lib/data" % data.id,
                       "--command", "nginx -g 'daemon off'",
                       "--network", "dhcp")
    assert rc == 0, err
    vm = engine.sent("POST", "/ovirt-engine/api/vms")[0]
    assert vm.name == "web"
    assert vm.cluster.id == engine.cluster("Default").id
    assert vm.memory == 512 * 2 ** 20
    assert vm.cpu.topology.sockets == 2
    props = {p.name: p.value for p in vm.custom_properties}
    assert props == {"containerType": "runc",
                     "containerImage": "docker.io/library/nginx:1.25",
                     "containerCommand": "nginx -g 'daemon off'",
                     "containerNetwork": "dhcp",
                     # the disk id: the host finds it as the <serial>
                     "containerVolumes": "%s:/var/lib/data" % data.id}
    assert vm.placement_policy.hosts[0].name == "host1"
    assert vm.placement_policy.affinity == types.VmAffinity.PINNED
    vm_id = out.strip()
    disks = engine.sent("POST", "/ovirt-engine/api/vms/%s/diskattachments"
                        % vm_id)
    assert [(d.disk.id, d.bootable, bool(d.read_only)) for d in disks] == [
        (image.id, True, True), (data.id, False, False)]
    nics = engine.sent("POST", "/ovirt-engine/api/vms/%s/nics" % vm_id)
    assert nics[0].vnic_profile.id == profile
    labelled = engine.sent("POST", "/ovirt-engine/api/affinitylabels/"
                           "[^/]+/vms")
    assert [v.id for v in labelled] == [vm_id]
    assert engine.group("Default")[tool.GROUP]["vms"] == [vm_id]


@pytest.mark.parametrize("option, value, why", [
    # REST joins custom properties with ';' (CustomPropertiesParser.parse)
    ("--command", "nginx -g 'daemon off;'", "holds ';'"),
    ("--env", "A=1;B=2", "holds ';'"),
    ("--network", "static:192.0.2.10", "does not match"),
    ("--image-ref", "two words", "does not match"),
])
def test_create_refuses_what_engine_refuses(engine, run, option, value,
                                            why):
    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", image.id, option, value)
    assert (rc, out) == (1, "")
    assert err.startswith("ovirt-container: container")
    assert why in err and len(err.splitlines()) == 1
    assert engine.requests == []        # refused before any request
    # What the tool refuses, the fake Engine refuses too.
    name = {"--command": "containerCommand", "--env": "containerEnv",
            "--network": "containerNetwork",
            "--image-ref": "containerImage"}[option]
    with pytest.raises(Refused):
        engine._check_custom_properties([
            types.CustomProperty(name="containerType", value="runc"),
            types.CustomProperty(name=name, value=value)])


def test_create_volume_needs_a_disk_id_and_a_path(engine, run):
    image = engine.add_disk("busybox")
    rc, _, err = run("create", "web", "--cluster", "Default",
                     "--image-disk", image.id,
                     "--volume", "disk-2:data:/var/lib/data")
    assert rc == 1
    assert "expected DISK_ID:/PATH" in err and engine.requests == []


def test_create_end_to_end_to_the_domain_xml_vdsm_gets(engine, run):
    """The VM ovirt-container makes -> the domain XML Engine would send
    (LibvirtVmXmlBuilder's shape) -> domxml.parse finds the volumes."""
    from vdsm_container.spec import domxml

    from .engine.libvirt_xml import domain_xml

    engine.add_host("host1", True)
    image = engine.add_disk("zz-image")      # sorts last by alias
    data = engine.add_disk("data")
    logs = engine.add_disk("logs")
    mgmt = engine.add_profile("ovirtmgmt")
    backend = engine.add_profile("backend")
    empty = engine.add_profile(None)         # the empty profile
    # The MAC pool hands out descending addresses: Engine writes NICs
    # sorted by MAC (LibvirtVmXmlBuilder.writeInterfaces), not by name.
    engine.macs = ["56:6f:3a:1b:00:03", "56:6f:3a:1b:00:02",
                   "56:6f:3a:1b:00:01"]
    rc, out, err = run(
        "create", "web", "--cluster", "Default", "--image-disk", image.id,
        "--nic", mgmt, "--nic", backend, "--nic", empty,
        "--volume", "%s:/var/lib/data" % data.id,
        "--volume", "%s:/var/log/app" % logs.id,
        "--network", "none|static:192.0.2.10/24,gw=192.0.2.1|dhcp")
    assert rc == 0, err
    spec = domxml.parse(domain_xml(engine, out.strip()))
    assert spec.image_disk.serial == image.id
    assert spec.image_disk.readonly
    found = {}
    for volume in spec.volumes:
        disk, = [d for d in spec.disks if volume.disk in d.names()]
        found[volume.mount_path] = disk
    assert found["/var/lib/data"].serial == data.id
    assert found["/var/log/app"].serial == logs.id
    assert data.id in found["/var/lib/data"].path
    # NICs come in MAC order: nic3 (empty profile) first.
    assert [(n.mac, n.bridge, n.link_up) for n in spec.nics] == [
        ("56:6f:3a:1b:00:01", ";vdsmdummy;", False),
        ("56:6f:3a:1b:00:02", "backend", True),
        ("56:6f:3a:1b:00:03", "ovirtmgmt", True)]
    assert [c.mode for c in spec.ip_configs] == ["none", "static", "dhcp"]


def test_container_vms_of_one_image_share_its_disk(engine, run):
    from vdsm_container.spec import domxml

    from .engine.libvirt_xml import domain_xml

    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    ids = []
    for name in ("web1", "web2", "web3"):
        rc, out, err = run("create", name, "--cluster", "Default",
                           "--image-disk", image.id)
        assert rc == 0, err
        ids.append(out.strip())
    assert engine.disks[image.id].shareable
    made_shareable = engine.sent("PUT", "/ovirt-engine/api/disks/%s"
                                 % image.id)
    assert [d.shareable for d in made_shareable] == [True]     # once
    paths = set()
    for vm_id in ids:
        spec = domxml.parse(domain_xml(engine, vm_id))
        assert spec.image_disk.readonly
        paths.add(spec.image_disk.path)
    assert len(paths) == 1


def test_create_refuses_an_image_disk_engine_cannot_share(engine, run):
    engine.add_host("host1", True)
    image = engine.add_disk("busybox", fmt=types.DiskFormat.COW)
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", image.id)
    assert rc == 1
    assert err.startswith("ovirt-container: image disk %s can't be made "
                          "shareable" % image.id)
    assert "copy it" in err and engine.vms == {}


def test_create_leaves_no_half_made_vm(engine, run):
    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", image.id,
                       "--volume", "no-such-disk:/data")
    assert rc == 1 and "The disk doesn't exist" in err
    assert engine.vms == {} and engine.attachments == {}
    assert all(not g["vms"] for g in engine.group("Default").values())


def test_create_without_capable_host(engine, run):
    engine.add_host("host2", False)
    rc, out, err = run("create", "web", "--cluster", "Default",
                       "--image-disk", "d")
    assert rc == 1 and out == ""
    assert err.startswith("ovirt-container: no container-capable host")
    assert engine.sent("POST", "/ovirt-engine/api/vms") == []


def test_list_start_stop_remove(engine, run):
    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    assert run("create", "web", "--cluster", "Default",
               "--image-disk", image.id)[0] == 0
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


def test_create_serial_console_reaches_the_domain_xml(engine, run,
                                                      monkeypatch):
    """--serial-console: the SDK's Console(enabled=True) -> Engine's
    <console type='unix'> -> the socket the host serves."""
    from vdsm_container.spec import domxml

    from .engine.libvirt_xml import domain_xml

    monkeypatch.delenv("VDSM_CONTAINER_CONSOLE_DIR", raising=False)
    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    rc, out, err = run("create", "shell", "--cluster", "Default",
                       "--image-disk", image.id, "--serial-console")
    assert rc == 0, err
    vm = engine.sent("POST", "/ovirt-engine/api/vms")[0]
    assert vm.console.enabled is True
    vm_id = out.strip()
    assert domxml.parse(domain_xml(engine, vm_id)).console == \
        "/var/run/ovirt-vmconsole-console/%s.sock" % vm_id
    rc, out, err = run("create", "quiet", "--cluster", "Default",
                       "--image-disk", image.id)
    assert rc == 0, err
    assert engine.sent("POST", "/ovirt-engine/api/vms")[1].console is None
    assert domxml.parse(domain_xml(engine, out.strip())).console is None


def _from_template(engine, name, *data):
    """A VM made from a template of a container VM, as Engine leaves it:
    its custom properties, copies of the data disks (new ids, not
    bootable: AddVmTemplateCommand copied only the non-shareable disks),
    no image disk; pinned, as the template took the VM's migration
    support (VmBase.migrationSupport is @CopyOnNewVersion)."""
    vm = types.Vm(id=str(uuid.uuid4()), name=name,
                  placement_policy=types.VmPlacementPolicy(
                      affinity=types.VmAffinity.PINNED),
                  status=types.VmStatus.DOWN, custom_properties=[
                      types.CustomProperty(name="containerType",
                                           value="runc"),
                      types.CustomProperty(name="containerImage",
                                           value="busybox:latest")])
    engine.vms[vm.id] = vm
    engine.attachments[vm.id] = [types.DiskAttachment(
        id=d.id, disk=types.Disk(id=d.id), bootable=False, active=True)
        for d in data]
    return vm


def test_check_warns_of_container_vms_without_image_disk(engine, run):
    engine.add_host("host1", True)
    image = engine.add_disk("busybox")
    assert run("create", "web", "--cluster", "Default",
               "--image-disk", image.id)[0] == 0
    copy = engine.add_disk("data-copy")
    orphan = _from_template(engine, "web-copy", copy)
    engine.vms["plain"] = types.Vm(id="plain", name="plain-vm",
                                   custom_properties=[])
    rc, out, err = run("check")
    assert rc == 1
    assert sorted(out.splitlines()) == ["web\tok", "web-copy\tno image disk"]
    warning = err.splitlines()[0]
    assert warning.startswith("ovirt-container: warning: container VM "
                              "web-copy has no image disk (its disks: "
                              "data-copy, none bootable)"), warning
    assert "the image disk of busybox:latest is missing" in warning
    assert "/ovirt-engine/api/vms/%s/diskattachments" % orphan.id in warning
    assert "1 container VM(s) would fail to start" in err
    # With its image disk attached back as the tool attaches it: clean.
    engine.attachments[orphan.id].append(types.DiskAttachment(
        id=image.id, disk=types.Disk(id=image.id), bootable=True,
        read_only=True, active=True))
    assert run("check")[0] == 0


def test_start_refuses_a_container_vm_without_image_disk(engine, run):
    _from_template(engine, "web-copy", engine.add_disk("data-copy"))
    rc, out, err = run("start", "web-copy")
    assert rc == 1 and out == ""
    assert "has no image disk" in err and "Attach it" in err
    assert not [r for r in engine.requests if r["path"].endswith("/start")]

"""Host maintenance with container VMs (#35), against the fake Engine
(tests/engine/lifecycle.py follows Engine's code for pinned VMs,
maintenance, start, shutdown and stop): container VMs are pinned, so
Engine refuses up front what the host would refuse; ``check --fix`` pins
the others; ``drain`` and ``move`` move them by restart."""

import pytest

pytest.importorskip("ovirtsdk4", reason="ovirt-engine-sdk-python is not "
                    "installed (make check installs it)")

import ovirtsdk4 as sdk  # noqa: E402
from ovirtsdk4 import types  # noqa: E402

from . import test_ovirt_container as base  # noqa: E402
from .engine.fake_engine import PASSWORD  # noqa: E402

engine = base.engine        # the fixtures: a fake Engine, the tool run
run = base.run

MAINTENANCE_REFUSED = (
    "[Cannot switch the following Hosts to Maintenance mode: host1.\n"
    "One or more running VMs are indicated as non-migratable. The "
    "non-migratable VMs are: db , web.]")
MIGRATE_REFUSED = "[Cannot migrate VM. VM is pinned to Host.]"


def _vm(engine, name):
    return next(v for v in engine.vms.values() if v.name == name)


def _host(engine, name):
    return next(h for h in engine.hosts if h.name == name)


def _create(engine, run, *names, host=None):
    image = engine.add_disk("busybox")
    for name in names:
        extra = ["--host", host] if host else []
        rc, _, err = run("create", name, "--cluster", "Default",
                         "--image-disk", image.id, *extra)
        assert rc == 0, err
    return [_vm(engine, n) for n in names]


@pytest.fixture
def system(engine):
    conn = sdk.Connection(url=engine.url, username="admin@internal",
                          password=PASSWORD, insecure=True)
    yield conn.system_service()
    conn.close()


def _fault(call):
    with pytest.raises(sdk.Error) as e:
        call()
    return e.value.fault.detail


def test_create_pins_every_container_vm(engine, run):
    engine.add_host("host1", True)
    _create(engine, run, "web")
    policy = engine.sent("POST", "/ovirt-engine/api/vms")[0].placement_policy
    assert policy.affinity == types.VmAffinity.PINNED
    assert policy.hosts is None


def test_engine_refuses_maintenance_and_migrate_of_pinned_vms(
        engine, run, system):
    """MaintenanceNumberOfVdssCommand.validate and VmValidator.canMigrate,
    each with its message; a pinned VM with no host list starts on any
    host (PinToHostPolicyUnit)."""
    h1 = engine.add_host("host1", True)
    engine.add_host("host2", True)
    web, db = _create(engine, run, "web", "db")
    engine.life.run(web, h1)
    engine.life.run(db, h1)
    host1 = system.hosts_service().host_service(h1.id)
    assert _fault(host1.deactivate) == MAINTENANCE_REFUSED
    assert h1.status == types.HostStatus.UP
    vm = system.vms_service().vm_service(web.id)
    assert _fault(vm.migrate) == MIGRATE_REFUSED
    assert engine.life.host(web.host) is h1
    # Down, both go elsewhere: host1 is in maintenance once empty.
    for v in (web, db):
        system.vms_service().vm_service(v.id).stop()
    host1.deactivate()
    assert host1.get().status == types.HostStatus.MAINTENANCE
    assert run("start", "web")[0] == 0
    assert engine.life.host(web.host).name == "host2"
    assert web.status == types.VmStatus.UP


def test_a_migratable_container_vm_keeps_its_host_preparing(
        engine, run, system):
    """What pinning avoids: Engine accepts the maintenance, the
    container VM's migration fails, the host never gets there."""
    h1 = engine.add_host("host1", True)
    engine.add_host("host2", True)
    web, = _create(engine, run, "web")
    web.placement_policy = types.VmPlacementPolicy(
        affinity=types.VmAffinity.MIGRATABLE)
    engine.life.run(web, h1)
    host1 = system.hosts_service().host_service(h1.id)
    host1.deactivate()
    assert host1.get().status == types.HostStatus.PREPARING_FOR_MAINTENANCE
    assert "Migration failed while Host is in 'preparing for maintenance'" \
        in engine.life.events[-1].description


def test_check_lists_vms_not_pinned_and_fix_pins_them(engine, run, system):
    h1 = engine.add_host("host1", True)
    engine.add_host("host2", True)
    web, db, cache = _create(engine, run, "web", "db", "cache")
    # Made before #35: migratable; one with a dedicated host.
    web.placement_policy = None
    db.placement_policy = types.VmPlacementPolicy(
        affinity=types.VmAffinity.MIGRATABLE, hosts=[types.Host(id=h1.id)])
    engine.life.run(web, h1)
    rc, out, err = run("check")
    assert rc == 1
    assert sorted(out.splitlines()) == ["cache\tok", "db\tnot pinned",
                                        "web\tnot pinned"]
    assert "ovirt-container: warning: container VM db is migratable, not " \
        "pinned: Engine will try to migrate it" in err
    assert err.splitlines()[-1] == "ovirt-container: 2 container VM(s) " \
        "not pinned"
    assert engine.sent("PUT", r"/ovirt-engine/api/vms/.*") == []

    rc, out, err = run("check", "--fix")
    assert (rc, err) == (0, "")
    assert sorted(out.splitlines()) == ["cache\tok", "db\tpinned now",
                                        "web\tpinned now"]
    assert db.placement_policy.affinity == types.VmAffinity.PINNED
    assert [h.id for h in db.placement_policy.hosts] == [h1.id]
    assert web.placement_policy.hosts is None
    # Running web is pinned at once: Engine refuses the maintenance.
    host1 = system.hosts_service().host_service(h1.id)
    assert "The non-migratable VMs are: web." in _fault(host1.deactivate)
    assert run("check") == (0, "web\tok\ndb\tok\ncache\tok\n", "")

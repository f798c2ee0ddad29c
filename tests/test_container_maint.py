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


# drain and move.  Bounds in seconds are 0 or large: what ends a wait is
# the fake's state after so many reads, never the clock.

FAST = ["--poll", "0", "--shutdown-timeout", "60", "--start-timeout", "60",
        "--maintenance-timeout", "60"]


def _three_hosts(engine):
    """host1 and host2 run containers; host3 does not (no marker)."""
    return (engine.add_host("host1", True), engine.add_host("host2", True),
            engine.add_host("host3", False))


def _slow(engine):
    """Engine's statuses take a few reads to change, as they take time."""
    engine.life.start_reads = 2
    engine.life.shutdown_reads = 1
    engine.life.maintenance_reads = 1


def _actions(engine, vm=None):
    """The actions sent (vm: that VM's), in order, as (object, verb)."""
    found = []
    for r in engine.requests:
        parts = r["path"].split("/")
        if r["method"] == "POST" and len(parts) == 6 and \
                parts[3] in ("vms", "hosts") and parts[5] in (
                    "start", "stop", "shutdown", "migrate", "deactivate"):
            name = (engine.vms.get(parts[4]) or _by_id(engine, parts[4])).name
            if vm is None or name == vm:
                found.append((name, parts[5]))
    return found


def _by_id(engine, host_id):
    return next(h for h in engine.hosts if h.id == host_id)


def test_drain_moves_container_vms_and_puts_the_host_in_maintenance(
        engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, db = _create(engine, run, "web", "db")
    for vm in (web, db):
        engine.life.run(vm, h1)
    _slow(engine)
    rc, out, err = run("drain", "host1", *FAST)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "host1: 2 container VM(s) to move: web, db",
        "web: shutting down on host1", "web: down (shut down)",
        "db: shutting down on host1", "db: down (shut down)",
        "host1: maintenance",
        "web: up on host2", "db: up on host2",
        "summary: 2 moved, 0 failed",
        "moved: web host1 -> host2", "moved: db host1 -> host2"]
    assert h1.status == types.HostStatus.MAINTENANCE
    for vm in (web, db):
        assert (vm.status, engine.life.host(vm.host)) == (types.VmStatus.UP,
                                                          h2)
    assert _actions(engine) == [("web", "shutdown"), ("db", "shutdown"),
                                ("host1", "deactivate"), ("web", "start"),
                                ("db", "start")]


def test_drain_powers_off_a_vm_that_does_not_shut_down(engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, db = _create(engine, run, "web", "db")
    for vm in (web, db):
        engine.life.run(vm, h1)
    engine.life.ignore_shutdown = {"db"}
    args = FAST[:]
    args[args.index("--shutdown-timeout") + 1] = "0"
    rc, out, err = run("drain", "host1", *args)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert "db: still powering_down after 0s: powering it off" in lines
    assert "db: down (powered off)" in lines
    assert "moved: db host1 -> host2" in lines
    assert _actions(engine, "db") == [("db", "shutdown"), ("db", "stop"),
                                      ("db", "start")]
    assert engine.life.host(db.host) is h2


def test_drain_reports_a_start_failing_on_the_target(engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, = _create(engine, run, "web")
    engine.life.run(web, h1)
    _slow(engine)
    engine.life.fail_on = {"host2": "container image disk not found"}
    rc, out, err = run("drain", "host1", *FAST)
    assert rc == 1
    assert err == "ovirt-container: 1 VM(s) not moved\n"
    reason = ("down: VM web is down with error. Exit message: container "
              "image disk not found.; Failed to run VM web (User: "
              "admin@internal-authz).")
    assert "web: %s" % reason in out.splitlines()
    assert out.splitlines()[-2:] == ["summary: 0 moved, 1 failed",
                                     "failed: web: %s" % reason]
    assert web.status == types.VmStatus.DOWN
    assert h1.status == types.HostStatus.MAINTENANCE
    assert _actions(engine, "web").count(("web", "start")) == 1


def test_drain_dry_run_changes_nothing(engine, run):
    h1, _, _ = _three_hosts(engine)
    web, = _create(engine, run, "web")
    engine.life.run(web, h1)
    before = len(engine.requests)
    rc, out, err = run("drain", "host1", "--dry-run", *FAST)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "host1: 1 container VM(s) to move: web",
        "web: would shut down (power off after 60s), then start on one of "
        "host2 (Engine's scheduler)",
        "host1: would go into maintenance"]
    sent = [(r["method"], r["path"]) for r in engine.requests[before:]]
    assert {m for m, p in sent if "/api/" in p} == {"GET"}
    assert (web.status, h1.status) == (types.VmStatus.UP,
                                       types.HostStatus.UP)


def test_drain_refuses_with_nowhere_to_go(engine, run):
    h1 = engine.add_host("host1", True)
    engine.add_host("host2", False)
    web, = _create(engine, run, "web")
    engine.life.run(web, h1)
    rc, out, err = run("drain", "host1", *FAST)
    assert (rc, out) == (1, "")
    assert err == "ovirt-container: no other container-capable host is " \
        "up: the container VMs of host1 (web) would stay down\n"
    assert _actions(engine) == []


def test_drain_refuses_vms_pinned_to_the_host(engine, run):
    """A VM made with --host runs on that host only (PinToHost): the
    drain would leave it down, so nothing is done."""
    h1, _, _ = _three_hosts(engine)
    web, = _create(engine, run, "web", host="host1")
    cache, = _create(engine, run, "cache")
    for vm in (web, cache):
        engine.life.run(vm, h1)
    rc, out, err = run("drain", "host1", *FAST)
    assert (rc, out) == (1, "")
    assert err == "ovirt-container: web pinned to host1 (create --host): " \
        "Engine starts them on no other host up (PinToHost); pin them " \
        "elsewhere or stop them first\n"
    assert _actions(engine) == []


def test_a_start_whose_answer_is_lost_is_not_sent_again(engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, db = _create(engine, run, "web", "db")
    for vm in (web, db):
        engine.life.run(vm, h1)
    _slow(engine)
    engine.life.lose_start_reply = {"web", "db"}
    engine.life.start_reads = 3
    args = FAST[:]
    rc, out, err = run("drain", "host1", *args)
    assert rc == 0, out + err
    assert "web: start sent, Engine's answer lost (proxy error): waiting, " \
        "not sending it again" in out.splitlines()
    assert "web: up on host2" in out.splitlines()
    # Back on host1, not waited for: still powering up when the tool
    # stops waiting; reported, and not started again.
    args[args.index("--start-timeout") + 1] = "0"
    h1.status = types.HostStatus.UP
    rc, out, err = run("move", "web", "--to", "host1", *args)
    assert rc == 1
    assert out.splitlines()[-1] == "failed: web: powering_up after 0s: " \
        "its start was sent once and is not sent again; Engine may still " \
        "bring it up: watch it"
    for vm in ("web", "db"):
        starts = [a for a in _actions(engine, vm) if a[1] == "start"]
        assert len(starts) == 1 + (vm == "web")     # one per command


def test_move_starts_the_vm_on_the_named_host(engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, = _create(engine, run, "web")
    engine.life.run(web, h1)
    _slow(engine)
    rc, out, err = run("move", "web", "--to", "host2", *FAST)
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "web: shutting down on host1", "web: down (shut down)",
        "web: up on host2", "summary: 1 moved, 0 failed",
        "moved: web host1 -> host2"]
    start = engine.sent("POST", "/ovirt-engine/api/vms/%s/start" % web.id)
    assert [h.id for h in start[0].vm.placement_policy.hosts] == [h2.id]
    assert engine.life.host(web.host) is h2
    # Refused before anything changes.
    for host, why in (("host3", "host host3 can't run containers"),
                      ("nohost", "no host named nohost")):
        assert run("move", "web", "--to", host, *FAST) == (
            1, "", "ovirt-container: %s\n" % why)
    h1.status = types.HostStatus.MAINTENANCE
    assert run("move", "web", "--to", "host1", *FAST)[2] == \
        "ovirt-container: host host1 is maintenance, not up\n"
    assert _actions(engine) == [("web", "shutdown"), ("web", "start")]


def test_move_reports_the_target_refusing_it(engine, run):
    h1, h2, _ = _three_hosts(engine)
    web, = _create(engine, run, "web")
    engine.life.run(web, h1)
    engine.life.fail_on = {"host2": "no space left on device"}
    rc, out, err = run("move", "web", "--to", "host2", *FAST)
    assert rc == 1
    assert out.splitlines()[-1] == (
        "failed: web: down: VM web is down with error. Exit message: no "
        "space left on device.; Failed to run VM web (User: "
        "admin@internal-authz).")
    assert web.status == types.VmStatus.DOWN
    assert _actions(engine) == [("web", "shutdown"), ("web", "start")]


def test_an_engine_error_fails_that_vm_only(engine, run):
    """Engine fails every read of web after its shutdown was sent: web is
    reported, nothing more is sent for it; db moves."""
    h1, h2, _ = _three_hosts(engine)
    web, db = _create(engine, run, "web", "db")
    for vm in (web, db):
        engine.life.run(vm, h1)

    def broken(method, parts, query, body):
        if method == "GET" and parts == ["vms", web.id] and \
                _actions(engine, "web"):
            raise base.Refused(500, "Internal Server Error", "boom")
    engine.routes.insert(0, broken)
    rc, out, err = run("drain", "host1", *FAST)
    assert (rc, err) == (1, "ovirt-container: 1 VM(s) not moved; host not "
                         "in maintenance\n")
    lines = out.splitlines()
    assert "web: Engine error, its state unknown: boom (see it in Engine; " \
        "nothing more is sent for it)" in lines
    assert "moved: db host1 -> host2" in lines
    assert _actions(engine, "web") == [("web", "shutdown")]

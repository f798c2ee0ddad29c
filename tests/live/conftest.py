"""The live host: vdsmd (user vdsm), supervdsmd and libvirtd, driven over
JSON-RPC on port 54321 with vdsm's own client, as Engine drives a host.

``make check-live`` sets the host up (tests/live/setup-host), starts the
daemons (tests/live/services) and runs these tests with Debian's python3,
which reaches the vdsm snapshot installed by setup-host.  Elsewhere (plain
``make check``, or a host that was not set up) they skip, saying why.
"""

import os
import queue
import shlex
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from ..engine import libvirt_xml
from .plainvm import plain_vm_name, plain_vm_xml

try:
    from vdsm import client
except ImportError as e:    # pragma: no cover - depends on the host
    pytest.skip("vdsm is not importable (%s): run `make check-live`, which "
                "sets up the live host" % e, allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVICES = os.path.join(HERE, "services")
BUILD_IMAGE = os.path.join(REPO, "contrib", "build-busybox-image")
BUILD_ACI = os.path.join(REPO, "contrib", "build-busybox-aci")
VDSM_LOG = "/var/log/vdsm/vdsm.log"
RUN_DIR = "/run/vdsm-container"       # config.Paths' default, as installed
STORAGE_DIR = "/var/lib/vdsm-container"     # the same

VM_NS = "http://ovirt.org/vm/1.0"
TUNE_NS = "http://ovirt.org/vm/tune/1.0"
ET.register_namespace("ovirt-vm", VM_NS)
ET.register_namespace("ovirt-tune", TUNE_NS)

# Commands for the container's PID 1.  As PID 1, a process without a
# handler ignores SIGTERM: ``STUBBORN`` never stops on it.
# No ';' or newline in a command: Engine's separator between custom
# properties (CustomPropertiesUtils), refused by containerCommand's regex.
POLITE = ["sh", "-c", 'sleep 100000 & trap "exit 0" TERM && wait']
STUBBORN = ["sleep", "100000"]

# How long a state change may take before a test calls it missing (a bound
# for failures, not a timing assertion).
WAIT = float(os.environ.get("LIVE_WAIT", "60"))

if not os.path.exists("/usr/libexec/vdsm-container/vdsmd-containers"):
    pytest.skip("the live host is not set up: run `make check-live`",
                allow_module_level=True)

from . import storage  # noqa: E402 (it imports vdsm's client)


def services(*args):
    subprocess.run([SERVICES] + list(args), check=True)


# How long one ping may go unanswered before the connection is dropped and
# a new one tried.  A vdsmd that has just started listens before its reactor
# runs (clientIF.__init__ creates the acceptor; clientIF.start starts the
# reactor), so a first request may wait; a busy CI machine once saw one
# never answered on its connection while vdsmd went on starting.
PING_TIMEOUT = 10


def connect():
    """A client once vdsm answers (99 while it recovers after a start)."""
    deadline = time.monotonic() + WAIT
    while True:
        cli = None
        try:
            cli = client.connect("localhost", 54321, use_tls=False)
            cli.Host.ping2(_timeout=PING_TIMEOUT)
            return cli
        except (client.ServerError, client.ConnectionError,
                client.TimeoutError) as e:
            if cli is not None:
                cli.close()
            if time.monotonic() > deadline:
                raise AssertionError("vdsm never answered within %ds: %s"
                                     % (WAIT, e)) from e
            time.sleep(0.5)


class Events:
    """``jms.queue.events`` as Engine receives it, on a client of its own."""

    def __init__(self):
        self._queue = queue.Queue()
        self._seen = []
        self._lock = threading.Lock()
        self.client = None
        self.subscribe()

    def subscribe(self):
        """(Again) after vdsmd restarts: a new connection."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = connect()
        self.client.subscribe("jms.queue.events", self._queue)

    def _drain(self):
        with self._lock:
            while True:
                try:
                    item = self._queue.get_nowait()
                    if item is not None:    # None: the connection closed
                        self._seen.append(item)
                except queue.Empty:
                    return

    def statuses(self, vm_id):
        """Every VM_status event's status for ``vm_id``, in order."""
        self._drain()
        return [params[vm_id] for method, params in self._seen
                if method == "|virt|VM_status|%s" % vm_id]

    def wait_status(self, vm_id, status, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for st in self.statuses(vm_id):
                if st["status"] == status:
                    return st
            time.sleep(0.1)
        raise AssertionError("no %s event for %s; saw %s" % (
            status, vm_id, [s["status"] for s in self.statuses(vm_id)]))


def _quote(word):
    return shlex.quote(word)


def container_xml(vm_id, name, image, command, custom=None, bridge=None,
                  volumes=None, dc=None, serial_console=False):
    """Engine's domain XML for a container VM (LibvirtVmXmlBuilder, run by
    tests/engine/libvirt_xml.py), its custom properties validated by
    Engine against what the engine-config tool writes; with ``bridge``, a
    NIC on that bridge; with ``serial_console``, Engine's console.

    ``volumes`` ({target dev: (imageID, volumeID[, DataCenter])}, on
    ``dc`` unless another is named): the disks are volumes of those data
    domains, as Engine writes them (source path and ``ovirt-vm:device``
    ids; vdsm's prepareVolumePath resolves them); sda is the image disk,
    the others are mounted where ``containerVolumes`` says.

    Without ``volumes`` the image disk is the plain file ``image``: an edit
    of Engine's XML Engine never makes (its disks are always volumes), made
    because the host's image is no volume of a domain; the disk's
    ``ovirt-vm:device`` ids go, and vdsm's ``clientIF.prepareVolumePath``
    takes such a path as it is.  Volumes of real domains: test_storage.py."""
    values = {"containerType": "runc", "containerImage": "busybox:latest",
              "containerCommand": " ".join(_quote(w) for w in command),
              "containerEnv": "TZ=UTC"}
    values.update(custom or {})
    disks = []
    pool = None
    for dev, spec in sorted((volumes or {"sda": None}).items()):
        if spec is None:
            disks.append(libvirt_xml.disk(boot=True, alias="image"))
            continue
        img_id, vol_id = spec[:2]
        where = spec[2] if len(spec) > 2 else dc
        pool = pool or where.pool_id
        disks.append(libvirt_xml.disk(
            disk_id=img_id, image_id=vol_id, domain_id=where.sd_id,
            block=where.block, boot=dev == "sda", alias="disk-" + dev))
    nics = [libvirt_xml.nic(_mac(vm_id), bridge)] if bridge else []
    xml = libvirt_xml.vm_xml(libvirt_xml.container(
        vm_id, name, sorted(values.items()), disks, nics,
        serial_console=serial_console,
        **({"poolId": pool} if pool else {})))
    if volumes:
        return xml
    root = ET.fromstring(xml)
    disk = [d for d in root.find("devices").findall("disk")
            if d.get("device") == "disk"][0]
    disk.find("source").set("file", image)
    md = root.find("metadata/{%s}vm" % VM_NS)
    for dev in md.findall("{%s}device" % VM_NS):
        if dev.get("devtype") == "disk":
            md.remove(dev)
    return ET.tostring(root, encoding="unicode")


def _mac(vm_id):
    """A locally administered MAC per VM (Engine's pools hand out such)."""
    return "56:6f:%s:%s:%s:%s" % (vm_id[0:2], vm_id[2:4], vm_id[4:6],
                                  vm_id[6:8])


# The daemons' logs a failing test's report carries: what they wrote while
# the test ran (its tail), so that a failure on a CI machine, whose logs are
# gone with it, can be read from the report alone.
DAEMON_LOGS = (VDSM_LOG, "/var/log/vdsm/supervdsm.log")
LOG_TAIL_LINES = 200


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _written_since(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(unreadable: %s)" % e
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


@pytest.fixture(autouse=True)
def _daemon_log_offsets(request):
    request.node.daemon_log_offsets = {p: _size(p) for p in DAEMON_LOGS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    offsets = getattr(item, "daemon_log_offsets", None)
    if report.failed and offsets:
        for path, offset in offsets.items():
            report.sections.append(
                ("%s while the test ran (last %d lines)"
                 % (path, LOG_TAIL_LINES), _written_since(path, offset)))


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The busybox OCI archive, as an admin uploads it as the image disk."""
    path = str(tmp_path_factory.mktemp("live-images") / "busybox-oci.tar")
    subprocess.run([BUILD_IMAGE, path], check=True)
    return path


@pytest.fixture(scope="session")
def aci_image(tmp_path_factory):
    """busybox as an ACI (actool), the image disk of an rkt container."""
    path = str(tmp_path_factory.mktemp("live-images") / "busybox.aci")
    subprocess.run([BUILD_ACI, path], check=True)
    return path


@pytest.fixture(scope="session")
def events():
    ev = Events()
    yield ev
    ev.client.close()


@pytest.fixture
def cli(events):
    c = connect()
    yield c
    c.close()


class Made:
    """What a test created through vdsm; destroyed when the test ends."""

    def __init__(self, cli, events, image):
        self.cli = cli
        self.events = events
        self.image = image
        self.vm_ids = []

    def container(self, command=POLITE, wait_up=True, custom=None,
                  image=None, bridge=None):
        vm_id = str(uuid.uuid4())
        xml = container_xml(vm_id, "live-%s" % vm_id[:8],
                            image or self.image, command, custom, bridge)
        self.vm_ids.append(("container", vm_id))
        created = self.cli.VM.create(vmID=vm_id, vmParams={"xml": xml})
        assert created["vmId"] == vm_id
        if wait_up:
            self.events.wait_status(vm_id, "Up")
        return vm_id

    def plain_vm(self):
        vm_id = str(uuid.uuid4())
        self.vm_ids.append(("vm", vm_id))
        self.cli.VM.create(vmID=vm_id, vmParams={"xml": plain_vm_xml(vm_id)})
        return vm_id

    def cleanup(self):
        """Destroy through vdsm; where vdsm fails, by hand (the plugin's
        command as root, or virsh), then report vdsm's failure."""
        failures = []
        cli = connect()     # the test may have restarted vdsmd
        for kind, vm_id in self.vm_ids:
            try:
                cli.VM.destroy(vmID=vm_id)
                continue
            except client.ServerError as e:
                if e.code == 1:     # noVM: already gone
                    continue
                failures.append("VM.destroy %s: %s" % (vm_id, e))
            if kind == "container":
                subprocess.run(["vdsm-container", "destroy", vm_id],
                               stdout=subprocess.DEVNULL)
            else:
                name = plain_vm_name(vm_id)
                subprocess.run(["virsh", "destroy", name],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                subprocess.run(["virsh", "undefine", name],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        cli.close()
        assert failures == []


@pytest.fixture(scope="module")
def dc():
    """A data center with this host its SPM (tests/live/storage.py), one
    per test module; gone at the module's end with nothing left prepared."""
    fs = storage.LocalFS()
    cli = connect()
    center = storage.DataCenter(cli, fs.path)
    try:
        center.build()
        yield center
    finally:
        try:
            finish_dc(center, cli)
        finally:
            fs.remove()


def finish_dc(center, cli):
    """A data center fixture's teardown: SPM stopped, pool and storage
    server disconnected (``center.destroy``), its connection closed; then
    the domain's run directory (the parent of vdsm's sd.py
    getImageRundir) must be empty: every image link in it gone with the
    tests' teardowns, nothing left prepared."""
    try:
        center.destroy()
    finally:
        cli.close()
    rundir = os.path.join(storage.RUN_STORAGE, center.sd_id)
    if os.path.isdir(rundir):
        assert os.listdir(rundir) == []
        os.rmdir(rundir)


@pytest.fixture
def made(cli, events, image):
    m = Made(cli, events, image)
    yield m
    m.cleanup()


def vm_list(cli):
    return {v["vmId"]: v for v in cli.Host.getVMList(onlyUUID=False)}


def stats(cli, vm_id):
    return cli.VM.getStats(vmID=vm_id)[0]


def wait_stats(cli, vm_id, status, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        st = stats(cli, vm_id)
        if st["status"] == status:
            return st
        if time.monotonic() > deadline:
            raise AssertionError("%s is %s, never %s" % (
                vm_id, st["status"], status))
        time.sleep(0.2)

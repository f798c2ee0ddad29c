"""The rkt driver against a real rkt 1.30: the one installed, else the one
contrib/build-rkt builds from ../shared/vendor/rkt (``make`` passes its path
in VDSM_CONTAINER_TEST_RKT).  Pods run with stage1 host (the host's
systemd-nspawn); images are ACIs built with Debian's actool.

tests/test_rkt.py keeps the scripted double for what a real rkt can't be
made to do on demand (a failing ``rkt version``, a pod that ignores
``rkt stop``) and for the exact command lines.
"""

import glob
import os
import shutil
import subprocess
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.container import Container, create
from vdsm_container.host.backend import HostBackend
from vdsm_container.runtimes import proc, rkt, rktpod
from vdsm_container.spec import domxml
from .conftest import bundle_of, driver_of

HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


@pytest.fixture(scope="session")
def rkt_binary():
    path = os.environ.get("VDSM_CONTAINER_TEST_RKT") or shutil.which("rkt")
    if path:
        return path
    out = subprocess.run([os.path.join(HERE, "..", "contrib", "build-rkt")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if out.returncode != 0:
        pytest.fail("no rkt: %s" % out.stderr.strip())
    return out.stdout.strip()


@pytest.fixture(scope="module")
def real_rkt(rkt_binary):
    """The driver's rkt for the whole module: set per test (monkeypatch),
    it would be gone when ``paths`` destroys what a failed test left."""
    before = os.environ.get("VDSM_CONTAINER_RKT")
    os.environ["VDSM_CONTAINER_RKT"] = rkt_binary
    yield rkt_binary
    if before is None:
        del os.environ["VDSM_CONTAINER_RKT"]
    else:
        os.environ["VDSM_CONTAINER_RKT"] = before


@pytest.fixture(scope="session")
def aci(tmp_path_factory):
    """busybox as an ACI, built and validated with actool
    (contrib/build-busybox-aci; gzipped, as ``actool build`` writes it),
    with garbage after it, as on a volume rounded up to whole extents."""
    image = tmp_path_factory.mktemp("aci") / "busybox.aci"
    subprocess.run([os.path.join(HERE, "..", "contrib", "build-busybox-aci"),
                    str(image)], check=True)
    with open(image, "ab") as f:
        f.write(os.urandom(8192))
    return str(image)


def xml(image, command, insecure=True, memory_mib=128, vcpus=1):
    custom = {"containerInsecure": "true"} if insecure else {}
    return domxml.build(str(uuid.uuid4()), "rkt-vm", "rkt", image,
                        memory_mib=memory_mib, vcpus=vcpus,
                        command=list(command), custom=custom)


def wait_status(ctr, status, timeout=300):
    deadline = time.monotonic() + timeout
    while ctr.refresh() != status and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ctr.lastStatus == status
    return ctr.getStats()


def rkt_pods(paths):
    out = proc.run([os.environ["VDSM_CONTAINER_RKT"],
                    "--dir=" + paths.runtime_root("rkt"), "list",
                    "--no-legend", "--full"])
    return [line.split()[0] for line in out.stdout.splitlines()
            if line.strip()]


def pod_cgroups(pod):
    """Cgroups anywhere under /sys/fs/cgroup named after pod ``pod``
    (systemd escapes its dashes), in the hierarchies nspawn and the pod's
    systemd use."""
    escaped = pod.replace("-", "\\x2d")
    found = []
    for top in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        for depth in ("*", "*/*", "*/*/*"):
            found += [p for p in glob.glob(os.path.join(top, depth))
                      if pod in p or escaped in p]
    return found


def hidden_cgroup_counts():
    """The controllers a v1 hierarchy that is mounted nowhere on the host
    holds (/proc/cgroups; such a hierarchy keeps them from cgroup v2), and
    how many cgroups are there: where stage1 host leaves its pods'."""
    mounted = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.partition(" - ")[2].split()
            if fields and fields[0] == "cgroup":
                mounted.update(fields[-1].split(","))
    with open("/proc/cgroups") as f:
        rows = [line.split() for line in f.read().splitlines()[1:]]
    return {name: int(count) for name, hid, count, _ in rows
            if hid != "0" and name not in mounted}


def app_pids(ctr):
    """The pod's processes: everything in the cgroup the driver made."""
    h = ctr.backend.hierarchy
    rel = driver_of(ctr).cgroup_path(bundle_of(ctr))
    pids = set()
    for dirpath, _, _ in os.walk(h.path(rel, "memory")):
        with open(os.path.join(dirpath, "cgroup.procs")) as f:
            pids.update(int(p) for p in f.read().split())
    return pids


def test_probe_finds_the_real_rkt(real_rkt, paths):
    a = rkt.Driver.probe(paths)
    assert a.available, a.reason
    assert a.version.startswith("1.30.0")
    assert "stage1 host" in a.reason


def test_unsigned_image_refused_unless_insecure(real_rkt, paths, aci):
    ctr = Container.from_xml(xml(aci, ["true"], insecure=False),
                             paths=paths)
    with pytest.raises(errors.CannotCreateVM) as e:
        ctr.run()
    assert "signature" in str(e.value)
    assert ctr.lastStatus == constants.DOWN
    assert rkt_pods(paths) == []


def test_lifecycle_limits_stats(real_rkt, paths, aci):
    """create -> Up; the pod's processes (nspawn, the pod's systemd, the
    app) are held to the VM's memory and CPU limits; getStats reads the
    pod's cgroup; destroy leaves no pod, cgroup (also none in the v1
    hierarchies only the pod mounted) or mount."""
    hidden = hidden_cgroup_counts()
    ctr = create(xml(aci, ["sh", "-c", "echo started; sleep 1000"],
                     memory_mib=96, vcpus=2), paths=paths)
    assert ctr.lastStatus == constants.UP
    pod = open(os.path.join(bundle_of(ctr).dir, "rkt.uuid")).read()
    assert rkt_pods(paths) == [pod]
    wait_output(ctr, "started")
    pids = app_pids(ctr)
    sleeper = [p for p in pids if open("/proc/%d/cmdline" % p).read()
               .split("\0")[0] in ("sleep", "/bin/sleep")]
    assert sleeper, "the app is not in the pod's cgroup: %s" % pids
    h = ctr.backend.hierarchy
    limit = rktpod.limits(ctr.spec)
    assert limit == (96 * 1024 ** 2, 200000, 100000)
    assert rktpod.unapplied(h, sleeper[0], limit) == []
    ctr.sample()
    time.sleep(0.2)
    ctr.sample()
    stats = ctr.getStats()
    assert stats["status"] == "Up"
    assert int(stats["memUsage"]) > 0
    assert stats["cpuActual"] is True
    ctr.destroy()
    assert rkt_pods(paths) == []
    assert pod_cgroups(pod) == []
    # Those only the pod's stage1 mounted (hybrid hosts), seen by count,
    # and the host's cgroup shape (which hierarchy has which controller)
    # as before: the kernel frees a removed cgroup after its rmdir
    # returns (a bound for a failure, not a timing).
    deadline = time.monotonic() + 10
    while hidden_cgroup_counts() != hidden and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hidden_cgroup_counts() == hidden
    for p in pids:
        assert not os.path.exists("/proc/%d" % p) or \
            "Z" in open("/proc/%d/stat" % p).read().rsplit(")", 1)[1][:3]


def test_memory_limit_really_applied(real_rkt, paths, aci):
    """busybox tail keeps /dev/zero (no newline) in memory: the kernel
    kills it at the VM's limit, and the VM goes Down with an error."""
    ctr = create(xml(aci, ["tail", "/dev/zero"], memory_mib=32),
                 paths=paths)
    stats = wait_status(ctr, constants.DOWN)
    assert stats["exitCode"] == constants.ERROR
    ctr.destroy()


@pytest.mark.parametrize("command,code,text", [
    (["true"], constants.NORMAL, "status 0"),
    (["sh", "-c", "exit 3"], constants.ERROR, "status 3"),
])
def test_exit_status_to_down_reason(real_rkt, paths, aci, command, code,
                                    text):
    ctr = create(xml(aci, command), paths=paths)
    stats = wait_status(ctr, constants.DOWN)
    assert stats["exitCode"] == code
    assert text in stats["exitMessage"]
    ctr.destroy()
    assert rkt_pods(paths) == []


def wait_output(ctr, text, timeout=300):
    """The pod is Up once rkt reports it running; its app starts a moment
    later (the pod's systemd starts it)."""
    deadline = time.monotonic() + timeout
    while text not in open(bundle_of(ctr).log_path).read():
        assert time.monotonic() < deadline, "the app's output never came"
        time.sleep(0.1)


def test_shutdown_is_graceful(real_rkt, paths, aci):
    ctr = create(xml(aci, ["sh", "-c", "trap 'exit 0' TERM; echo ready; "
                           "while :; do sleep 0.1; done"]), paths=paths)
    wait_output(ctr, "ready")
    ctr.shutdown()
    stats = wait_status(ctr, constants.DOWN)
    assert stats["exitCode"] == constants.NORMAL
    ctr.destroy()
    assert rkt_pods(paths) == []


def test_recovered_by_a_new_process_view(real_rkt, paths, aci):
    ctr = create(xml(aci, ["sleep", "1000"]), paths=paths)
    again = Container.load(ctr.id, paths=paths)
    assert again.refresh() == constants.UP
    again.destroy()
    assert rkt_pods(paths) == []


@pytest.fixture(scope="session")
def signed_aci(aci, tmp_path_factory):
    """The busybox ACI signed with a throw-away GPG key, on a volume as a
    plain tar of busybox.aci and busybox.aci.asc; and that key (armored).
    gpg starts an agent for the key's home, which outlives gpg: it is
    stopped at the end, so the suite leaves no process behind."""
    d = tmp_path_factory.mktemp("signed")
    home = d / "gnupg"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    subprocess.run(gpg + ["--quick-gen-key", "vdsm-container test "
                          "<test@example.com>", "rsa2048", "sign", "never"],
                   env=env, check=True)
    key = d / "key.gpg"
    with open(key, "wb") as f:
        subprocess.run(gpg + ["--armor", "--export"], env=env, check=True,
                       stdout=f)
    image = d / "busybox.aci"
    with open(aci, "rb") as src, open(image, "wb") as out:
        # Without the volume's tail: the signature covers the archive.
        data = src.read()
        out.write(data[:len(data) - 8192])
    subprocess.run(gpg + ["--armor", "--detach-sign", "--output",
                          str(image) + ".asc", str(image)], env=env,
                   check=True)
    volume = d / "volume.tar"
    subprocess.run(["tar", "-cf", str(volume), "-C", str(d), "busybox.aci",
                    "busybox.aci.asc"], check=True)
    with open(volume, "ab") as f:
        f.write(os.urandom(8192))
    yield str(volume), str(key)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=True)


def test_signed_image_runs_once_its_key_is_trusted(real_rkt, paths,
                                                   signed_aci, tmp_path,
                                                   monkeypatch):
    """Secure by default: a signed image whose key rkt's trust store lacks
    is refused; once ``rkt trust`` has the key for its name, it runs."""
    volume, key = signed_aci
    config = tmp_path / "rkt-config"
    config.mkdir()
    monkeypatch.setenv("VDSM_CONTAINER_RKT_CONFIG", str(config))
    ctr = Container.from_xml(xml(volume, ["sleep", "1000"], insecure=False),
                             paths=paths)
    with pytest.raises(errors.CannotCreateVM):
        ctr.run()
    assert rkt_pods(paths) == []
    subprocess.run([real_rkt, "--local-config=%s" % config, "trust",
                    "--prefix=example.com/busybox",
                    "--skip-fingerprint-review", key], check=True,
                   stdout=subprocess.DEVNULL)
    ctr = create(xml(volume, ["sleep", "1000"], insecure=False),
                 paths=paths)
    assert ctr.lastStatus == constants.UP
    ctr.destroy()
    assert rkt_pods(paths) == []


def test_gc_reaps_a_pod_without_its_record(real_rkt, paths, aci):
    """A running pod whose VM record is gone: found by the vmId the driver
    annotates it with (``list``'s orphans, ``gc``), reaped with its
    cgroup and storage; nothing of it is left (leakcheck, rkt list)."""
    ctr = create(xml(aci, ["sleep", "1000"]), paths=paths)
    pod = open(os.path.join(bundle_of(ctr).dir, "rkt.uuid")).read()
    shutil.rmtree(paths.vm_run_dir(ctr.id))
    backend = HostBackend(paths)
    found = [p for p in backend.gc()["found"] if p["vmId"] == ctr.id]
    # The cgroup is the driver's scope where systemd is not PID 1; under
    # systemd, the pod's unit, which the pod's removal stops.
    expected = {"pod", "storage"} | (set() if proc.systemd_booted()
                                     else {"cgroup"})
    assert expected <= {p["kind"] for p in found}
    assert [p["pod"] for p in found if p["kind"] == "pod"] == [pod]
    done = backend.gc(dry_run=False)
    assert done["failed"] == []
    assert rkt_pods(paths) == []
    assert pod_cgroups(pod) == []

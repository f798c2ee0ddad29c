"""What a container can't do: the security defaults, tried from inside."""

import os
import time

import pytest

from vdsm_container import constants
from vdsm_container.bundle import seccomp

from .test_container import started  # noqa: F401 (fixture)
from .conftest import bundle_of, in_container

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]

PROBE = r"""
try() {
    if sh -c "$2" >/dev/null 2>&1; then echo "$1=yes"; else echo "$1=no"; fi
}
try mount 'mkdir -p /m && mount -t tmpfs none /m'
try sysctl 'echo 1 > /proc/sys/kernel/panic'
try sysrq 'echo h > /proc/sysrq-trigger'
try mknod 'mknod /dev/sdx b 8 0'
try readnode 'mknod /dev/sdy b 8 0; head -c1 /dev/sdy'
try sysfs 'echo x > /sys/kernel/uevent_helper'
echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo done
"""


def results(ctr):
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline and "done" not in text:
        time.sleep(0.05)
        text = "\n".join(line.split(" ", 3)[-1] for line in
                         open(ctr.log_path()).read().splitlines())
    out = {}
    for line in text.splitlines():
        for sep in ("=", ":"):
            if sep in line:
                k, _, v = line.partition(sep)
                out[k.strip()] = v.strip()
                break
    return out


def test_container_is_confined(started, runtime):  # noqa: F811
    ctr = started(("sh", "-c", PROBE + "sleep 1000"))
    r = results(ctr)
    assert r["mount"] == "no"
    assert r["sysctl"] == "no"
    assert r["sysrq"] == "no"
    if runtime == "runsc":
        # gVisor's kernel makes the node in its own file system without
        # CAP_MKNOD, but it leads to no device of the host's.
        assert r["mknod"] == "yes"
    else:
        assert r["mknod"] == "no"
    assert r["readnode"] == "no"
    assert r["sysfs"] == "no"
    # Its own pid namespace: the shell and a few short-lived children.
    assert int(r["procs"]) <= 5
    caps = int(r["CapBnd"], 16)
    for cap in (12, 16, 21):        # NET_ADMIN, SYS_MODULE, SYS_ADMIN
        assert not caps & (1 << cap)
    if runtime == "runsc":
        # gVisor's /proc/<pid>/status has no NoNewPrivs line (runsc sets
        # the flag on the Sentry's tasks as the bundle asks).
        assert "NoNewPrivs" not in r, r
    else:
        assert r["NoNewPrivs"] == "1"
    if seccomp.profile(["CAP_KILL"]) is not None:
        assert r["Seccomp"] == "2"       # filter mode
    assert ctr.refresh() == constants.UP


def test_seccomp_conversion_follows_capabilities():
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
           "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                        "subArchitectures": ["SCMP_ARCH_X86"]}],
           "syscalls": [
               {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
               {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_ADMIN"]}},
               {"names": ["unshare"], "action": "SCMP_ACT_ALLOW",
                "excludes": {"caps": ["CAP_KILL"]}},
               {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                "includes": {"arches": ["amd64"]}},
           ]}
    out = seccomp.convert(doc, ["CAP_KILL"], machine="x86_64")
    names = [n for r in out["syscalls"] for n in r["names"]]
    assert names == ["read", "arch_prctl"]
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert out["defaultErrnoRet"] == 1
    out = seccomp.convert(doc, ["CAP_KILL"], machine="aarch64")
    assert [n for r in out["syscalls"] for n in r["names"]] == ["read"]


USERNS_PROBE = ("cat /proc/self/uid_map; echo x > /bin/written; "
                "echo uid=$(id -u); echo done; sleep 1000")


def test_user_namespace_option(userns_paths, busybox_oci):
    import uuid as _uuid

    from vdsm_container.spec import domxml
    from vdsm_container.container import create
    paths = userns_paths
    xml = domxml.build(str(_uuid.uuid4()), "userns", "runc", busybox_oci,
                       command=["sh", "-c", USERNS_PROBE],
                       custom={"containerUserns": "true"})
    ctr = create(xml, paths=paths)
    try:
        deadline = time.monotonic() + 10
        text = ""
        while "done" not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            text = open(ctr.log_path()).read()
        mapping = [ln.split(" F ", 1)[-1].split() for ln in
                   text.splitlines() if " F " in ln]
        assert ["0", str(paths.userns_base), str(paths.userns_size)] \
            in mapping
        assert "uid=0" in text                 # root inside...
        with open("/proc/%d/status" % bundle_of(ctr).pid()) as f:
            uids = [ln for ln in f if ln.startswith("Uid:")][0].split()
        assert int(uids[1]) == paths.userns_base    # ...not on the host
        written = in_container(ctr, "/bin/written")
        assert os.stat(written).st_uid == paths.userns_base
    finally:
        ctr.destroy(gracefulAttempts=0)

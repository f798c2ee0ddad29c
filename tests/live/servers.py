"""The storage servers a block and an NFS data domain live on, made on this
machine as a storage admin would make them on a filer: an iSCSI target on
the loopback (tgt: the target in user space, one LUN backed by a sparse
file) and an NFS export of a local directory.  The host then reaches them
as any production host does: vdsm's iscsiadm login and multipath map, or
its NFS mount.

Only where the kernel has what the host side needs (device-mapper for
multipath and LVM, iscsi_tcp, nfsd): the systemd + cgroup v2 VM
(`make check-el9-live`); ``missing()`` says what is not there.
"""

import os
import shutil
import subprocess
import tempfile
import time
import uuid

GIB = 1024 ** 3
# hsm.createVG refuses a VG under 10 GiB (MINIMALVGSIZE); sparse.
LUN_SIZE = 11 * GIB
ISCSI_PORT = 3260


def _run(*cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True).stdout


def _has_module(name):
    if os.path.isdir("/sys/module/" + name):
        return True
    return subprocess.run(["modprobe", "-q", name]).returncode == 0


def _misc(name):
    with open("/proc/misc") as f:
        return any(line.split()[-1] == name for line in f)


def missing(kind):
    """Why a ``kind`` ("iscsi" or "nfs") domain can't be made here, or
    None."""
    if kind == "iscsi":
        if not _misc("device-mapper"):
            return "no device-mapper in this kernel (LVM, multipath)"
        if shutil.which("tgtadm") is None:
            return "no tgtadm (Debian's tgt)"
        if not _has_module("iscsi_tcp"):
            return "no iscsi_tcp module in this kernel"
    else:
        if shutil.which("exportfs") is None:
            return "no exportfs (Debian's nfs-kernel-server)"
        if not _has_module("nfsd"):
            return "no nfsd module in this kernel"
    return None


def _systemctl_start(unit):
    subprocess.run(["systemctl", "start", unit], check=True)


class IscsiTarget:
    """One target, one LUN (a sparse file), open to any initiator on the
    loopback without CHAP.  ``remove()`` deletes the target (tgtadm) and
    its file."""

    address = "127.0.0.1"
    port = ISCSI_PORT

    def __init__(self):
        _systemctl_start("tgt.service")
        self.base = tempfile.mkdtemp(prefix="vdsm-container-live-iscsi-",
                                     dir="/var/tmp")
        self.backing = os.path.join(self.base, "lun1.img")
        with open(self.backing, "wb") as f:
            f.truncate(LUN_SIZE)
        self.iqn = ("iqn.2026-12.org.ovirt.vdsm-container:live-%s"
                    % uuid.uuid4().hex[:8])
        self.tid = self._free_tid()
        tgt = ["tgtadm", "--lld", "iscsi"]
        _run(*tgt, "--op", "new", "--mode", "target", "--tid",
             str(self.tid), "-T", self.iqn)
        self.made = True
        _run(*tgt, "--op", "new", "--mode", "logicalunit", "--tid",
             str(self.tid), "--lun", "1", "-b", self.backing)
        _run(*tgt, "--op", "bind", "--mode", "target", "--tid",
             str(self.tid), "-I", self.address)

    @property
    def portal(self):
        return "%s:%d" % (self.address, self.port)

    @staticmethod
    def _free_tid():
        out = _run("tgtadm", "--lld", "iscsi", "--op", "show", "--mode",
                   "target")
        used = {int(line.split()[1].rstrip(":")) for line in
                out.splitlines() if line.startswith("Target ")}
        return max(used | {0}) + 1

    def remove(self):
        try:
            _run("tgtadm", "--lld", "iscsi", "--op", "delete", "--force",
                 "--mode", "target", "--tid", str(self.tid))
        finally:
            shutil.rmtree(self.base)


class NfsExport:
    """A directory owned vdsm:kvm (fileSD.validateDirAccess), exported
    read-write to the loopback with root not squashed as oVirt's NFS
    domains require; ``remove()`` unexports and deletes it."""

    def __init__(self):
        _systemctl_start("nfs-server.service")
        self.base = tempfile.mkdtemp(prefix="vdsm-container-live-nfs-",
                                     dir="/var/tmp")
        os.chmod(self.base, 0o755)
        self.path = os.path.join(self.base, "export")
        os.mkdir(self.path)
        subprocess.run(["chown", "vdsm:kvm", self.path], check=True)
        os.chmod(self.path, 0o755)
        _run("exportfs", "-o", "rw,sync,no_subtree_check,no_root_squash",
             "127.0.0.1:" + self.path)

    @property
    def remote(self):
        return "127.0.0.1:" + self.path

    def remove(self):
        try:
            _run("exportfs", "-u", "127.0.0.1:" + self.path)
        finally:
            shutil.rmtree(self.base)


def dm_devices():
    """The device-mapper devices now, by name (LVs as vg-lv, multipath
    maps by GUID)."""
    out = _run("dmsetup", "ls")
    return {line.split()[0] for line in out.splitlines()
            if line.strip() and not line.startswith("No devices")}


def iscsi_sessions():
    res = subprocess.run(["iscsiadm", "-m", "session"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    return res.stdout if res.returncode == 0 else ""


def wait_gone(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while pred():
        if time.monotonic() > deadline:
            raise AssertionError("%s still there after %ds" % (what, timeout))
        time.sleep(0.5)

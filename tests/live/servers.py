"""The storage servers shared data domains live on, made on this machine as
a storage admin would make them on a filer: an NFS export of a local
directory, which the host then reaches as any production host does (vdsm's
own NFS mount).  (The iSCSI target of a block domain, tgt on the loopback,
is not here yet: README, "What is not done yet".)

Only where the kernel has what the host side needs (device-mapper for
multipath and LVM, iscsi_tcp, nfsd): the systemd + cgroup v2 VM
(`make check-el9-live`); ``missing()`` says what is not there.
"""

import os
import shutil
import subprocess
import tempfile


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

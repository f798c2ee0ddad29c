"""A data center built over JSON-RPC with vdsm's storage verbs, in the order
Engine sends them to a host, and the container XML whose disks are volumes
of its domain.

Engine's flow (ovirt-engine's AddStoragePoolWithStorages /
ConnectStorageToVdsCommand / CreateStorageDomainVDSCommand /
CreateStoragePoolVDSCommand / ConnectStoragePoolVDSCommand /
SpmStartVDSCommand, then AddDiskCommand's CreateVolumeVDSCommand): connect
the storage server, create the domain, create the pool with it as master,
connect the pool, start the SPM (a task: Task.getStatus until finished,
Task.clear), create volumes (tasks too).

Values are what vdsm's code reads, not the schema's enum names: vdsm's
hsm.py and storageServer.py take integer domain types (sd.LOCALFS_DOMAIN 4),
domain classes (sd.DATA_DOMAIN 1), volume formats (sc.RAW_FORMAT 5) and
allocation (sc.SPARSE_VOL 2, sc.PREALLOCATED_VOL 1), as Engine sends them;
a connection is a dict with ``id`` and ``connection``
(storageServer._connectionDict2ConnectionInfo).
"""

import os
import shutil
import subprocess
import tempfile
import time
import uuid


NFS_DOMAIN = 1          # vdsm storage/sd.py
ISCSI_DOMAIN = 3
LOCALFS_DOMAIN = 4
DATA_DOMAIN = 1         # sd.DATA_DOMAIN
RAW_FORMAT = 5          # vdsm storage/constants.py
SPARSE_VOL = 2
PREALLOCATED_VOL = 1
BLANK_UUID = "00000000-0000-0000-0000-000000000000"
DOMAIN_VERSION = 5
HOST_ID = 1
MIB = 1024 * 1024

WAIT = float(os.environ.get("LIVE_WAIT", "60"))


class TaskFailed(AssertionError):
    pass


def wait_task(cli, task_id, timeout=WAIT):
    """Task.getStatus until the task is finished, then Task.clear, as
    Engine's SPMAsyncTask polls and clears a task; its failure raised."""
    deadline = time.monotonic() + timeout
    while True:
        st = cli.Task.getStatus(taskID=task_id)
        if st["taskState"] == "finished":
            break
        if time.monotonic() > deadline:
            raise AssertionError("task %s still %s after %ds"
                                 % (task_id, st["taskState"], timeout))
        time.sleep(0.2)
    cli.Task.clear(taskID=task_id)
    if st["taskResult"] != "success":
        raise TaskFailed("task %s: %s (code %s)"
                         % (task_id, st["message"], st["code"]))
    return st


def transform_path(path):
    """vdsm's fileUtils.transformPath: the link name under /rhev/data-center/
    mnt of a LOCALFS connection (its ``/`` become ``_``)."""
    return path.replace("_", "__").replace("/", "_")


class LocalFS:
    """An ext4 file system on a loop device (not tmpfs: vdsm opens a
    domain's metadata and volumes with O_DIRECT), the directory a LOCALFS
    domain is created in, owned vdsm:kvm as vdsm requires
    (fileSD.validateDirAccess)."""

    def __init__(self, size_mib=1024, parent="/var/tmp"):
        # Not under pytest's tmp dirs (0700 root): user vdsm walks to it.
        base = tempfile.mkdtemp(prefix="vdsm-container-live-localfs-",
                                dir=parent)
        os.chmod(base, 0o755)
        self.base = base
        self.image = os.path.join(base, "localfs.img")
        self.mountpoint = os.path.join(base, "mnt")
        self.path = os.path.join(self.mountpoint, "domain")
        os.makedirs(self.mountpoint, exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(size_mib * MIB)
        subprocess.run(["mkfs.ext4", "-q", "-F", self.image], check=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.mountpoint],
                       check=True)
        os.mkdir(self.path)
        subprocess.run(["chown", "vdsm:kvm", self.path], check=True)
        os.chmod(self.path, 0o755)

    def remove(self):
        subprocess.run(["umount", "-d", self.mountpoint], check=True)
        shutil.rmtree(self.base)


class DataCenter:
    """One pool with one LOCALFS data domain, this host its SPM.  The
    domain's type is the class's (NfsDataCenter, BlockDataCenter)."""

    domain_type = LOCALFS_DOMAIN
    block = False
    block_size = 0          # sc.BLOCK_SIZE_AUTO: a file domain probes it
    preallocate = SPARSE_VOL

    def __init__(self, cli, path, host_id=HOST_ID):
        self.cli = cli
        self.path = path
        self.host_id = host_id      # sanlock's, given by Engine per host
        self.sd_id = str(uuid.uuid4())
        self.pool_id = str(uuid.uuid4())
        self.conn_id = str(uuid.uuid4())
        self.connected = False
        self.spm = False

    def on(self, cli, host_id):
        """The same data center as another host (``cli``) joins it: its
        own connection to the same domain and pool, not its SPM."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.cli, other.host_id = cli, host_id
        other.connected = other.spm = False
        return other

    @property
    def connection(self):
        return {"id": self.conn_id, "connection": self.path, "user": "",
                "password": "", "vfs_type": "", "mnt_options": ""}

    def mount_dir(self):
        """The domain's directory as vdsm reaches it."""
        return os.path.join("/rhev/data-center/mnt",
                            transform_path(self.path), self.sd_id)

    def connect_server(self):
        res = self.cli.StoragePool.connectStorageServer(
            storagepoolID=BLANK_UUID, domainType=self.domain_type,
            connectionParams=[self.connection])
        assert [c["status"] for c in res] == [0], res

    def type_args(self):
        """StorageDomain.create's typeArgs: a file domain's connection
        path (hsm.createStorageDomain -> fileSD's create)."""
        return self.path

    def build(self):
        """connectStorageServer, StorageDomain.create, connectStorageServer
        again, StoragePool.create, StoragePool.connect, spmStart: Engine's
        order for a new DC.

        The second connectStorageServer is Engine's too:
        AddStoragePoolWithStoragesCommand.executeCommand connects each of
        the pool's domains to the host (the type's StorageHelper's
        connectStorageToDomainByVdsId: ConnectStorageServer) right before
        CreateStoragePool.  A block domain needs it: the domain object
        StorageDomain.create leaves in vdsm's sdCache has its special LVs
        deactivated (blockSD.BlockStorageDomain.create ends in
        ``special_lvs()``), and sanlock's add_lockspace on its ids LV
        would fail; hsm.connectStorageServer drops the domains it finds
        from sdCache (_prefetchDomains, manuallyRemoveDomain), so
        StoragePool.create produces a fresh one that activates them."""
        self.connect_server()
        type_args = self.type_args()
        try:
            self.cli.StorageDomain.create(
                storagedomainID=self.sd_id, domainType=self.domain_type,
                typeArgs=type_args, name="live-sd",
                domainClass=DATA_DOMAIN, version=DOMAIN_VERSION,
                blockSize=self.block_size, maxHosts=250)
        except Exception as e:
            raise AssertionError("%s\nsanlock here:\n%s"
                                 % (e, sanlock_state())) from e
        self.connect_server()
        try:
            self.cli.StoragePool.create(
                storagepoolID=self.pool_id, name="live-dc",
                masterSdUUID=self.sd_id, masterVersion=1,
                domainList=[self.sd_id], lockRenewalIntervalSec=5,
                leaseTimeSec=60, ioOpTimeoutSec=10, leaseRetries=3)
        except Exception as e:
            raise AssertionError("%s\nsanlock here:\n%s"
                                 % (e, sanlock_state())) from e
        self.connect_pool()
        self.start_spm()

    def connect_pool(self):
        self.cli.StoragePool.connect(
            storagepoolID=self.pool_id, hostID=self.host_id,
            scsiKey=self.pool_id, masterSdUUID=self.sd_id, masterVersion=1,
            domainDict={self.sd_id: "active"})
        self.connected = True

    def start_spm(self):
        task = self.cli.StoragePool.spmStart(
            storagepoolID=self.pool_id, prevID=-1, prevLver="-1",
            enableScsiFencing="false", maxHostID=250,
            domVersion=DOMAIN_VERSION)
        try:
            wait_task(self.cli, task)
        except TaskFailed as e:
            raise TaskFailed("%s; the host's tasks: %s"
                             % (e, self.cli.Host.getAllTasksInfo())) from e
        self.spm = True

    def stop_spm(self):
        self.cli.StoragePool.spmStop(storagepoolID=self.pool_id)
        self.spm = False

    def create_volume(self, size, preallocate=None, img_id=None,
                      vol_id=None):
        """A RAW volume in a new image: (imageID, volumeID); the ids new
        ones unless given (Engine chooses them: a disk's id is its
        imageID).  Sparse on a file domain, preallocated on a block one
        (vdsm refuses a sparse RAW LV, blockVolume.validate_create)."""
        preallocate = preallocate or self.preallocate
        img_id = img_id or str(uuid.uuid4())
        vol_id = vol_id or str(uuid.uuid4())
        task = self.cli.Volume.create(
            volumeID=vol_id, storagepoolID=self.pool_id,
            storagedomainID=self.sd_id, imageID=img_id, size=str(size),
            volFormat=RAW_FORMAT, preallocate=preallocate, diskType="DATA",
            desc="live test volume", srcImgUUID=BLANK_UUID,
            srcVolUUID=BLANK_UUID)
        wait_task(self.cli, task)
        return img_id, vol_id

    def prepare(self, img_id, vol_id):
        res = self.cli.Image.prepare(
            storagepoolID=self.pool_id, storagedomainID=self.sd_id,
            imageID=img_id, volumeID=vol_id)
        return res["path"]

    def teardown(self, img_id, vol_id):
        self.cli.Image.teardown(
            storagepoolID=self.pool_id, storagedomainID=self.sd_id,
            imageID=img_id, volumeID=vol_id)

    def upload(self, img_id, vol_id, data_path):
        """The archive written at the volume's start, the rest left as it
        is: what an upload (imageio's PUT of the file) leaves in a raw
        volume.  Returns the volume's path."""
        path = self.prepare(img_id, vol_id)
        try:
            with open(data_path, "rb") as src, \
                    open(path, "r+b") as dst:
                while True:
                    chunk = src.read(MIB)
                    if not chunk:
                        break
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        finally:
            self.teardown(img_id, vol_id)
        return path

    def volume_path(self, img_id, vol_id):
        return os.path.join(self.mount_dir(), "images", img_id, vol_id)

    def destroy(self):
        """Back to an empty host: SPM stopped, pool disconnected, server
        disconnected (the domain's lockspace released by sanlock)."""
        cli = self.cli
        if self.spm:
            self.stop_spm()
        if self.connected:
            cli.StoragePool.disconnect(storagepoolID=self.pool_id,
                                       hostID=self.host_id,
                                       scsiKey=self.pool_id)
            self.connected = False
        cli.StoragePool.disconnectStorageServer(
            storagepoolID=BLANK_UUID, domainType=self.domain_type,
            connectionParams=[self.connection])


RUN_STORAGE = "/run/vdsm/storage"     # vdsm's sc.P_VDSM_STORAGE


def prepared_link(dc, img_id):
    """Where vdsm's prepareImage links a prepared image (sd.py
    ``getImageRundir``; removed by teardownImage)."""
    return os.path.join(RUN_STORAGE, dc.sd_id, img_id)


def volume_size_for(path):
    """The archive's size rounded up to whole MiB (vdsm's volumes are)."""
    size = os.path.getsize(path)
    return (size + MIB - 1) // MIB * MIB


class NfsDataCenter(DataCenter):
    """The pool on an NFS data domain: ``path`` is the export,
    ``server:/dir``.  The connection as Engine's ConnectStorageServer
    VDSCommand sends an NFS one (its nfsVersion, nfsRetrans, nfsTimeo as
    protocol_version, retrans, timeout), read by storageServer's
    _connectionDict2ConnectionInfo into NfsConnectionParameters; vdsm
    mounts it under /rhev/data-center/mnt/server:_dir."""

    domain_type = NFS_DOMAIN
    block_size = 512        # nfsSD takes only sc.BLOCK_SIZE_512

    @property
    def connection(self):
        return {"id": self.conn_id, "connection": self.path, "user": "",
                "password": "", "vfs_type": "nfs", "mnt_options": "",
                "protocol_version": "4.2", "retrans": "6",
                "timeout": "600"}


# sc.REPO_MOUNT_DIR / sd.BLOCKSD_DIR
BLOCKSD_MNT = "/rhev/data-center/mnt/blockSD"


class BlockDataCenter(DataCenter):
    """The pool on an iSCSI block domain (sd.ISCSI_DOMAIN 3) on one LUN of
    ``target`` (servers.IscsiTarget).  Engine's order for a new block
    domain (AddSANStorageDomainCommand): connectStorageServer with the
    target's connection, Host.getDeviceList for the LUN's multipath GUID,
    LVMVolumeGroup.create on it (hsm.createVG: the VG named by the domain's
    id), then StorageDomain.create with the VG's uuid as typeArgs
    (blockSD.BlockStorageDomain.create)."""

    domain_type = ISCSI_DOMAIN
    block = True
    block_size = 512        # sc.BLOCK_SIZE_512: the only one blockSD takes
    preallocate = PREALLOCATED_VOL

    def __init__(self, cli, target):
        super().__init__(cli, target.portal)
        self.target = target
        self.guid = None

    @property
    def connection(self):
        """storageServer._connectionDict2ConnectionInfo's iSCSI keys:
        connection (the portal's address), port, tpgt (Engine's "portal"),
        iqn, user/password (empty: no CHAP)."""
        return {"id": self.conn_id, "connection": self.target.address,
                "port": str(self.target.port), "tpgt": "1",
                "iqn": self.target.iqn, "user": "", "password": ""}

    def find_lun(self):
        """The LUN's multipath GUID as Engine learns it: Host.getDeviceList
        of iSCSI devices (hsm._getDeviceList: multipath maps whose paths
        are iSCSI), the one whose path is on this target."""
        devices = self.cli.Host.getDeviceList(storageType=ISCSI_DOMAIN,
                                              checkStatus=False)
        mine = [d for d in devices
                if any(p.get("iqn") == self.target.iqn
                       for p in d.get("pathlist", []))]
        assert len(mine) == 1, devices
        return mine[0]["GUID"]

    def type_args(self):
        deadline = time.monotonic() + min(WAIT, 60)
        while True:
            try:
                self.guid = self.find_lun()
                break
            except AssertionError as e:
                # multipathd makes the map a moment after the login.
                if time.monotonic() > deadline:
                    raise AssertionError("%s\nthe host's block devices:\n%s"
                                         % (e, block_state())) from e
                time.sleep(1)
        return self.cli.LVMVolumeGroup.create(name=self.sd_id,
                                              devlist=[self.guid],
                                              force=False)

    def mount_dir(self):
        return os.path.join(BLOCKSD_MNT, self.sd_id)

    def lv_active(self, vol_id):
        """Whether the volume's LV is active, as ``lvs`` says (its attr's
        fifth letter), with lvm looking at the multipath map only as
        vdsm's lvm module makes it look (lvm.py's filter)."""
        config = ('devices { use_devicesfile=0 filter=["a|^/dev/mapper/%s$|",'
                  ' "r|.*|"] }' % self.guid)
        out = subprocess.run(
            ["lvs", "--config", config, "--noheadings", "-o", "lv_attr",
             "%s/%s" % (self.sd_id, vol_id)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            check=True).stdout.strip()
        return out[4] == "a"


def block_state():
    """What the host's initiator, multipath and udev see: a failing block
    domain's report carries it (a CI VM's logs are gone with it)."""
    out = []
    for cmd in (["iscsiadm", "-m", "session", "-P", "3"],
                ["multipath", "-ll"], ["multipathd", "show", "paths"],
                ["lsblk", "-o", "NAME,TYPE,SIZE,VENDOR,MODEL,WWN"],
                ["dmsetup", "ls"], ["cat", "/etc/iscsi/initiatorname.iscsi"],
                ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode",
                 "target"]):
        res = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        out.append("$ %s (rc %d)\n%s" % (" ".join(cmd), res.returncode,
                                          res.stdout[-3000:]))
    with open("/var/log/vdsm/vdsm.log", errors="replace") as f:
        lines = [line for line in f
                 if "iscsi" in line.lower() or "multipath" in line.lower()
                 or "ERROR" in line]
    out.append("vdsm.log (iscsi, multipath, ERROR):\n"
               + "".join(lines[-60:])[-8000:])
    with open("/var/log/vdsm/supervdsm.log", errors="replace") as f:
        lines = [line for line in f if "iscsi" in line.lower()
                 or "ERROR" in line]
    out.append("supervdsm.log (iscsi, ERROR):\n"
               + "".join(lines[-40:])[-6000:])
    return "\n".join(out)


def sanlock_state():
    """sanlock's daemon as a failed lockspace write sees it: its user's
    groups and its log's tail."""
    out = []
    for cmd in (["ps", "-o", "pid,user,group,supgrp,args", "-C", "sanlock"],
                ["id", "sanlock"], ["sanlock", "client", "log_dump"],
                ["sh", "-c", "ls -lL /dev/*-*-*-*-*/ /dev/mapper/"],
                ["lvs", "--config", "devices { use_devicesfile=0 }"]):
        res = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        out.append("$ %s (rc %d)\n%s" % (" ".join(cmd), res.returncode,
                                          res.stdout[-4000:]))
    with open("/var/log/vdsm/vdsm.log", errors="replace") as f:
        lines = f.readlines()
    start = max(i for i, line in enumerate(lines)
                if "START create" in line) if any(
        "START create" in line for line in lines) else 0
    out.append("vdsm.log from the create verb:\n"
               + "".join(line for line in lines[start:]
                         if "INFO" not in line)[-10000:])
    return "\n".join(out)

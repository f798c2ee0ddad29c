"""qcow2 chains built with vdsm's own verbs, as Engine builds them, and
what the live qcow2 tests read of them (tests/live/test_storage_qcow2.py).

Engine's commands (ovirt-engine, backend/manager/modules):

- a snapshot of a stopped VM: bll snapshots/CreateSnapshotForVmCommand ->
  CreateSnapshotDiskCommand -> CreateSnapshotCommand per non-shareable disk
  (``performImageVdsmOperation``: the new volume Sparse and COW,
  ``getCreateVDSCommandParameters``: srcImgUUID the disk's own image,
  srcVolUUID its current leaf, the size the disk's, the sequence one past
  the image's highest) -> vdsbroker irsbroker/CreateVolumeVDSCommand ->
  jsonrpc/JsonRpcIIrsServer.createVolume: ``Volume.create`` on the SPM;
- a template: storage/disk/image/CreateImageTemplateCommand ->
  CopyImageVDSCommand -> ``Volume.copy`` with volType SharedVol (6,
  common businessentities/storage/CopyVolumeType);
- a thin VM from it: snapshots/CreateSnapshotFromTemplateCommand (a
  CreateSnapshotCommand whose image group is new, sequence 1): the same
  ``Volume.create`` with srcImgUUID the template's image;
- a stateless run: RunVmCommand.createStatelessSnapshot (CreateSnapshotFor
  VmParameters of type STATELESS): the same leaves; at its shutdown
  RestoreStatelessVmCommand -> RestoreAllSnapshotsCommand ->
  RestoreFromSnapshotCommand (STATELESS: ``removeSnapshot`` of the leaf)
  -> DestroyImageVDSCommand -> ``Image.deleteVolumes``.

vdsm's side (lib/vdsm/storage): volume.Volume.create shares a parent of
another image into the new one (``share``: fileVolume ``_share`` a hard
link, blockVolume ``_share`` a symlink to the LV) and writes the leaf with
``clone``: qemu-img create -b <parent volume id> -F raw, the backing named
relative to the image's directory (``getBackingVolumePath``).
"""

import hashlib
import json
import os
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET

from . import storage

COW_FORMAT = 4          # vdsm storage/constants.py sc.COW_FORMAT
SHARED_VOL = 6          # sc.SHARED_VOL (Engine's CopyVolumeType.SharedVol)
QSD = "qemu-storage-daemon"


def info(dc, img_id, vol_id):
    return dc.cli.Volume.getInfo(storagepoolID=dc.pool_id,
                                 storagedomainID=dc.sd_id, imageID=img_id,
                                 volumeID=vol_id)


def volumes(dc, img_id):
    return sorted(dc.cli.Image.getVolumes(storagepoolID=dc.pool_id,
                                          storagedomainID=dc.sd_id,
                                          imageID=img_id))


def create_leaf(dc, img_id, parent_img, parent_vol, sequence):
    """CreateSnapshotCommand's CreateVolume: a COW, sparse volume in image
    ``img_id`` over ``parent_vol`` of ``parent_img`` (the same image for a
    snapshot, the template's for a thin VM); returns its id."""
    vol_id = str(uuid.uuid4())
    task = dc.cli.Volume.create(
        volumeID=vol_id, storagepoolID=dc.pool_id, storagedomainID=dc.sd_id,
        imageID=img_id, size=str(info(dc, parent_img, parent_vol)["capacity"]),
        volFormat=COW_FORMAT, preallocate=storage.SPARSE_VOL,
        diskType="DATA", desc="", srcImgUUID=parent_img,
        srcVolUUID=parent_vol, sequence=sequence)
    storage.wait_task(dc.cli, task)
    return vol_id


def make_template(dc, img_id, vol_id):
    """CreateImageTemplateCommand's CopyImage: the volume copied, raw, into
    a new image as a shared (template) volume; returns (image, volume)."""
    t_img, t_vol = str(uuid.uuid4()), str(uuid.uuid4())
    task = dc.cli.Volume.copy(
        volumeID=vol_id, storagepoolID=dc.pool_id, storagedomainID=dc.sd_id,
        imageID=img_id, dstSdUUID=dc.sd_id, dstImgUUID=t_img,
        dstVolUUID=t_vol, desc="", volType=SHARED_VOL,
        volFormat=storage.RAW_FORMAT, preallocate=dc.preallocate,
        postZero="false", force="false")
    storage.wait_task(dc.cli, task)
    return t_img, t_vol


def delete_volumes(dc, img_id, vol_ids):
    """RestoreFromSnapshotCommand's DestroyImage (force true)."""
    task = dc.cli.Image.deleteVolumes(
        storagepoolID=dc.pool_id, storagedomainID=dc.sd_id, imageID=img_id,
        volumeList=list(vol_ids), postZero="false", force="true")
    storage.wait_task(dc.cli, task)


def as_cow(xml, devs, readonly=()):
    """Engine's XML for COW volumes: LibvirtVmXmlBuilder.writeDisk gives a
    disk whose volume format is COW ``<driver type="qcow2">``; one attached
    read-only ``<readonly/>``."""
    for prefix, uri in (("ovirt-vm", "http://ovirt.org/vm/1.0"),
                        ("ovirt-tune", "http://ovirt.org/vm/tune/1.0")):
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(xml)
    for disk in root.iter("disk"):
        if disk.find("target").get("dev") in devs:
            disk.find("driver").set("type", "qcow2")
        if disk.find("target").get("dev") in readonly:
            ET.SubElement(disk, "readonly")
    return ET.tostring(root, encoding="unicode")


class Prepared:
    """A volume prepared through vdsm (Image.prepare; torn down on exit),
    for the test to read it as the host does."""

    def __init__(self, dc, img_id, vol_id):
        self.dc, self.img_id, self.vol_id = dc, img_id, vol_id

    def __enter__(self):
        return self.dc.prepare(self.img_id, self.vol_id)

    def __exit__(self, *exc):
        self.dc.teardown(self.img_id, self.vol_id)


def checksum(dc, img_id, vol_id):
    """sha256 of the volume's bytes (the raw file or LV, not the chain)."""
    h = hashlib.sha256()
    with Prepared(dc, img_id, vol_id) as path, open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def qemu_info(dc, img_id, vol_id):
    with Prepared(dc, img_id, vol_id) as path:
        return json.loads(subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", path],
            stdout=subprocess.PIPE, check=True, text=True).stdout)


def leaf_data(dc, img_id, vol_id):
    """The leaf's own data extents (qemu-img map: depth 0, data)."""
    with Prepared(dc, img_id, vol_id) as path:
        extents = json.loads(subprocess.run(
            ["qemu-img", "map", "-U", "--output=json", path],
            stdout=subprocess.PIPE, check=True, text=True).stdout)
    return [e for e in extents if e["depth"] == 0 and e["data"]]


def read_files(dc, img_id, vol_id, names):
    """Files of the ext4 on the chain ending in ``vol_id``, as qemu reads
    the chain (qemu-img convert to raw, then debugfs): {name: text or
    None}."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        raw = os.path.join(tmp, "chain.raw")
        with Prepared(dc, img_id, vol_id) as path:
            subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", path,
                            raw], check=True)
        found = {}
        for name in names:
            res = subprocess.run(["debugfs", "-R", "cat /%s" % name, raw],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            missing = "File not found" in res.stderr
            found[name] = None if missing else res.stdout
        return found


def mkfs(dc, img_id, vol_id):
    with Prepared(dc, img_id, vol_id) as path:
        subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True)


def leftovers(words):
    """What a container left on the host that names one of ``words`` (its
    VM id, its volumes' ids): qemu-storage-daemon processes, mounts
    (the FUSE export, the loop mounts over it), loop devices."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and os.path.basename(argv[0]) == QSD and \
                any(w in a for a in argv for w in words):
            left.append("process %s: %s" % (pid, " ".join(argv)))
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if any(w in fields[4] for w in words):
                left.append("mount %s (%s)" % (fields[4], line.strip()))
    out = subprocess.run(["losetup", "--list", "--noheadings", "--output",
                          "NAME,BACK-FILE"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if any(w in line for w in words):
            left.append("loop device %s" % line.strip())
    return left


def serving(words):
    """The qemu-storage-daemon processes naming one of ``words``."""
    return [x for x in leftovers(words) if x.startswith("process ")]


def lv_open(dc, vol_id):
    """Whether the volume's LV is open (``lvs``' attr, sixth letter), with
    lvm looking at the domain's multipath map only (storage.py
    ``lv_active``)."""
    config = ('devices { use_devicesfile=0 filter=["a|^/dev/mapper/%s$|",'
              ' "r|.*|"] }' % dc.guid)
    out = subprocess.run(
        ["lvs", "--config", config, "--noheadings", "-o", "lv_attr",
         "%s/%s" % (dc.sd_id, vol_id)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        check=True).stdout.strip()
    return out[5] == "o"

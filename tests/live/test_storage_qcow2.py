"""qcow2 chains through the live vdsmd (issue #37 item 1): each chain built
with vdsm's verbs as Engine builds it (tests/live/chains.py), a container
VM started on it with VM.create, as Engine starts one.

- the snapshot of a stopped container VM: a COW leaf over each disk's raw
  volume, in the same image (the image disk read-only, a data volume
  read-write);
- a thin VM from a template: the template's raw volumes (shared) the base,
  the VM's COW leaves in images of their own;
- a stateless run: a temporary leaf over a data volume, dropped at its end
  (Image.deleteVolumes), the volume as it was before the run.

Each checks: the container runs (the image archive was read through the
chain); the data written into the base by an earlier run is seen; the new
writes are in the leaf only (the base's bytes unchanged, the leaf's own
extents, qemu-img map); after destroy no qemu-storage-daemon, mount or
loop device names the VM or its volumes, nothing left prepared.

vdsm prepares each disk's whole chain (hsm.prepareImage: every volume of
the image activated, a thin VM's template volume among them; the leaf's
path returned), clientIF.prepareVolumePath gives the plugin the leaf.

On this host: the LOCALFS domain (the ``dc`` fixture); the same tests run
on the NFS and iSCSI block domains in the EL9-shaped VM
(test_storage_qcow2_nfs.py, test_storage_qcow2_block.py).
"""

import os
import subprocess
import time
import uuid

from . import chains, storage
from .conftest import (VDSM_LOG, WAIT, connect, container_xml, services,
                       stats, vm_list)

NORMAL = 0                  # vdsm's exit codes (vmexitreason.NORMAL)
MIB = storage.MIB
# Engine's custom properties can't carry ';' (their separator: the
# engine-config tool's containerCommand regex refuses it, and Engine's
# VmPropertiesUtils with it), so these commands use '&&' and '&'; the loop
# LATE needs is written with octal escapes that printf expands in the
# container.
WRITE = ("cat /data/before > /data/seen && echo after > /data/after && "
         "sync && touch /data/done && sync && sleep 100000 & "
         'trap "exit 0" TERM && wait')


def start(dc, disks, cow=(), command=None, data_img=None, readonly=()):
    """VM.create of a container whose disks are ``disks`` ({dev: (img,
    vol)}), those in ``cow`` qcow2 (Engine's XML of a COW volume); sdb
    mounted at /data.  Returns the VM's id."""
    vm_id = str(uuid.uuid4())
    custom = {"containerVolumes": "ua-%s:/data" % data_img} \
        if data_img else None
    xml = container_xml(vm_id, "live-qcow-%s" % vm_id[:8], "/nonexistent",
                        ["sh", "-c", command or "sleep 100000"], custom,
                        volumes=disks, dc=dc)
    dc.cli.VM.create(vmID=vm_id, vmParams={
        "xml": chains.as_cow(xml, cow, readonly)})
    return vm_id


def run_to_end(dc, events, disks, command, cow=(), data_img=None,
               readonly=()):
    """A container that runs ``command`` and exits; Down, normal, then
    destroyed as Engine destroys a VM that went Down."""
    vm_id = start(dc, disks, cow, command, data_img, readonly)
    try:
        down = events.wait_status(vm_id, "Down")
        assert down["exitCode"] == NORMAL, down
    finally:
        dc.cli.VM.destroy(vmID=vm_id)


def base_volumes(dc, image, events):
    """A raw volume holding the image archive, and a raw data volume with
    an ext4 whose /before a first container run wrote."""
    img = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img[0], img[1], image)
    data = dc.create_volume(32 * MIB)
    chains.mkfs(dc, *data)
    run_to_end(dc, events, {"sda": img, "sdb": data},
               "echo before > /data/before && sync", data_img=data[0])
    return img, data


def run_writing(dc, events, disks, cow, data_img, vols, shared=()):
    """A container over the chains: Up, reading /data/before and writing
    /data/after; a qemu-storage-daemon serves each qcow2 data volume while
    it runs; destroyed, nothing of it is left (``vols``: its volumes, every
    one of the chains; on a block domain each LV active while it runs,
    inactive after; but for ``shared``, template volumes, whose LVs vdsm's
    teardown leaves active for every VM, libvirt's too: blockSD
    .deactivateImage deactivates only the image's own volumes,
    ``_getImgExclusiveVols``; those are no longer open)."""
    vm_id = start(dc, disks, cow, WRITE, data_img)
    words = [vm_id] + list(vols)
    try:
        events.wait_status(vm_id, "Up")
        pid = int(stats(dc.cli, vm_id)["pid"])
        done = "/proc/%d/root/data/done" % pid
        deadline = time.monotonic() + WAIT   # a bound, not a timing
        while not os.path.exists(done):
            assert time.monotonic() < deadline, "the container never wrote"
            assert stats(dc.cli, vm_id)["status"] == "Up"
            time.sleep(0.2)
        if "sdb" in cow:
            assert chains.serving([disks["sdb"][1]])
        for img_id, _ in disks.values():
            assert os.path.lexists(storage.prepared_link(dc, img_id))
        if dc.block:
            # hsm.prepareImage activated the whole chain.
            assert [v for v in vols if not dc.lv_active(v)] == []
    finally:
        dc.cli.VM.destroy(vmID=vm_id)
    assert vm_id not in vm_list(dc.cli)
    assert chains.leftovers(words) == []
    for img_id, _ in disks.values():
        assert not os.path.lexists(storage.prepared_link(dc, img_id))
    if dc.block:
        assert [v for v in vols
                if v not in shared and dc.lv_active(v)] == []
        assert [v for v in shared if chains.lv_open(dc, v)] == []


def check_written(dc, data_img, leaf, base):
    """The run saw /before and wrote /after into the leaf; the base
    (``base``: (image, volume, checksum before)) is as it was."""
    files = chains.read_files(dc, data_img, leaf,
                              ["before", "seen", "after"])
    assert files == {"before": "before\n", "seen": "before\n",
                     "after": "after\n"}
    assert chains.leaf_data(dc, data_img, leaf)
    assert chains.checksum(dc, base[0], base[1]) == base[2]
    assert chains.read_files(dc, base[0], base[1], ["after"]) == \
        {"after": None}


def snapshot_of_a_stopped_container_vm(dc, events, image):
    """CreateSnapshotForVmCommand on a stopped VM: each disk's new leaf in
    its image; the VM's XML then names the leaves, qcow2."""
    img, data = base_volumes(dc, image, events)
    sums = {v: chains.checksum(dc, *v) for v in (img, data)}
    img_leaf = chains.create_leaf(dc, img[0], img[0], img[1], sequence=2)
    data_leaf = chains.create_leaf(dc, data[0], data[0], data[1],
                                   sequence=2)
    for (img_id, base), leaf in ((img, img_leaf), (data, data_leaf)):
        assert chains.volumes(dc, img_id) == sorted([base, leaf])
        leaf_info = chains.info(dc, img_id, leaf)
        assert (leaf_info["format"], leaf_info["parent"],
                leaf_info["voltype"]) == ("COW", base, "LEAF")
        assert chains.info(dc, img_id, base)["voltype"] == "INTERNAL"
        assert chains.qemu_info(dc, img_id, leaf)["backing-filename"] == \
            base
    run_writing(dc, events, {"sda": (img[0], img_leaf),
                             "sdb": (data[0], data_leaf)},
                ("sda", "sdb"), data[0],
                [img[1], img_leaf, data[1], data_leaf])
    check_written(dc, data[0], data_leaf, data + (sums[data],))
    # The image disk was read only: its leaf has no data of its own.
    assert chains.leaf_data(dc, img[0], img_leaf) == []
    assert chains.checksum(dc, *img) == sums[img]


def thin_vm_from_a_template(dc, events, image):
    """CreateImageTemplateCommand (Volume.copy, shared), then
    CreateSnapshotFromTemplateCommand: the VM's leaves in new images over
    the template's volumes, shared into them by vdsm."""
    img, data = base_volumes(dc, image, events)
    t_img, t_data = (chains.make_template(dc, *v) for v in (img, data))
    sums = {v: chains.checksum(dc, *v) for v in (t_img, t_data)}
    for t in (t_img, t_data):
        assert chains.info(dc, *t)["voltype"] == "SHARED"
    vm_img, vm_data = str(uuid.uuid4()), str(uuid.uuid4())
    img_leaf = chains.create_leaf(dc, vm_img, t_img[0], t_img[1], 1)
    data_leaf = chains.create_leaf(dc, vm_data, t_data[0], t_data[1], 1)
    for vm_img_id, t, leaf in ((vm_img, t_img, img_leaf),
                               (vm_data, t_data, data_leaf)):
        assert chains.info(dc, vm_img_id, leaf)["parent"] == t[1]
        assert chains.qemu_info(dc, vm_img_id, leaf)[
            "backing-filename"] == t[1]
        if not dc.block:
            # fileVolume._share: a hard link to the template's volume.
            shared = os.stat(dc.volume_path(vm_img_id, t[1]))
            assert shared.st_ino == os.stat(dc.volume_path(*t)).st_ino
    run_writing(dc, events, {"sda": (vm_img, img_leaf),
                             "sdb": (vm_data, data_leaf)},
                ("sda", "sdb"), vm_data,
                [t_img[1], img_leaf, t_data[1], data_leaf],
                shared=(t_img[1], t_data[1]))
    check_written(dc, vm_data, data_leaf, t_data + (sums[t_data],))
    assert chains.leaf_data(dc, vm_img, img_leaf) == []
    assert chains.checksum(dc, *t_img) == sums[t_img]
    # The template's own image is not touched by the VM's run.
    assert chains.volumes(dc, t_data[0]) == [t_data[1]]


def stateless_run_leaves_the_volume_as_it_was(dc, events, image):
    """RunVmCommand stateless: a STATELESS snapshot's leaf over the data
    volume (the image disk, shareable, is not snapshotted: DisksFilter
    ONLY_NOT_SHAREABLE); the run writes into the leaf; at its end
    RestoreStatelessVmCommand deletes the leaf (Image.deleteVolumes): the
    volume is a leaf again with its bytes of before the run."""
    img, data = base_volumes(dc, image, events)
    before = chains.checksum(dc, *data)
    leaf = chains.create_leaf(dc, data[0], data[0], data[1], sequence=2)
    run_writing(dc, events, {"sda": img, "sdb": (data[0], leaf)}, ("sdb",),
                data[0], [img[1], data[1], leaf])
    check_written(dc, data[0], leaf, data + (before,))
    chains.delete_volumes(dc, data[0], [leaf])
    assert chains.volumes(dc, data[0]) == [data[1]]
    assert chains.info(dc, *data)["voltype"] == "LEAF"
    assert chains.checksum(dc, *data) == before
    # The next (plain) run sees the data of before, not the stateless
    # run's.
    run_to_end(dc, events, {"sda": img, "sdb": data},
               "test -f /data/before && test ! -e /data/after",
               data_img=data[0])


def container_ending_on_its_own(dc, events, image):
    """A container over a qcow2 volume whose command ends: by the time
    Engine hears Down its volumes are released, as a VM's are when its
    qemu ends (vdsm's Vm._onQemuDeath tears its drives down before
    setDownStatus): no qemu-storage-daemon serves the leaf any more, so
    vdsm's teardown of the image (a block domain: lvchange -an of each LV
    of the chain) found it free; its write is in the leaf."""
    img = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img[0], img[1], image)
    data = dc.create_volume(32 * MIB)
    chains.mkfs(dc, *data)
    leaf = chains.create_leaf(dc, data[0], data[0], data[1], sequence=2)
    vm_id = start(dc, {"sda": img, "sdb": (data[0], leaf)}, ("sdb",),
                  "echo ended > /data/ended && sync", data[0])
    try:
        down = events.wait_status(vm_id, "Down")
        assert down["exitCode"] == NORMAL, down
        assert chains.serving([leaf, vm_id]) == []
        assert nothing_prepared(dc)
        if dc.block:
            assert [v for v in (img[1], data[1], leaf)
                    if dc.lv_active(v)] == []
    finally:
        dc.cli.VM.destroy(vmID=vm_id)
    assert chains.leftovers([vm_id, leaf, data[1]]) == []
    assert chains.read_files(dc, data[0], leaf, ["ended"]) == \
        {"ended": "ended\n"}


def nothing_prepared(dc):
    rundir = os.path.join(storage.RUN_STORAGE, dc.sd_id)
    return not os.path.isdir(rundir) or os.listdir(rundir) == []


# The LOCALFS domain of this host (the ``dc`` fixture).

def test_snapshot_of_a_stopped_container_vm(dc, events, image):
    snapshot_of_a_stopped_container_vm(dc, events, image)
    assert nothing_prepared(dc)


def test_thin_vm_from_a_template(dc, events, image):
    thin_vm_from_a_template(dc, events, image)
    assert nothing_prepared(dc)


def test_stateless_run_leaves_the_volume_as_it_was(dc, events, image):
    stateless_run_leaves_the_volume_as_it_was(dc, events, image)
    assert nothing_prepared(dc)


def test_container_ending_on_its_own_releases_its_volumes(dc, events,
                                                          image):
    container_ending_on_its_own(dc, events, image)
    assert nothing_prepared(dc)


def test_legacy_relative_backing_path_on_a_file_domain(dc, events, image):
    """A thin VM's leaf as vdsm before 4.18 wrote it, naming the template
    ``../<imgUUID>/<volUUID>`` (volume.getBackingVolumePath's comment, bz
    1333627): on a file domain the name resolves from the leaf's image
    directory, the path clientIF.prepareVolumePath gives."""
    img = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img[0], img[1], image)
    t_img = chains.make_template(dc, *img)
    vm_img = str(uuid.uuid4())
    leaf = chains.create_leaf(dc, vm_img, t_img[0], t_img[1], 1)
    legacy = "../%s/%s" % t_img
    with chains.Prepared(dc, vm_img, leaf) as path:
        subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b",
                        legacy, "-F", "raw", path], check=True)
    assert chains.qemu_info(dc, vm_img, leaf)["backing-filename"] == legacy
    vm_id = start(dc, {"sda": (vm_img, leaf)}, ("sda",))
    try:
        events.wait_status(vm_id, "Up")
    finally:
        dc.cli.VM.destroy(vmID=vm_id)
    assert chains.leftovers([vm_id, leaf, t_img[1]]) == []
    assert nothing_prepared(dc)


def test_read_only_qcow2_volume(dc, events, image):
    """A data volume attached read-only (Engine's ``<readonly/>``) over a
    snapshot: the container reads the base's data through the chain and
    cannot write; the leaf stays empty."""
    img, data = base_volumes(dc, image, events)
    leaf = chains.create_leaf(dc, data[0], data[0], data[1], sequence=2)
    run_to_end(dc, events, {"sda": img, "sdb": (data[0], leaf)},
               "test -f /data/before && ! touch /data/written 2>/dev/null",
               cow=("sdb",), data_img=data[0], readonly=("sdb",))
    assert chains.leaf_data(dc, data[0], leaf) == []
    assert chains.leftovers([leaf, data[1]]) == []
    assert nothing_prepared(dc)


LATE = ('eval "$(printf \'trap "exit 0" TERM\\073 while :\\073 do '
        'if [ -e /tmp/go ]\\073 then rm /tmp/go\\073 echo late > /data/late '
        '&& sync && touch /tmp/done\\073 fi\\073 sleep 0.2\\073 done\')"')


def _wait_file(path, what):
    deadline = time.monotonic() + WAIT     # a bound, not a timing
    while not os.path.exists(path):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _log_size():
    return os.path.getsize(VDSM_LOG)


def _recovered(offset):
    with open(VDSM_LOG, errors="replace") as f:
        f.seek(offset)
        return "recovery: completed" in f.read()


def test_qcow2_volume_outlives_a_supervdsmd_and_vdsmd_restart(dc, events,
                                                             image):
    """supervdsmd (which started the volume's qemu-storage-daemon) and
    vdsmd restart under a running container, as an upgrade or a crash
    restarts them (under systemd a restart of supervdsmd.service stops
    what runs in its cgroup, and vdsmd.service Requires= it): the daemon
    serving the qcow2 volume lives on, like the container, and the
    container's writes after the restart land in the leaf.  The module's
    last test: vdsmd is reconnected to the pool as Engine does it."""
    img = dc.create_volume(storage.volume_size_for(image))
    dc.upload(img[0], img[1], image)
    data = dc.create_volume(32 * MIB)
    chains.mkfs(dc, *data)
    leaf = chains.create_leaf(dc, data[0], data[0], data[1], sequence=2)
    vm_id = start(dc, {"sda": img, "sdb": (data[0], leaf)}, ("sdb",),
                  LATE, data[0])
    cli = dc.cli
    try:
        events.wait_status(vm_id, "Up")
        pid = int(stats(cli, vm_id)["pid"])
        daemons = chains.serving([leaf])
        assert daemons
        offset = _log_size()
        services("restart", "supervdsmd")
        services("restart", "vdsmd")
        events.subscribe()
        dc.cli = cli = connect()
        dc.connected = dc.spm = False
        dc.connect_server()
        dc.connect_pool()
        dc.start_spm()
        deadline = time.monotonic() + WAIT
        while not _recovered(offset):
            assert time.monotonic() < deadline, "recovery never completed"
            time.sleep(0.2)
        assert stats(cli, vm_id)["status"] == "Up"
        assert chains.serving([leaf]) == daemons
        with open("/proc/%d/root/tmp/go" % pid, "w"):
            pass
        _wait_file("/proc/%d/root/tmp/done" % pid,
                   "the container never wrote after the restart")
    finally:
        cli.VM.destroy(vmID=vm_id)
    assert chains.leftovers([vm_id, leaf, data[1]]) == []
    assert chains.read_files(dc, data[0], leaf, ["late"]) == \
        {"late": "late\n"}
    assert chains.read_files(dc, data[0], data[1], ["late"]) == \
        {"late": None}
    assert nothing_prepared(dc)

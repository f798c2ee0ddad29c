"""The fake Engine's storage: data center, storage domains, disks and image
transfers, the transfers served by a real ovirt-imageio daemon.

Written from Engine's REST API model (ovirt-engine-api-model:
services/DisksService.java add, services/DiskService.java get/remove,
services/ImageTransfersService.java add, services/ImageTransferService.java
get/finalize/cancel, types/ImageTransferPhase.java) and what the engine
does behind them (ovirt-engine TransferDiskImageCommand /
TransferImageStatusCommand):

- ``POST /disks`` answers the disk LOCKED; it stays LOCKED for
  ``locked_reads`` reads, then turns OK (the engine's asynchronous
  AddDisk; 0: OK when first read).  Refused as the engine refuses
  (AppErrors ACTION_TYPE_FAILED_DISK_SPACE_LOW_ON_STORAGE_DOMAIN,
  ACTION_TYPE_FAILED_DISK_CONFIGURATION_NOT_SUPPORTED for a sparse raw disk
  on a block domain, and BaseDisk.diskAlias' @ValidI18NName:
  VALIDATION_DISK_ALIAS_INVALID); the disk's bytes are a file
  ``<root>/<disk id>``.
- ``DELETE /disks/<id>`` of a LOCKED disk (being created, or held by a
  transfer) is refused as RemoveDiskCommand.validate refuses it
  (ACTION_TYPE_FAILED_OBJECT_LOCKED, HTTP 409).
- ``POST /imagetransfers`` locks the disk, adds a ticket for the file to
  the imageio daemon through its control socket (file backend, ops
  ``write``), and answers INITIALIZING; next read TRANSFERRING, with
  ``transfer_url`` the daemon's ``/images/<ticket>`` and ``proxy_url`` the
  same daemon (no separate proxy here).
  With the daemon down the transfer is PAUSED_SYSTEM at once.
- ``finalize``: the ticket goes, the disk is OK, the transfer
  FINALIZING_SUCCESS then FINISHED_SUCCESS (kept, as engines >= 4.4.7 do).
- ``cancel``: "terminates the transfer operation and removes the partial
  image": the ticket goes (a dead daemon is tolerated, as the engine
  tolerates a host that does not answer), the disk and its file go, the
  transfer FINALIZING_CLEANUP then FINISHED_CLEANUP.

With a ``host`` (tests/live/import_disk.py's, a live vdsm host through
JSON-RPC), a disk is a volume of the host's domain, as Engine makes it:
``add disk`` is vdsm's Volume.create (AddDiskCommand's
CreateVolumeVDSCommand, the size in bytes as the disk's provisioned size;
vdsm's volume.py Volume.create rounds it to 4 KiB), a task polled to its
end and cleared; a transfer prepares the volume (vdsm's API.py
Image.prepare, hsm.py prepareImage: the volume's path, the image's run
link) and its ticket names that path, as Engine's TransferImageCommand
(bll/storage/disk/image) sends PrepareImage then AddImageTicket (the
order ovirt-imageio's README "Upload image flow" lists); finalize and
cancel remove the ticket then tear the image down (Image.teardown, hsm.py
teardownImage).

``refuse_disks`` makes every ``POST /disks`` fail with the given detail;
``fail_finalize`` makes finalize fail verification (FINISHED_FAILURE): the
disk turns ILLEGAL and Engine removes it "soon" (the SDK's
helpers/imagetransfer.py), here after ``removal_reads`` reads of it.
``on_disk_read(disk)`` runs before a read of a disk is answered (tests:
a Ctrl-C at that moment).
"""

import os
import re
import threading
import urllib.parse
import uuid

from ovirtsdk4 import types
from ovirtsdk4.reader import Reader
from ovirtsdk4.writer import Writer

from .fake_engine import Refused

XML = "application/xml"
BLOCK = (types.StorageType.ISCSI, types.StorageType.FCP)
Phase = types.ImageTransferPhase
FINISHED = (Phase.FINISHED_SUCCESS, Phase.FINISHED_FAILURE,
            Phase.FINISHED_CLEANUP)


def _not_found():
    raise Refused(404, "Not Found", "Entity not found")


class Storage:

    def __init__(self, engine, imageio, root,
                 arch=types.Architecture.X86_64, host=None):
        self.engine = engine
        self.host = host
        self.volumes = {}       # disk id -> volume id, on the host
        self.imageio = imageio
        self.root = str(root)
        self.lock = threading.Lock()
        self.dc = types.DataCenter(id=str(uuid.uuid4()), name="Default")
        for cluster in engine.clusters.values():
            self.place(cluster, arch)
        self.domains = {}
        # The engine's disks: an uploaded disk can be attached, shared.
        self.disks = engine.disks
        self.transfers = {}     # id -> types.ImageTransfer
        self.tickets = {}       # transfer id -> ticket id
        self.prepared = {}      # transfer id -> disk id prepared on host
        self.refuse_disks = None
        self.fail_finalize = False
        self.locked_reads = 0
        self.removal_reads = 0
        self.on_disk_read = None
        self._locked = {}       # disk id -> reads it stays LOCKED
        self._doomed = {}       # disk id -> reads before Engine removes it
        engine.routes.append(self.route)

    def place(self, cluster, arch):
        """The cluster in this data center, of CPU architecture ``arch``."""
        cluster.data_center = types.DataCenter(id=self.dc.id)
        cluster.cpu = types.Cpu(architecture=arch)

    def add_domain(self, name, storage_type=types.StorageType.NFS,
                   available=2 ** 30):
        sd = types.StorageDomain(
            id=str(uuid.uuid4()), name=name, available=available,
            type=types.StorageDomainType.DATA,
            storage=types.HostStorage(type=storage_type),
            data_centers=[types.DataCenter(id=self.dc.id)])
        self.domains[sd.id] = sd
        return sd

    def path(self, disk_id):
        return os.path.join(self.root, disk_id)

    def open_transfers(self):
        return [t for t in self.transfers.values()
                if t.phase not in FINISHED]

    # Routes: None for what the engine's other routes answer.

    def route(self, method, parts, query, body):
        with self.lock:
            if parts[:1] == ["storagedomains"] and method == "GET":
                return self._domains(query)
            if parts == ["disks"] and method == "POST":
                return self._add_disk(Reader.read(body))
            if len(parts) == 2 and parts[0] == "disks" and \
                    method in ("GET", "DELETE"):
                if parts[1] not in self.disks:
                    _not_found()
                return self._disk(method, parts[1])
            if parts[:1] == ["imagetransfers"]:
                return self._transfers(method, parts[1:], body)
        return None

    def _domains(self, query):
        found = list(self.domains.values())
        search = urllib.parse.parse_qs(query).get("search", [""])[0]
        if search.startswith("name="):
            found = [sd for sd in found if sd.name == search[5:]]
        return 200, Writer.write(found, root="storage_domains"), XML

    def _add_disk(self, disk):
        if self.refuse_disks:
            raise Refused(409, "Operation Failed", "[Cannot add Virtual "
                          "Disk. %s]" % self.refuse_disks)
        sd = self.domains.get(disk.storage_domains[0].id)
        if sd is None:
            raise Refused(404, "Operation Failed", "[Cannot add Virtual "
                          "Disk. Storage Domain doesn't exist.]")
        if sd.storage.type in BLOCK and disk.format == \
                types.DiskFormat.RAW and disk.sparse:
            raise Refused(409, "Operation Failed", "[Cannot add Virtual "
                          "Disk. Disk configuration (RAW Sparse) is "
                          "incompatible with the storage domain type.]")
        if not re.fullmatch(r"[\w.-]*", disk.alias or disk.name or ""):
            raise Refused(409, "Operation Failed", "[Cannot add Virtual "
                          "Disk. Disk alias name must be formed of "
                          "alpha-numeric characters or \"-_.\"]")
        if disk.provisioned_size > sd.available:
            raise Refused(409, "Operation Failed", "[Cannot add Virtual "
                          "Disk. Low disk space on Storage Domain %s.]"
                          % sd.name)
        disk.id = str(uuid.uuid4())
        disk.status = types.DiskStatus.LOCKED
        disk.storage_domains = [types.StorageDomain(id=sd.id)]
        if self.host is not None:
            vol_id = str(uuid.uuid4())
            self.host.create_volume(disk.id, vol_id, disk.provisioned_size,
                                    bool(disk.sparse))
            self.volumes[disk.id] = vol_id
        else:
            with open(self.path(disk.id), "wb") as f:
                f.truncate(disk.provisioned_size)
        self.disks[disk.id] = disk
        self._locked[disk.id] = self.locked_reads
        return 201, Writer.write(disk), XML

    def unlock(self, disk_id):
        """AddDisk ends now: the disk is OK."""
        with self.lock:
            self._locked.pop(disk_id, None)
            self.disks[disk_id].status = types.DiskStatus.OK

    def _disk(self, method, disk_id):
        disk = self.disks[disk_id]
        if method == "DELETE":
            if disk.status == types.DiskStatus.LOCKED:
                raise Refused(409, "Operation Failed", "[Cannot remove "
                              "Virtual Disk. Related operation is currently "
                              "in progress. Please try again later.]")
            self._remove_disk(disk_id)
            return 200, "", XML
        if self.on_disk_read is not None:
            self.on_disk_read(disk)
        if disk_id in self._locked:
            self._locked[disk_id] -= 1
            if self._locked[disk_id] < 0:
                del self._locked[disk_id]
                disk.status = types.DiskStatus.OK
        if disk_id in self._doomed:
            self._doomed[disk_id] -= 1
            if self._doomed[disk_id] < 0:
                self._remove_disk(disk_id)
                _not_found()
        return 200, Writer.write(disk), XML

    def _remove_disk(self, disk_id):
        # With a host, the volume stays (no Image.delete here): the live
        # loop removes no disk, and its domain goes with the test module.
        del self.disks[disk_id]
        self._locked.pop(disk_id, None)
        self._doomed.pop(disk_id, None)
        try:
            os.unlink(self.path(disk_id))
        except FileNotFoundError:       # a disk the test added
            pass

    def _transfers(self, method, rest, body):
        if not rest:
            if method == "POST":
                return self._add_transfer(Reader.read(body))
            return 200, Writer.write(list(self.transfers.values()),
                                     root="image_transfers"), XML
        t = self.transfers.get(rest[0])
        if t is None:
            _not_found()
        if len(rest) == 1:
            if t.phase == Phase.INITIALIZING:
                t.phase = Phase.TRANSFERRING
            elif t.phase == Phase.FINALIZING_SUCCESS:
                t.phase = Phase.FINISHED_SUCCESS
            elif t.phase == Phase.FINALIZING_CLEANUP:
                t.phase = Phase.FINISHED_CLEANUP
            return 200, Writer.write(t), XML
        action = rest[1]
        if t.phase in FINISHED:
            # The transfer has ended; this fake refuses, wording its own.
            raise Refused(409, "Operation Failed", "[Cannot %s image "
                          "transfer. The transfer has ended.]" % action)
        if action == "finalize" and self.fail_finalize:
            # The uploaded data failed Engine's verification: "the disk's
            # status will change to ILLEGAL, transfer's phase will change
            # to FINISHED_FAILURE and the disk will be removed" (the SDK's
            # helpers.finalize_transfer).
            self._drop_ticket(t.id)
            self.disks[t.disk.id].status = types.DiskStatus.ILLEGAL
            self._doomed[t.disk.id] = self.removal_reads
            t.phase = Phase.FINISHED_FAILURE
        elif action == "finalize":
            self._drop_ticket(t.id)
            self.disks[t.disk.id].status = types.DiskStatus.OK
            t.phase = Phase.FINALIZING_SUCCESS
        elif action == "cancel":
            self._drop_ticket(t.id)
            if t.disk.id in self.disks:
                self._remove_disk(t.disk.id)
            t.phase = Phase.FINALIZING_CLEANUP
        else:
            _not_found()
        return 200, Writer.write(types.Action(status="complete")), XML

    def _add_transfer(self, t):
        disk = self.disks.get(t.disk.id)
        if disk is None:
            raise Refused(404, "Operation Failed", "[Cannot transfer "
                          "Virtual Disk. The disk doesn't exist.]")
        if disk.status != types.DiskStatus.OK:
            raise Refused(409, "Operation Failed", "[Cannot transfer "
                          "Virtual Disk: Disk is locked. Please try again "
                          "later.]")
        t.id = str(uuid.uuid4())
        self.transfers[t.id] = t
        disk.status = types.DiskStatus.LOCKED
        if not self.imageio.alive():
            # ImageTransferPhase PAUSED_SYSTEM: "ovirt-imageio is not
            # running in the selected host".
            t.phase = Phase.PAUSED_SYSTEM
            return 201, Writer.write(t), XML
        ticket = str(uuid.uuid4())
        if self.host is not None:
            path = self.host.prepare(disk.id, self.volumes[disk.id])
            self.prepared[t.id] = disk.id
        else:
            path = self.path(disk.id)
        self.imageio.add_ticket({
            "uuid": ticket, "size": disk.provisioned_size,
            "url": "file://" + path, "ops": ["write"],
            "timeout": 300, "transfer_id": t.id, "sparse": disk.sparse})
        self.tickets[t.id] = ticket
        t.phase = Phase.INITIALIZING
        t.transfer_url = t.proxy_url = self.imageio.url(ticket)
        return 201, Writer.write(t), XML

    def _drop_ticket(self, transfer_id):
        ticket = self.tickets.pop(transfer_id, None)
        try:
            if ticket is not None and self.imageio.alive():
                self.imageio.del_ticket(ticket)
        finally:
            disk_id = self.prepared.pop(transfer_id, None)
            if disk_id is not None:
                self.host.teardown(disk_id, self.volumes[disk_id])

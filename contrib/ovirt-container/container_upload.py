"""upload-image: an image archive into a raw disk of a storage domain.

The archive is checked first with the host's own code
(vdsm_container/image: archive.Source reads it as the host will, the
manifest module picks the image and checks its documents and platform,
here against the cluster's architecture), so an archive the host would
refuse costs no disk.  Then the flow of python-ovirt-engine-sdk4's
examples/upload_disk.py and examples/helpers/imagetransfer.py:

1. add a raw disk (sized for the archive, preallocated on block domains:
   Engine refuses sparse raw there) and wait for it to be OK;
2. add an ImageTransfer (direction upload, format raw) and wait for
   TRANSFERRING (helpers.create_transfer);
3. send the bytes with ovirt-imageio's client: ``ImageioClient(
   transfer_url, cafile=..., proxy_url=...)`` and ``read_from`` (a PUT of
   the file's bytes: the archive is data, not an image for qemu-nbd, which
   is what ``client.upload`` would read it through);
4. finalize and wait for FINISHED_SUCCESS; an Engine that drops the
   transfer at once (before 4.4.7) answers 404: then the disk must be OK
   (helpers.finalize_transfer).

On any failure, Ctrl-C included, nothing half-made stays: once a transfer
exists it owns the disk and ``cancel`` removes both (ImageTransferService
Cancel: "terminates the transfer operation and removes the partial
image"); before that the disk is removed here, once Engine has unlocked
it (container_cleanup: the waits, said on stderr and bounded).  The error
names the step, and what is left if anything is.
"""

import collections
import hashlib
import os
import re
import sys
import time

import ovirtsdk4 as sdk
from ovirtsdk4 import types

from container_cleanup import Cleanup, why as _sdk_why
from vdsm_container import errors
from vdsm_container.image import archive, manifest

POLL = 1.0              # s between polls, as the SDK's examples
DISK_TIMEOUT = 600      # a preallocated block disk takes a while
TRANSFER_TIMEOUT = 120
CLEANUP_TIMEOUT = 120   # for Engine to end a transfer and remove its disk
LOCK_TIMEOUT = DISK_TIMEOUT     # for Engine to unlock a disk it creates
ALIGN = 2 ** 20         # disk sizes in whole MiB
CHUNK = 2 ** 20

# Engine's Architecture (types.Architecture) as images name it (GOARCH):
# oVirt's ppc64 clusters run little-endian hosts.
ARCH = {types.Architecture.X86_64: "amd64",
        types.Architecture.PPC64: "ppc64le",
        types.Architecture.S390X: "s390x",
        types.Architecture.AARCH64: "arm64"}

BLOCK = (types.StorageType.ISCSI, types.StorageType.FCP)

DESCRIPTION = "vdsm-container image archive: size=%d sha256=%s"


class StepFailed(Exception):
    """A step of the upload failed: ``step: why`` on one line."""

    def __init__(self, step, why, interrupted=False):
        super().__init__("%s: %s" % (step, why))
        self.step = step
        self.why = why
        self.interrupted = interrupted


def _why(e):
    if isinstance(e, errors.VdsmException):
        return getattr(e, "context", {}).get("reason") or str(e)
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    return _sdk_why(e)


def _stderr(text):
    sys.stderr.write("ovirt-container: %s\n" % text)
    sys.stderr.flush()


def disk_alias(base):
    """``base`` (a file or image name) as a disk alias Engine takes:
    letters, digits and ``._-`` (BaseDisk.diskAlias, @ValidI18NName), any
    run of others one ``_``.  The default disk name of upload-image and
    import, so that a name Engine would refuse costs no failed upload."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base.rsplit("/", 1)[-1]) or \
        "container-image"


Archive = collections.namedtuple("Archive", "path size sha256 ref")


def check_archive(path, target, want=None):
    """The archive as the host will read it: ``Archive`` or StepFailed.

    ``target`` is a ``manifest.Target``: the cluster's architecture.
    """
    step = "check the archive %s" % path
    try:
        src = archive.Source(path)
        try:
            sel = manifest.select(src, want, target)
        finally:
            src.close()
        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
                size += len(chunk)
    except (errors.VdsmException, OSError) as e:
        raise StepFailed(step, _why(e)) from e
    return Archive(path, size, h.hexdigest(), sel.ref)


def find_domain(system, name):
    found = system.storage_domains_service().list(search="name=%s" % name)
    found = [sd for sd in found if sd.name == name]
    if not found:
        raise StepFailed("find the storage domain", "no storage domain "
                         "named %s" % name)
    return found[0]


def target_of(system, domain, cluster=None):
    """The platform the image must be built for: the architecture of
    ``cluster``, or the one all clusters of the domain's data center
    share."""
    step = "find the clusters' architecture"
    clusters = system.clusters_service().list()
    if cluster:
        clusters = [c for c in clusters if c.name == cluster]
        if not clusters:
            raise StepFailed(step, "no cluster named %s" % cluster)
    else:
        dcs = {dc.id for dc in domain.data_centers or ()}
        clusters = [c for c in clusters
                    if c.data_center is not None and c.data_center.id in dcs]
    arches = {c.cpu.architecture for c in clusters
              if c.cpu is not None and c.cpu.architecture in ARCH}
    if not arches:
        raise StepFailed(step, "no cluster with a known architecture uses "
                         "storage domain %s" % domain.name)
    if len(arches) > 1:
        raise StepFailed(step, "the clusters using %s run %s: name one "
                         "with --cluster" % (domain.name, ", ".join(
                             sorted(a.value for a in arches))))
    arch = arches.pop()
    return manifest.Target("linux", ARCH[arch],
                           "the cluster's architecture %s" % arch.value)


def _wait(step, get, done, timeout, bad=lambda obj: None):
    deadline = time.monotonic() + timeout
    while True:
        obj = get()
        if done(obj):
            return obj
        why = bad(obj)
        if why:
            raise StepFailed(step, why)
        if time.monotonic() > deadline:
            raise StepFailed(step, "timed out after %d s" % timeout)
        time.sleep(POLL)


class _Reader:
    """The archive for ImageioClient.read_from: readinto, counting, with
    its sha256 checked again as it is sent (the file must not change
    between the check and the upload)."""

    def __init__(self, f, progress):
        self.f = f
        self.h = hashlib.sha256()
        self.progress = progress

    def readinto(self, buf):
        n = self.f.readinto(buf)
        if n:
            self.h.update(memoryview(buf)[:n])
            if self.progress is not None:
                self.progress.update(n)
        return n


class Upload:
    """One archive into one new disk; ``run()`` returns the disk's id."""

    def __init__(self, conn, arch, domain, name, cafile=None, secure=True,
                 progress=None, client=None, say=_stderr):
        self.conn = conn
        self.system = conn.system_service()
        self.arch = arch
        self.domain = domain
        self.name = name
        self.cafile = cafile
        self.secure = secure
        self.progress = progress
        self.client = client        # ovirt_imageio.client (tests: the same)
        self.say = say              # the clean-up's waits, on stderr
        self.disk_id = None
        self.transfer_id = None
        self.step = None

    def run(self):
        try:
            self._create_disk()
            self._start_transfer()
            self._send()
            self._finalize()
            return self.disk_id
        except BaseException as e:
            step, why = self.step, _why(e)
            interrupted = isinstance(e, KeyboardInterrupt)
            if isinstance(e, StepFailed):
                step, why = e.step, e.why
                interrupted = e.interrupted
            cleanup = Cleanup(
                self.system, self.conn.url, self.disk_id, self.name,
                self.transfer_id, self.say, POLL, CLEANUP_TIMEOUT,
                LOCK_TIMEOUT)
            left = cleanup.run()
            if isinstance(e, StepFailed) and not left:
                raise
            raise StepFailed(step, "%s; %s" % (why, left) if left else why,
                             interrupted or cleanup.interrupted) from e

    def _create_disk(self):
        self.step = "create the disk"
        block = self.domain.storage is not None and \
            self.domain.storage.type in BLOCK
        size = -(-self.arch.size // ALIGN) * ALIGN
        disks = self.system.disks_service()
        disk = disks.add(types.Disk(
            name=self.name, alias=self.name,
            description=DESCRIPTION % (self.arch.size, self.arch.sha256),
            format=types.DiskFormat.RAW, sparse=not block,
            provisioned_size=size, initial_size=size,
            content_type=types.DiskContentType.DATA,
            storage_domains=[types.StorageDomain(id=self.domain.id)]))
        self.disk_id = disk.id
        self.step = "wait for disk %s to be OK" % disk.id
        service = disks.disk_service(disk.id)
        _wait(self.step, service.get,
              lambda d: d.status == types.DiskStatus.OK, DISK_TIMEOUT,
              lambda d: d.status == types.DiskStatus.ILLEGAL and
              "the disk is illegal")

    def _transfer_service(self):
        return self.system.image_transfers_service().image_transfer_service(
            self.transfer_id)

    def _start_transfer(self):
        self.step = "start the image transfer"
        transfer = self.system.image_transfers_service().add(
            types.ImageTransfer(
                disk=types.Disk(id=self.disk_id),
                direction=types.ImageTransferDirection.UPLOAD,
                format=types.DiskFormat.RAW))
        self.transfer_id = transfer.id
        self.step = "wait for transfer %s to start" % transfer.id
        phase = types.ImageTransferPhase
        self.transfer = _wait(
            self.step, self._transfer_service().get,
            lambda t: t.phase == phase.TRANSFERRING, TRANSFER_TIMEOUT,
            lambda t: t.phase != phase.INITIALIZING and
            "the transfer is %s" % t.phase.value)

    def _send(self):
        self.step = "upload to %s" % self.transfer.transfer_url
        with open(self.arch.path, "rb") as f:
            reader = _Reader(f, self.progress)
            with self.client.ImageioClient(
                    self.transfer.transfer_url, cafile=self.cafile,
                    secure=self.secure,
                    proxy_url=self.transfer.proxy_url) as c:
                c.read_from(reader, 0, self.arch.size)
                c.flush()
        if reader.h.hexdigest() != self.arch.sha256:
            raise StepFailed(self.step, "%s changed while it was sent"
                             % self.arch.path)

    def _finalize(self):
        self.step = "finalize transfer %s" % self.transfer_id
        service = self._transfer_service()
        service.finalize()
        phase = types.ImageTransferPhase
        deadline = time.monotonic() + DISK_TIMEOUT
        while True:
            try:
                t = service.get()
            except sdk.NotFoundError:
                # Engine < 4.4.7 drops the transfer when it ends.
                disk = self._disk()
                if disk is None or disk.status != types.DiskStatus.OK:
                    raise StepFailed(self.step, "the disk is %s" % (
                        disk.status.value if disk else "gone")) from None
                break
            if t.phase == phase.FINISHED_SUCCESS:
                break
            if t.phase not in (phase.TRANSFERRING, phase.FINALIZING_SUCCESS):
                raise StepFailed(self.step, "the transfer is %s"
                                 % t.phase.value)
            if time.monotonic() > deadline:
                raise StepFailed(self.step, "timed out")
            time.sleep(POLL)
        self.transfer_id = None     # done: nothing to cancel
        self.step = "wait for disk %s to be OK" % self.disk_id
        _wait(self.step, self._disk, lambda d: d is not None and
              d.status == types.DiskStatus.OK, DISK_TIMEOUT,
              lambda d: (d is None and "the disk is gone") or
              (d.status == types.DiskStatus.ILLEGAL and "the disk is "
               "illegal"))

    def _disk(self):
        try:
            return self.system.disks_service().disk_service(
                self.disk_id).get()
        except sdk.NotFoundError:
            return None


def upload_image(conn, path, domain_name, name=None, cluster=None,
                 cafile=None, secure=True, want=None, progress=None):
    """Check, then upload the archive at ``path``; return the disk id.

    ``progress``: an object with update(n) (tqdm's interface, as imageio's
    ProgressBar); None: imageio's progress bar on stderr when it is a
    terminal (stdout carries the disk's id).
    """
    from ovirt_imageio import client
    system = conn.system_service()
    domain = find_domain(system, domain_name)
    target = target_of(system, domain, cluster)
    arch = check_archive(path, target, want)
    name = name or disk_alias(os.path.basename(path))
    bar = None
    if progress is None and sys.stderr.isatty():
        bar = progress = client.ProgressBar(
            phase="uploading %s" % name, error_phase="upload failed",
            size=arch.size, output=sys.stderr)

    def say(text):
        # The bar's line ends first: the clean-up speaks after a failure.
        if bar is not None:
            bar.phase = "upload failed"
            bar.close()
        _stderr(text)
    try:
        return Upload(conn, arch, domain, name, cafile=cafile,
                      secure=secure, progress=progress, client=client,
                      say=say).run()
    finally:
        if bar is not None:
            bar.close()


def add_parser(sub):
    p = sub.add_parser("upload-image", help="upload an image archive into "
                       "a new raw disk; prints the disk's id")
    p.add_argument("archive", help="an OCI archive or docker-archive")
    add_common(p)
    p.add_argument("--image-ref", help="the image to check when the "
                   "archive holds several (containerImage)")


def add_common(p, name=True):
    """Options of upload-image, import and create --image (whose
    --cluster and name are the VM's)."""
    p.add_argument("--storage-domain", required=name, metavar="SD")
    if name:
        p.add_argument("--name", help="the disk's name (default: the "
                       "archive's or image's)")
        p.add_argument("--cluster", help="check the image against this "
                       "cluster's architecture (default: the one the "
                       "storage domain's clusters share)")
    p.add_argument("--imageio-ca-file", help="the CA of ovirt-imageio's "
                   "certificates (default: --ca-file)")


def imageio_security(args):
    """(cafile, secure) for ImageioClient: Engine's CA signs imageio's
    certificates; --insecure covers both unless a CA is named."""
    cafile = args.imageio_ca_file or args.ca_file
    return cafile, not args.insecure or bool(args.imageio_ca_file)


def run(conn, args):
    cafile, secure = imageio_security(args)
    return upload_image(conn, args.archive, args.storage_domain,
                        name=args.name, cluster=args.cluster, cafile=cafile,
                        secure=secure, want=args.image_ref)

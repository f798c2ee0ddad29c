"""Container images from storage-domain volumes, unpacked once into a cache.

The archive is read by ``archive.Source``, the image to run picked and its
documents checked by ``manifest``; a new image is unpacked once:

1. each blob is copied out of the archive into a private OCI layout, its
   sha256 checked as it streams, and each layer's tar stream checked in the
   same pass (``scan.Scanner``: names, device nodes, the image limits), so
   a layer is read once before umoci reads it;
2. a layer with device nodes under dev/ is rewritten without them (rare:
   rootfs imports), and the layout's config and manifest with it;
3. ``umoci raw unpack`` (a hardened layer applier: it confines every path
   to the rootfs) builds the rootfs; ``raw`` skips the mtree manifest that
   ``umoci unpack`` hashes every file for, which only ``umoci repack`` needs;
4. the entry is renamed into place, keyed by manifest digest (OCI) or by
   image-config digest, the docker image ID (docker-archive).

Concurrent starts of one new image serialise on a per-key flock; the second
finds the entry ready.  umoci dies with the process that started it
(``setpriv --pdeathsig``) and inherits the lock, so a staging directory is
in use exactly as long as some process holds its key's lock: ``prune``
removes the ones nobody holds (left by a killed start) and the lock files
of images that are not cached.  Cached rootfs directories are never written
to: every container gets its own overlayfs upper layer (``bundle/layout``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile

from vdsm_container import config as configmod
from vdsm_container.image import archive, manifest, scan
# Names other modules and tests know this module by.
from vdsm_container.image.manifest import (  # noqa: F401
    DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP,
    OCI_MANIFEST, REF_ANNOTATION)

log = logging.getLogger("vdsm_container.images")

_READY = "ready.json"
_STAGING = ".new-"
_TAG = "image"


@dataclasses.dataclass(frozen=True)
class Image:
    """An unpacked image in the cache."""

    key: str                 # "sha256-<hex>"
    rootfs: str              # never modified: the overlay's lower layer
    config: dict             # the image config's "config" object
    ref: str                 # the reference it was selected by

    @property
    def digest(self):
        return self.key.split("-u", 1)[0].replace("-", ":", 1)


_select = manifest.select


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class _HashingFile:
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()

    def write(self, data):
        self.h.update(data)
        self.f.write(data)


class Cache:
    """Unpacked images, one directory per key under ``root``."""

    def __init__(self, root, umoci="umoci", limits=None):
        self.root = root
        self._umoci = umoci
        self.limits = limits or configmod.ImageLimits.from_env()

    def entry(self, key):
        return os.path.join(self.root, key)

    def _load(self, key, ref=None):
        d = self.entry(key)
        try:
            with open(os.path.join(d, _READY)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        return Image(key=key, rootfs=os.path.join(d, "rootfs"),
                     config=meta.get("config") or {},
                     ref=ref or meta.get("ref", ""))

    def _lock_path(self, key):
        return os.path.join(self.root, ".%s.lock" % key)

    @contextlib.contextmanager
    def _key_lock(self, key, wait=True):
        """flock the key's lock file; yields its fd, or None if ``wait`` is
        False and someone holds it.  The file may be unlinked by prune while
        we wait: then lock the new one."""
        os.makedirs(self.root, exist_ok=True)
        path = self._lock_path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else
                                                 fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                yield None
                return
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            yield fd
        finally:
            os.close(fd)

    def get(self, path, want=None, id_map=None):
        """The cached ``Image`` for the archive at ``path``; unpack if new.

        ``want`` is ``containerImage``: it picks one image when the archive
        holds several.  ``id_map`` = (host base, size) unpacks a copy owned
        by that user-namespace range (``umoci unpack --uid-map``), cached
        apart.  Raises UnsupportedImageFormat (17) for anything that is not
        a sound image for this host, ImageFileNotFound (13) when there is no
        file, InvalidParameter (91) when the path is no file or block device.
        """
        src = archive.Source(path)
        try:
            sel = _select(src, want)
            if id_map:
                sel.key += "-u%d" % id_map[0]
                sel.id_map = id_map
            image = self._load(sel.key, sel.ref)
            if image is not None:
                return image
            with self._key_lock(sel.key) as fd:
                image = self._load(sel.key, sel.ref)
                if image is None:
                    image = self._unpack(src, sel, fd)
                return image
        finally:
            src.close()

    def _unpack(self, src, sel, lock_fd):
        log.info("Unpacking image %s (%s) from %s", sel.key, sel.ref,
                 src.path)
        staging = tempfile.mkdtemp(prefix="%s%s-" % (_STAGING, sel.key),
                                   dir=self.root)
        try:
            layout = os.path.join(staging, "layout")
            os.makedirs(os.path.join(layout, "blobs", "sha256"))
            expanded = self._build_layout(src, sel, layout)
            free = _free_bytes(self.root)
            if expanded > free:
                raise archive.no_space(self.root, "unpacking %s: it expands "
                                       "to %d bytes, %d are free"
                                       % (src.path, expanded, free))
            rootfs = os.path.join(staging, "rootfs")
            maps = []
            if sel.id_map:
                m = "0:%d:%d" % sel.id_map
                maps = ["--uid-map", m, "--gid-map", m]
            proc = subprocess.run(
                _die_with_us() + [self._umoci, "raw", "unpack"] + maps + [
                    "--image", "%s:%s" % (layout, _TAG), rootfs],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, universal_newlines=True,
                pass_fds=(lock_fd,))
            if proc.returncode != 0:
                if "no space left on device" in proc.stderr:
                    raise archive.no_space(self.root, "unpacking %s"
                                           % src.path)
                raise archive.fail(src.path, "umoci unpack failed: %s"
                                   % _last_line(proc.stderr))
            shutil.rmtree(layout)
            with open(os.path.join(staging, _READY), "w") as f:
                json.dump({"ref": sel.ref, "source": src.path,
                           "config": sel.config.get("config") or {},
                           "architecture": sel.config.get("architecture")},
                          f)
            os.rename(staging, self.entry(sel.key))
            staging = None
            return self._load(sel.key, sel.ref)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise archive.no_space(
                    self.root, "unpacking %s" % src.path) from e
            raise
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    def _build_layout(self, src, sel, layout):
        """Copy and check the layers, write config, manifest and index;
        return how many bytes the image expands to."""
        blobs = os.path.join(layout, "blobs", "sha256")
        totals = scan.Totals(self.limits)
        devices = set()
        config = sel.config
        descs = []
        for i, (name, hexd, media) in enumerate(sel.layers):
            dest = os.path.join(blobs, hexd)
            scanner = scan.Scanner(src.path, media, totals, devices)
            src.copy_blob(name, dest, hexd, scanner)
            desc = {"mediaType": media, "digest": "sha256:" + hexd,
                    "size": os.path.getsize(dest)}
            if scanner.dropped:
                desc = self._rewrite(src.path, dest, media, scanner.dropped,
                                     set(devices), blobs)
                if config is sel.config:
                    config = json.loads(sel.config_raw)
                config["rootfs"]["diff_ids"][i] = desc["digest"]
            descs.append(desc)
        config_raw = sel.config_raw if config is sel.config else \
            _canonical(config)
        config_desc = self._write_blob(blobs, config_raw, OCI_CONFIG)
        manifest_desc = self._write_blob(blobs, _canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config_desc, "layers": descs}), OCI_MANIFEST)
        manifest_desc["annotations"] = {REF_ANNOTATION: _TAG}
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        return totals.bytes

    @staticmethod
    def _write_blob(blobs, raw, media):
        hexd = hashlib.sha256(raw).hexdigest()
        with open(os.path.join(blobs, hexd), "wb") as f:
            f.write(raw)
        return {"mediaType": media, "digest": "sha256:" + hexd,
                "size": len(raw)}

    @staticmethod
    def _rewrite(image, blob, media, drop, devices, blobs):
        """The layer at ``blob`` as a plain tar without entries ``drop``."""
        tmp = blob + ".filtered"
        with open(blob, "rb") as f, open(tmp, "wb") as out:
            sink = _HashingFile(out)
            scanner = scan.Scanner(image, media, scan.Totals(
                configmod.ImageLimits(max_bytes=2 ** 62,
                                      max_entries=2 ** 62)),
                devices, out=sink, drop=drop)
            while True:
                chunk = f.read(archive.CHUNK)
                if not chunk:
                    break
                scanner.feed(chunk)
            scanner.close()
        os.unlink(blob)
        hexd = sink.h.hexdigest()
        os.rename(tmp, os.path.join(blobs, hexd))
        return {"mediaType": OCI_LAYER, "digest": "sha256:" + hexd,
                "size": os.path.getsize(os.path.join(blobs, hexd))}

    def keys(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.startswith("sha256-") and
                      os.path.exists(os.path.join(self.root, n, _READY)))

    def info(self, key):
        d = self.entry(key)
        with open(os.path.join(d, _READY)) as f:
            meta = json.load(f)
        return {"key": key, "ref": meta.get("ref"),
                "source": meta.get("source"), "path": d}

    def remove(self, key):
        with self._key_lock(key):
            shutil.rmtree(self.entry(key), ignore_errors=True)
            _unlink(self._lock_path(key))

    def prune_stale(self):
        """Remove what interrupted unpacks left: staging directories whose
        key's lock no live process holds, and lock files of images that are
        not cached.  Returns the names removed."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        removed = []
        for name in names:
            if name.startswith(_STAGING):
                key = name[len(_STAGING):].rpartition("-")[0]
            elif name.startswith(".") and name.endswith(".lock"):
                key = name[1:-len(".lock")]
                if os.path.exists(os.path.join(self.entry(key), _READY)):
                    continue
            else:
                continue
            path = os.path.join(self.root, name)
            if not os.path.lexists(path):
                continue            # went with its staging directory
            with self._key_lock(key, wait=False) as fd:
                if fd is None:
                    continue        # an unpack is under way
                if name.startswith(_STAGING):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(name)
                if not os.path.exists(os.path.join(self.entry(key),
                                                   _READY)):
                    _unlink(self._lock_path(key))
                    removed.append(os.path.basename(self._lock_path(key)))
        return removed


_PDEATHSIG = []


def _die_with_us():
    """``setpriv --pdeathsig KILL``: umoci dies with the process that
    started it, instead of unpacking on for nobody (util-linux >= 2.33:
    EL9, Debian 11; on older hosts the lock umoci inherits still keeps
    prune off its directory until it ends)."""
    if not _PDEATHSIG:
        setpriv = shutil.which("setpriv")
        ok = False
        if setpriv:
            help_ = subprocess.run([setpriv, "--help"],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   universal_newlines=True).stdout
            ok = "--pdeathsig" in help_
        _PDEATHSIG.append([setpriv, "--pdeathsig", "KILL"] if ok else [])
    return _PDEATHSIG[0]


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _last_line(text):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"

"""Container images from storage-domain volumes, unpacked once into a cache.

An image reaches the host as a raw volume holding a tar archive: an OCI image
archive (``skopeo copy ... oci-archive:``) or a docker-archive (``docker
save``).  vdsm rounds volumes up, and a block volume's tail after the archive
may be zeros or garbage, so the archive is read up to its end-of-archive
marker and the volume size is never trusted.  An unpacked OCI layout
directory is accepted too.

Reading a cached image costs only the tar headers and the few small JSON
files that name it (seeks over the layer data), so a start from the cache
does not depend on the image's size.  A new image is unpacked once:

1. its blobs are copied out of the archive into a private OCI layout, each
   checked against its sha256 digest as it streams;
2. a docker-archive is rewritten as an OCI layout on the way;
3. ``umoci unpack`` (a real, hardened layer applier: it confines every layer
   path to the rootfs) builds the rootfs;
4. the entry is renamed into place, keyed by manifest digest (OCI) or by
   image-config digest, the docker image ID (docker-archive).

Concurrent starts of one new image serialise on a per-key flock; the second
finds the entry ready.  Cached rootfs directories are never written to: every
container gets its own overlayfs upper layer (``bundle.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

from vdsm_container import errors

log = logging.getLogger("vdsm_container.images")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

_SMALL = 4 * 1024 * 1024        # index, manifests and configs are tiny
_READY = "ready.json"


def _fail(path, reason):
    return errors.UnsupportedImageFormat(reason, image=path)


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


class _Source:
    """The archive (or layout directory) on the volume, read lazily."""

    def __init__(self, path):
        self.path = path
        self._tar = None
        self._members = {}
        if os.path.isdir(path):
            return
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise errors.ImageFileNotFound(str(e),
                                           path=path)
        try:
            # "r:" reads headers only and seeks over member data; it stops
            # at the end-of-archive marker, ignoring whatever follows it.
            self._tar = tarfile.open(fileobj=self._file, mode="r:")
            for member in self._tar:
                # Names are only looked up, never used as paths: content is
                # copied to paths we build, so "../x" can't escape.
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if member.isfile():
                    self._members[name] = member
        except (tarfile.TarError, EOFError, OSError) as e:
            self.close()
            raise _fail(path, "not a readable image archive: %s" % e)

    def close(self):
        if self._tar is not None:
            self._tar.close()
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None

    def has(self, name):
        if self._tar is None:
            return os.path.isfile(os.path.join(self.path, name))
        return name in self._members

    @contextlib.contextmanager
    def open(self, name):
        if self._tar is None:
            real = os.path.realpath(os.path.join(self.path, name))
            if not real.startswith(os.path.realpath(self.path) + os.sep):
                raise _fail(self.path, "%s points outside the layout" % name)
            with open(real, "rb") as f:
                yield f
            return
        member = self._members.get(name)
        if member is None:
            raise _fail(self.path, "archive has no %s" % name)
        f = self._tar.extractfile(member)
        try:
            yield f
        finally:
            f.close()

    def read_json(self, name):
        with self.open(name) as f:
            data = f.read(_SMALL + 1)
        if len(data) > _SMALL:
            raise _fail(self.path, "%s is too large" % name)
        try:
            return json.loads(data), data
        except ValueError as e:
            raise _fail(self.path, "%s is not JSON: %s" % (name, e))

    def copy_verified(self, name, dest, digest=None):
        """Copy member ``name`` to ``dest``; check its sha256 if given."""
        h = hashlib.sha256()
        try:
            with self.open(name) as src, open(dest, "wb") as out:
                while True:
                    chunk = src.read(1024 * 1024)
                    if not chunk:
                        break
                    h.update(chunk)
                    out.write(chunk)
        except (tarfile.TarError, EOFError) as e:
            raise _fail(self.path, "truncated archive reading %s: %s"
                        % (name, e))
        if digest is not None and h.hexdigest() != digest:
            raise _fail(self.path, "digest mismatch for %s: content is "
                        "sha256:%s" % (name, h.hexdigest()))
        return h.hexdigest()


def _unsafe_name(name):
    parts = name.split("/")
    return name.startswith("/") or ".." in parts or "\0" in name


def check_layer(path, blob):
    """Refuse a layer that tries to leave the rootfs or make devices.

    umoci confines every path it writes to the rootfs (securejoin), so a
    symlink planted by one layer can't carry a later layer's files out;
    this check refuses outright what no sound image contains: absolute or
    ``..`` names (whiteouts included), hard links to such names, and device
    nodes (a container must not get a host device through its image).
    """
    try:
        with tarfile.open(blob, mode="r:*") as t:
            for m in t:
                if _unsafe_name(m.name):
                    raise _fail(path, "layer entry %r leaves the rootfs"
                                % m.name)
                if m.islnk() and _unsafe_name(m.linkname):
                    raise _fail(path, "hard link %r -> %r leaves the rootfs"
                                % (m.name, m.linkname))
                if m.ischr() or m.isblk():
                    raise _fail(path, "layer entry %r is a device node"
                                % m.name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise _fail(path, "layer %s is not a readable tar: %s"
                    % (os.path.basename(blob), e))


def _blob_name(digest, path):
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not re.match(r"^[0-9a-f]{64}$", hexd):
        raise _fail(path, "unsupported digest %r" % digest)
    return "blobs/sha256/" + hexd


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class _Selection:
    """Which image of the archive to run, and the key that names it."""

    def __init__(self, key, ref, build_layout):
        self.key = key
        self.ref = ref
        self.build_layout = build_layout   # fn(layout_dir) -> tag
        self.id_map = None


def _select_oci(src, want):
    index, _ = src.read_json("index.json")
    manifests = [m for m in index.get("manifests", [])
                 if m.get("mediaType", OCI_MANIFEST) in (OCI_MANIFEST,
                                                         DOCKER_MANIFEST)]
    if not manifests:
        raise _fail(src.path, "index.json lists no image manifest")

    def ref_of(m):
        return (m.get("annotations") or {}).get(REF_ANNOTATION)

    chosen = _choose(src.path, manifests, ref_of, want)
    digest = chosen["digest"]
    mname = _blob_name(digest, src.path)
    manifest, raw = src.read_json(mname)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise _fail(src.path, "digest mismatch for manifest %s" % digest)
    ref = ref_of(chosen) or "latest"

    def build_layout(layout):
        for desc in [manifest["config"]] + list(manifest.get("layers", [])):
            name = _blob_name(desc["digest"], src.path)
            src.copy_verified(name, os.path.join(layout, name),
                              desc["digest"].split(":", 1)[1])
        for desc in manifest.get("layers", []):
            check_layer(src.path, os.path.join(
                layout, _blob_name(desc["digest"], src.path)))
        with open(os.path.join(layout, mname), "wb") as f:
            f.write(raw)
        _write_index(layout, chosen, "image")
        return "image"

    return _Selection("sha256-" + digest.split(":", 1)[1], ref,
                      build_layout)


def _select_docker(src, want):
    entries, _ = src.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise _fail(src.path, "manifest.json lists no image")

    def ref_of(e):
        tags = e.get("RepoTags") or []
        return tags[0] if tags else None

    def matches(e, w):
        return any(_same_ref(t, w) for t in (e.get("RepoTags") or []))

    chosen = _choose(src.path, entries, ref_of, want, matches)
    config_name = chosen.get("Config", "")
    m = re.match(r"^(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?$",
                 config_name)
    if not m:
        raise _fail(src.path, "unexpected config name %r" % config_name)
    config_hex = m.group(1)
    layers = chosen.get("Layers") or []

    def build_layout(layout):
        cfg_path = os.path.join(layout, "config.tmp")
        src.copy_verified(config_name, cfg_path, config_hex)
        os.rename(cfg_path, os.path.join(layout, "blobs/sha256", config_hex))
        with open(os.path.join(layout, "blobs/sha256", config_hex)) as f:
            diff_ids = json.load(f).get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(layers):
            raise _fail(src.path, "config lists %d layers, manifest %d"
                        % (len(diff_ids), len(layers)))
        descs = []
        for name, diff_id in zip(layers, diff_ids):
            tmp = os.path.join(layout, "layer.tmp")
            # Docker layers are stored uncompressed: digest == diff_id.
            hexd = src.copy_verified(name, tmp, diff_id.split(":", 1)[1])
            check_layer(src.path, tmp)
            os.rename(tmp, os.path.join(layout, "blobs/sha256", hexd))
            descs.append({"mediaType": OCI_LAYER, "digest": "sha256:" + hexd,
                          "size": os.path.getsize(
                              os.path.join(layout, "blobs/sha256", hexd))})
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG,
                       "digest": "sha256:" + config_hex,
                       "size": os.path.getsize(os.path.join(
                           layout, "blobs/sha256", config_hex))},
            "layers": descs,
        }
        raw = _canonical(manifest)
        mhex = hashlib.sha256(raw).hexdigest()
        with open(os.path.join(layout, "blobs/sha256", mhex), "wb") as f:
            f.write(raw)
        _write_index(layout, {"mediaType": OCI_MANIFEST,
                              "digest": "sha256:" + mhex,
                              "size": len(raw)}, "image")
        return "image"

    return _Selection("sha256-" + config_hex, ref_of(chosen) or "latest",
                      build_layout)


def _same_ref(have, want):
    """docker.io/library/redis:7 == redis:7; a missing tag means latest."""
    def norm(ref):
        name, _, tag = ref.rpartition(":")
        if not name or "/" in tag:
            name, tag = ref, "latest"
        for prefix in ("docker.io/library/", "docker.io/", "library/"):
            if name.startswith(prefix):
                name = name[len(prefix):]
        return name, tag
    return have == want or norm(have) == norm(want)


def _choose(path, items, ref_of, want, matches=None):
    matches = matches or (lambda item, w: ref_of(item) is not None and
                          _same_ref(ref_of(item), w))
    if want:
        found = [i for i in items if matches(i, want)]
        if not found:
            if len(items) == 1 and ref_of(items[0]) is None:
                return items[0]     # one unnamed image: it is the one
            raise errors.invalid("containerImage", want,
                                 "not in the archive; it has: %s"
                                 % ", ".join(str(ref_of(i)) for i in items))
        return found[0]
    if len(items) > 1:
        raise errors.invalid("containerImage", None,
                             "the archive holds %d images (%s): name one"
                             % (len(items),
                                ", ".join(str(ref_of(i)) for i in items)))
    return items[0]


def _write_index(layout, desc, tag):
    desc = dict(desc)
    desc["annotations"] = {REF_ANNOTATION: tag}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def _select(src, want):
    if src.has("index.json") and src.has("oci-layout"):
        return _select_oci(src, want)
    if src.has("manifest.json"):
        return _select_docker(src, want)
    raise _fail(src.path, "neither an OCI archive (index.json, oci-layout) "
                "nor a docker-archive (manifest.json)")


class Cache:
    """Unpacked images, one directory per key under ``root``."""

    def __init__(self, root, umoci="umoci"):
        self.root = root
        self._umoci = umoci

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

    @contextlib.contextmanager
    def _key_lock(self, key):
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(os.path.join(self.root, ".%s.lock" % key),
                     os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, path, want=None, id_map=None):
        """The cached ``Image`` for the archive at ``path``; unpack if new.

        ``want`` is ``containerImage``: it picks one image when the archive
        holds several.  ``id_map`` = (host base, size) unpacks a copy owned
        by that user-namespace range (``umoci unpack --uid-map``), cached
        apart.  Raises UnsupportedImageFormat (17) for anything that is not
        a sound image, ImageFileNotFound (13) when there is no file.
        """
        src = _Source(path)
        try:
            sel = _select(src, want)
            if id_map:
                sel.key += "-u%d" % id_map[0]
                sel.id_map = id_map
            image = self._load(sel.key, sel.ref)
            if image is not None:
                return image
            with self._key_lock(sel.key):
                image = self._load(sel.key, sel.ref)
                if image is None:
                    image = self._unpack(src, sel)
                return image
        finally:
            src.close()

    def _unpack(self, src, sel):
        log.info("Unpacking image %s (%s) from %s", sel.key, sel.ref,
                 src.path)
        staging = tempfile.mkdtemp(prefix=".new-%s-" % sel.key,
                                   dir=self.root)
        try:
            layout = os.path.join(staging, "layout")
            os.makedirs(os.path.join(layout, "blobs", "sha256"))
            tag = sel.build_layout(layout)
            bundle = os.path.join(staging, "bundle")
            maps = []
            if sel.id_map:
                m = "0:%d:%d" % sel.id_map
                maps = ["--uid-map", m, "--gid-map", m]
            proc = subprocess.run(
                [self._umoci, "unpack"] + maps + [
                    "--image", "%s:%s" % (layout, tag), bundle],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                universal_newlines=True)
            if proc.returncode != 0:
                raise _fail(src.path, "umoci unpack failed: %s"
                            % _last_line(proc.stderr))
            config = _image_config(layout, tag)
            final = self.entry(sel.key)
            os.rename(os.path.join(bundle, "rootfs"),
                      os.path.join(staging, "rootfs"))
            with open(os.path.join(staging, _READY), "w") as f:
                json.dump({"ref": sel.ref, "source": src.path,
                           "config": config}, f)
            shutil.rmtree(layout)
            shutil.rmtree(bundle)
            os.rename(staging, final)
            staging = None
            return self._load(sel.key, sel.ref)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

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
        try:
            os.unlink(os.path.join(self.root, ".%s.lock" % key))
        except FileNotFoundError:
            pass


def _image_config(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    desc = index["manifests"][0]
    hexd = desc["digest"].split(":", 1)[1]
    with open(os.path.join(layout, "blobs/sha256", hexd)) as f:
        manifest = json.load(f)
    with open(os.path.join(layout, "blobs/sha256",
                           manifest["config"]["digest"].split(":", 1)[1])) \
            as f:
        return json.load(f).get("config") or {}


def _last_line(text):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"

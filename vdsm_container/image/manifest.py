"""Which image of an archive to run: index, manifest and config, checked.

An OCI archive names its images in index.json; an entry may be a manifest,
or another index (a multi-arch image: ``skopeo copy --all``, ``buildah
manifest push --all``), which is resolved to the host's platform.  A
docker-archive lists its images in manifest.json.  Either way the result is
a ``Selection``: the key that names the image in the cache, its config, and
its layers as (archive member, sha256 hex, media type).

Every document is checked for the shape it must have before it is used, so
a malformed one gets vdsm's UnsupportedImageFormat (17) naming the document
and the field, never a KeyError or TypeError; the image config's
architecture and OS must be the host's (the image would only fail with
"exec format error" later).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import re
from typing import List, Optional, Tuple

from vdsm_container import errors
from vdsm_container.image.archive import fail

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
_INDEXES = (OCI_INDEX, DOCKER_LIST)
_MAX_DEPTH = 4          # index -> index -> manifest is what tools write
_MAX_MANIFESTS = 1024

# Go's GOARCH names, as image configs spell them (image-spec config.md).
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64",
           "arm64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
           "i386": "386", "i686": "386", "armv7l": "arm", "armv6l": "arm",
           "riscv64": "riscv64", "mips64": "mips64"}


def host_platform():
    machine = platform.machine()
    return "linux", _GOARCH.get(machine, machine)


@dataclasses.dataclass(frozen=True)
class Target:
    """The platform an image must be built for, and who runs it (for the
    message): this host by default; a cluster's architecture when
    ovirt-container checks an archive before uploading it."""

    os: str
    arch: str
    who: str = "this host"

    @classmethod
    def host(cls):
        return cls(*host_platform())


@dataclasses.dataclass
class Selection:
    """One image of the archive, ready to be copied into a layout."""

    key: str                    # "sha256-<hex>": names the cache entry
    ref: str
    config: dict                # the whole image config document
    config_raw: bytes
    layers: List[Tuple[str, Optional[str], str]]   # member, hex, type
    id_map: Optional[Tuple[int, int]] = None


def _expect(path, doc, value, kind, where):
    if not isinstance(value, kind) or kind is int and \
            isinstance(value, bool):
        raise fail(path, "%s: %s must be %s, not %s"
                   % (doc, where, _JSON[kind], _JSON.get(type(value),
                                                         "something else")))
    return value


# JSON's names for what json.loads returns.
_JSON = {dict: "an object", list: "a list", str: "a string",
         int: "an integer", float: "a number", bool: "a boolean",
         type(None): "null"}


def _field(path, doc, obj, key, kind, where, required=True):
    if key not in obj:
        if required:
            raise fail(path, "%s: %s.%s is missing" % (doc, where, key))
        return None
    return _expect(path, doc, obj[key], kind, "%s.%s" % (where, key))


def blob_name(path, doc, digest):
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not re.match(r"^[0-9a-f]{64}$", hexd):
        raise fail(path, "%s: unsupported digest %r (sha256 only)"
                   % (doc, digest))
    return "blobs/sha256/" + hexd


def _descriptor(path, doc, d, where):
    _expect(path, doc, d, dict, where)
    digest = _field(path, doc, d, "digest", str, where)
    blob_name(path, doc, digest)
    _field(path, doc, d, "mediaType", str, where, required=False)
    _field(path, doc, d, "size", int, where, required=False)
    annotations = _field(path, doc, d, "annotations", dict, where,
                         required=False) or {}
    platform_ = _field(path, doc, d, "platform", dict, where,
                       required=False)
    if platform_ is not None:
        for key in ("architecture", "os", "variant"):
            _field(path, doc, platform_, key, str, where + ".platform",
                   required=key != "variant")
    ref = annotations.get(REF_ANNOTATION)
    if ref is not None:
        _expect(path, doc, ref, str, where + ".annotations")
    return d


def _read_checked(src, doc, desc):
    """A blob's JSON, checked against its descriptor's digest."""
    name = blob_name(src.path, doc, desc["digest"])
    if not src.has(name):
        raise fail(src.path, "%s names %s, which the archive lacks"
                   % (doc, desc["digest"]))
    data, raw = src.read_json(name)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != desc["digest"]:
        raise fail(src.path, "digest mismatch for %s" % desc["digest"])
    return data, raw


def _manifests(src, index, doc, ref, depth, out):
    """Flatten an index to (descriptor, ref) of image manifests."""
    _expect(src.path, doc, index, dict, "the document")
    entries = _field(src.path, doc, index, "manifests", list, "index")
    for i, d in enumerate(entries):
        where = "manifests[%d]" % i
        d = _descriptor(src.path, doc, d, where)
        own = (d.get("annotations") or {}).get(REF_ANNOTATION) or ref
        media = d.get("mediaType", OCI_MANIFEST)
        if media in _INDEXES:
            if depth >= _MAX_DEPTH:
                raise fail(src.path, "%s: %s: indexes nested more than %d "
                           "deep" % (doc, where, _MAX_DEPTH))
            nested, _ = _read_checked(src, doc, d)
            _manifests(src, nested, "index " + d["digest"], own, depth + 1,
                       out)
        elif media in _MANIFESTS:
            out.append((d, own, doc))
            if len(out) > _MAX_MANIFESTS:
                raise fail(src.path, "more than %d manifests"
                           % _MAX_MANIFESTS)
    return out


def _platform_of(desc):
    p = desc.get("platform")
    return None if p is None else (p["os"], p["architecture"])


def select(src, want, target=None):
    """The image of the archive ``src`` to run (a ``Selection``)."""
    if src.has("index.json") and src.has("oci-layout"):
        return select_oci(src, want, target)
    if src.has("manifest.json"):
        return select_docker(src, want, target)
    raise fail(src.path, "neither an OCI archive (index.json, oci-layout) "
               "nor a docker-archive (manifest.json)")


def select_oci(src, want, target=None):
    target = target or Target.host()
    index, _ = src.read_json("index.json")
    found = _manifests(src, index, "index.json", None, 0, [])
    if not found:
        raise fail(src.path, "index.json lists no image manifest")
    host = (target.os, target.arch)
    runnable = [(d, r) for d, r, _ in found
                if _platform_of(d) in (None, host)]
    referrer = {d["digest"]: doc for d, _, doc in found}
    if not runnable:
        have = ", ".join(sorted("%s/%s" % _platform_of(d)
                                for d, _, _ in found))
        raise fail(src.path, "no image for the platform %s/%s %s runs; "
                   "the archive has %s" % (host + (target.who, have)))
    # Several platforms of one name: the host's is the one.
    chosen, ref = _choose(runnable, want)
    manifest, raw = _read_checked(src, referrer[chosen["digest"]], chosen)
    doc = "manifest " + chosen["digest"]
    _expect(src.path, doc, manifest, dict, "the document")
    config_desc = _descriptor(src.path, doc, _field(
        src.path, doc, manifest, "config", dict, "manifest"), "config")
    layers = []
    for i, d in enumerate(_field(src.path, doc, manifest, "layers", list,
                                 "manifest")):
        d = _descriptor(src.path, doc, d, "layers[%d]" % i)
        media = _field(src.path, doc, d, "mediaType", str, "layers[%d]" % i)
        name = blob_name(src.path, doc, d["digest"])
        layers.append((name, d["digest"].split(":", 1)[1], media))
    config, config_raw = _read_checked(src, doc, config_desc)
    check_config(src.path, config, len(layers), target)
    return Selection("sha256-" + chosen["digest"].split(":", 1)[1],
                     ref or "latest", config, config_raw, layers)


def select_docker(src, want, target=None):
    doc = "manifest.json"
    entries, _ = src.read_json(doc)
    _expect(src.path, doc, entries, list, "the document")
    if not entries:
        raise fail(src.path, "manifest.json lists no image")
    items = []
    for i, e in enumerate(entries):
        where = "[%d]" % i
        _expect(src.path, doc, e, dict, where)
        tags = _field(src.path, doc, e, "RepoTags", list, where,
                      required=False) or []
        for t in tags:
            _expect(src.path, doc, t, str, where + ".RepoTags[]")
        _field(src.path, doc, e, "Config", str, where)
        for j, layer in enumerate(_field(src.path, doc, e, "Layers", list,
                                         where)):
            _expect(src.path, doc, layer, str, "%s.Layers[%d]" % (where, j))
        items.append(({"tags": tags, "entry": e}, tags[0] if tags else None))
    chosen, ref = _choose(items, want, docker=True)
    entry = chosen["entry"]
    m = re.match(r"^(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?$",
                 entry["Config"])
    if not m:
        raise fail(src.path, "manifest.json: unexpected Config name %r"
                   % entry["Config"])
    config_hex = m.group(1)
    if not src.has(entry["Config"]):
        raise fail(src.path, "archive has no %s" % entry["Config"])
    config, config_raw = src.read_json(entry["Config"])
    if hashlib.sha256(config_raw).hexdigest() != config_hex:
        raise fail(src.path, "digest mismatch for %s" % entry["Config"])
    diff_ids = check_config(src.path, config, len(entry["Layers"]),
                            target)
    # Docker layers are stored uncompressed: their digest is the diff_id.
    layers = [(name, diff.split(":", 1)[1], OCI_LAYER)
              for name, diff in zip(entry["Layers"], diff_ids)]
    return Selection("sha256-" + config_hex, ref or "latest", config,
                     config_raw, layers)


def check_config(path, config, nlayers, target=None):
    """Check an image config's shape and platform; return its diff_ids."""
    doc = "image config"
    _expect(path, doc, config, dict, "the document")
    inner = _field(path, doc, config, "config", dict, "config",
                   required=False)
    if inner is not None:
        for key, kind in (("Cmd", list), ("Entrypoint", list),
                          ("Env", list), ("User", str),
                          ("WorkingDir", str)):
            value = inner.get(key)
            if value is not None:
                _expect(path, doc, value, kind, "config." + key)
                if kind is list:
                    for v in value:
                        _expect(path, doc, v, str, "config.%s[]" % key)
    rootfs = _field(path, doc, config, "rootfs", dict, "config")
    diff_ids = _field(path, doc, rootfs, "diff_ids", list, "rootfs")
    for i, d in enumerate(diff_ids):
        _expect(path, doc, d, str, "rootfs.diff_ids[%d]" % i)
        blob_name(path, doc, d)
    if len(diff_ids) != nlayers:
        raise fail(path, "image config lists %d layers, the manifest %d"
                   % (len(diff_ids), nlayers))
    check_platform(path, config, target)
    return diff_ids


def check_platform(path, config, target=None):
    """Refuse an image built for another architecture or OS."""
    target = target or Target.host()
    os_, arch, who = target.os, target.arch, target.who
    have_arch = config.get("architecture")
    have_os = config.get("os")
    if have_arch is not None and have_arch != arch:
        raise fail(path, "the image is built for architecture %r; %s "
                   "runs %r" % (have_arch, who, arch))
    if have_os is not None and have_os != os_:
        raise fail(path, "the image is built for OS %r; %s runs %r"
                   % (have_os, who, os_))


def same_ref(have, want):
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


def _choose(items, want, docker=False):
    """Pick (item, ref) by ``containerImage``: items are (item, ref)."""
    def matches(item, ref):
        if docker:
            return any(same_ref(t, want) for t in item["tags"])
        return ref is not None and same_ref(ref, want)
    if want:
        found = [(i, r) for i, r in items if matches(i, r)]
        if not found:
            if len(items) == 1 and items[0][1] is None:
                return items[0]     # one unnamed image: it is the one
            raise errors.invalid("containerImage", want,
                                 "not in the archive; it has: %s"
                                 % ", ".join(str(r) for _, r in items))
        return found[0]
    if len({r for _, r in items}) > 1 or len(items) > 1 and docker:
        raise errors.invalid("containerImage", None,
                             "the archive holds %d images (%s): name one"
                             % (len(items),
                                ", ".join(str(r) for _, r in items)))
    return items[0]

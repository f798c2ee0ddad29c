"""Build image archives in tests, offline: crafted layers and documents.

``layer`` makes a tar layer from (TarInfo, data) entries; ``oci_archive``
wraps layers and a config into an OCI image archive, optionally several
platforms under a nested index; ``busybox_layers`` reuses the busybox
image's layers so that a crafted image can also run.
"""

import gzip
import hashlib
import io
import json
import platform
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(
    platform.machine(), platform.machine())
OTHER_ARCH = "arm64" if HOST_ARCH != "arm64" else "amd64"


def entry(name, kind=tarfile.REGTYPE, data=b"", linkname="", mode=None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = mode if mode is not None else (
        0o755 if kind == tarfile.DIRTYPE else 0o644)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, data)
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Blobs(dict):
    def add(self, data, media):
        self[sha(data)] = data
        return {"mediaType": media, "digest": sha(data), "size": len(data)}


def image_blobs(blobs, layers, arch=None, os_="linux", config=None,
                gzipped=False):
    """Add one image's blobs; return its manifest descriptor.  ``layers``
    are plain tar bytes, bottom first (``gzipped``: stored gzip)."""
    cfg = {"architecture": arch or HOST_ARCH, "os": os_,
           "config": dict({"Cmd": ["/bin/sh"]}, **(config or {})),
           "rootfs": {"type": "layers",
                      "diff_ids": [sha(d) for d in layers]}}
    descs = []
    for d in layers:
        if gzipped:
            descs.append(blobs.add(gzip.compress(d, 1), OCI_LAYER_GZIP))
        else:
            descs.append(blobs.add(d, OCI_LAYER))
    config_desc = blobs.add(json.dumps(cfg).encode(), OCI_CONFIG)
    return blobs.add(json.dumps({"schemaVersion": 2,
                                 "mediaType": OCI_MANIFEST,
                                 "config": config_desc,
                                 "layers": descs}).encode(), OCI_MANIFEST)


def write_archive(path, blobs, index, extra=None):
    """The OCI archive: blobs, oci-layout, index.json (a dict or bytes)."""
    with tarfile.open(str(path), "w") as t:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for digest, data in blobs.items():
            put("blobs/sha256/" + digest.split(":")[1], data)
        put("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        put("index.json", index if isinstance(index, bytes)
            else json.dumps(index).encode())
        for name, data in (extra or {}).items():
            put(name, data)
    return str(path)


def oci_archive(path, layers, ref=None, **kw):
    """An OCI image archive of one image."""
    blobs = Blobs()
    desc = image_blobs(blobs, layers, **kw)
    if ref:
        desc["annotations"] = {REF_ANNOTATION: ref}
    return write_archive(path, blobs, {"schemaVersion": 2,
                                       "manifests": [desc]})


def busybox_layers(archive):
    """The plain tar layers of the busybox OCI archive."""
    with tarfile.open(archive) as t:
        def read(name):
            return t.extractfile(name).read()
        index = json.loads(read("index.json"))
        man = json.loads(read("blobs/sha256/" + index["manifests"][0][
            "digest"].split(":")[1]))
        out = []
        for d in man["layers"]:
            data = read("blobs/sha256/" + d["digest"].split(":")[1])
            if d["mediaType"].endswith("gzip"):
                data = gzip.decompress(data)
            out.append(data)
        return out

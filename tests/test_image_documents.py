"""Images people actually have, and documents nobody should send.

Multi-arch indexes resolve to the host's platform; an image for another
architecture is refused at create naming it; malformed index, manifest and
config documents get UnsupportedImageFormat (17) naming the document and
the field, never a Python error's text.
"""

import hashlib
import json
import os
import tarfile

import pytest

from vdsm_container import errors
from vdsm_container.image import cache as images

from . import imagebuild as ib
from .imagebuild import entry, layer

PYTHON_ERRORS = ("list indices", "KeyError", "'config'", "recursion",
                 "object has no attribute", "not subscriptable",
                 "NoneType", "TypeError")


@pytest.fixture
def cache(tmp_path):
    return images.Cache(str(tmp_path / "cache"))


def refused(cache, path, *words, cls=errors.UnsupportedImageFormat):
    with pytest.raises(cls) as e:
        cache.get(path)
    text = str(e.value)
    for w in words:
        assert w in text
    for bad in PYTHON_ERRORS:
        assert bad not in text
    assert cache.keys() == []
    return e.value


def marker_layer(name):
    return layer([entry("etc", tarfile.DIRTYPE),
                  entry("etc/platform", data=name.encode())])


def test_foreign_architecture_refused_at_create(cache, tmp_path):
    path = ib.oci_archive(tmp_path / "arm.tar", [marker_layer("arm")],
                          arch=ib.OTHER_ARCH)
    err = refused(cache, path, "architecture %r" % ib.OTHER_ARCH,
                  ib.HOST_ARCH)
    assert err.code == 17


def test_foreign_os_refused(cache, tmp_path):
    path = ib.oci_archive(tmp_path / "win.tar", [marker_layer("win")],
                          os_="windows")
    refused(cache, path, "OS 'windows'")


def test_docker_archive_of_another_architecture(cache, tmp_path,
                                                busybox_docker):
    def to_other_arch(m, data):
        return m, data
    out = tmp_path / "arm-docker.tar"
    with tarfile.open(busybox_docker) as tin, tarfile.open(out, "w") as tout:
        members = {m.name: (m, tin.extractfile(m).read() if m.isfile()
                            else None) for m in tin.getmembers()}
        manifest = json.loads(members["manifest.json"][1])
        cfg_name = manifest[0]["Config"]
        cfg = json.loads(members[cfg_name][1])
        cfg["architecture"] = ib.OTHER_ARCH
        raw = json.dumps(cfg).encode()
        new_name = hashlib.sha256(raw).hexdigest() + ".json"
        manifest[0]["Config"] = new_name
        members.pop(cfg_name)
        members[new_name] = (tarfile.TarInfo(new_name), raw)
        members["manifest.json"] = (members["manifest.json"][0],
                                    json.dumps(manifest).encode())
        for m, data in members.values():
            if data is not None:
                m.size = len(data)
                tout.addfile(m, __import__("io").BytesIO(data))
            else:
                tout.addfile(m)
    refused(cache, str(out), ib.OTHER_ARCH)


def _multi_arch(tmp_path, nested, with_host=True, ref="multi:1"):
    """A multi-arch image as skopeo copy --all writes it (nested index), or
    as a flat index with platform fields (buildah manifest push --all)."""
    blobs = ib.Blobs()
    descs = []
    arches = [ib.OTHER_ARCH, "s390x" if ib.HOST_ARCH != "s390x" else
              "ppc64le"] + ([ib.HOST_ARCH] if with_host else [])
    for arch in arches:
        d = ib.image_blobs(blobs, [marker_layer(arch)], arch=arch)
        d["platform"] = {"architecture": arch, "os": "linux"}
        descs.append(d)
    # An attestation manifest, as buildkit adds: platform unknown/unknown.
    att = ib.image_blobs(blobs, [marker_layer("attestation")])
    att["platform"] = {"architecture": "unknown", "os": "unknown"}
    descs.append(att)
    if nested:
        inner = blobs.add(json.dumps({"schemaVersion": 2,
                                      "mediaType": ib.OCI_INDEX,
                                      "manifests": descs}).encode(),
                          ib.OCI_INDEX)
        inner["annotations"] = {ib.REF_ANNOTATION: ref}
        top = [inner]
    else:
        for d in descs:
            d["annotations"] = {ib.REF_ANNOTATION: ref}
        top = descs
    return ib.write_archive(tmp_path / "multi.tar", blobs,
                            {"schemaVersion": 2, "manifests": top})


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "flat"])
def test_multi_arch_index_resolves_to_host(cache, tmp_path, nested):
    path = _multi_arch(tmp_path, nested)
    img = cache.get(path)
    with open(os.path.join(img.rootfs, "etc", "platform")) as f:
        assert f.read() == ib.HOST_ARCH
    assert img.ref == "multi:1"
    assert cache.get(path, "multi:1").key == img.key


def test_multi_arch_without_the_host_platform(cache, tmp_path):
    path = _multi_arch(tmp_path, True, with_host=False)
    refused(cache, path, "no image for the platform linux/%s this host runs"
            % ib.HOST_ARCH, "linux/" + ib.OTHER_ARCH)


def _with_index(tmp_path, index, blobs=None):
    return ib.write_archive(tmp_path / "bad.tar", blobs or ib.Blobs(),
                            index)


DESC = {"mediaType": ib.OCI_MANIFEST, "digest": "sha256:" + "a" * 64,
        "size": 10}


@pytest.mark.parametrize("index,words", [
    ({"manifests": {"a": 1}}, "manifests must be a list"),
    ({"manifests": ["sha256:abc"]}, "manifests[0] must be an object"),
    ({"schemaVersion": 2}, "index.manifests is missing"),
    ([1, 2], "must be an object"),
    ({"manifests": [{"mediaType": ib.OCI_MANIFEST}]},
     "manifests[0].digest is missing"),
    ({"manifests": [dict(DESC, digest=5)]}, "digest must be a string"),
    ({"manifests": [dict(DESC, digest="md5:xx")]}, "unsupported digest"),
    ({"manifests": [dict(DESC, platform="linux")]},
     "platform must be an object"),
    ({"manifests": [dict(DESC, annotations={ib.REF_ANNOTATION: 7})]},
     "must be a string"),
    ({"manifests": [DESC]}, "which the archive lacks"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_index(cache, tmp_path, index, words):
    refused(cache, _with_index(tmp_path, index), "index.json", words)


def test_deeply_nested_json(cache, tmp_path):
    path = _with_index(tmp_path, b"[" * 200000 + b"]" * 200000)
    refused(cache, path, "index.json is nested too deeply")


def test_index_chain_too_deep(cache, tmp_path):
    blobs = ib.Blobs()
    desc = ib.image_blobs(blobs, [marker_layer("x")])
    for _ in range(8):
        desc = blobs.add(json.dumps({"schemaVersion": 2,
                                     "manifests": [desc]}).encode(),
                         ib.OCI_INDEX)
    path = ib.write_archive(tmp_path / "deep.tar", blobs,
                            {"schemaVersion": 2, "manifests": [desc]})
    refused(cache, path, "nested more than")


def _image_with(tmp_path, manifest=None, config=None):
    """One image whose manifest or config document is replaced."""
    blobs = ib.Blobs()
    cfg = blobs.add(json.dumps(config).encode(), ib.OCI_CONFIG) \
        if config is not None else None
    real = ib.image_blobs(blobs, [marker_layer("x")])
    doc = json.loads(blobs[real["digest"]])
    if cfg is not None:
        doc["config"] = cfg
    if manifest is not None:
        doc = manifest(doc)
    desc = blobs.add(json.dumps(doc).encode(), ib.OCI_MANIFEST)
    return ib.write_archive(tmp_path / "bad.tar", blobs,
                            {"schemaVersion": 2, "manifests": [desc]})


@pytest.mark.parametrize("change,words", [
    (lambda m: {k: v for k, v in m.items() if k != "config"},
     "manifest.config is missing"),
    (lambda m: dict(m, config=["x"]), "manifest.config must be an object"),
    (lambda m: dict(m, layers={"a": 1}), "manifest.layers must be a list"),
    (lambda m: dict(m, layers=[dict(m["layers"][0], mediaType=None)]),
     "layers[0].mediaType must be a string"),
    (lambda m: dict(m, layers=[dict(
        m["layers"][0], mediaType=ib.OCI_LAYER + "+zstd")]),
     "not supported"),
    (lambda m: [m], "the document must be an object"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_manifest(cache, tmp_path, change, words):
    refused(cache, _image_with(tmp_path, manifest=change), words)


@pytest.mark.parametrize("config,words", [
    ({"architecture": ib.HOST_ARCH, "os": "linux"},
     "image config: config.rootfs is missing"),
    ({"rootfs": {"diff_ids": "x"}}, "rootfs.diff_ids must be a list"),
    ({"rootfs": {"diff_ids": []}}, "lists 0 layers, the manifest 1"),
    ({"rootfs": {"diff_ids": [1]}}, "rootfs.diff_ids[0] must be a string"),
    ({"config": {"Cmd": "sh -c x"}, "rootfs": {"diff_ids": []}},
     "config.Cmd must be a list"),
    ({"config": {"Env": [1]}, "rootfs": {"diff_ids": []}},
     "config.Env[] must be a string"),
    ("just a string", "image config: the document must be an object"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_config(cache, tmp_path, config, words):
    refused(cache, _image_with(tmp_path, config=config), words)


def test_malformed_docker_manifest(cache, tmp_path):
    for doc, words in (({"a": 1}, "must be a list"),
                       ([{"Config": 5, "Layers": []}],
                        "[0].Config must be a string"),
                       ([{"Config": "x.json"}], "[0].Layers is missing"),
                       ([["x"]], "[0] must be an object")):
        path = tmp_path / "d.tar"
        with tarfile.open(path, "w") as t:
            raw = json.dumps(doc).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(raw)
            t.addfile(info, __import__("io").BytesIO(raw))
        refused(cache, str(path), "manifest.json", words)

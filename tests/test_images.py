"""Image archives from volumes: formats, tails, digests, cache."""

import io
import json
import os
import tarfile
import threading

import pytest

from vdsm_container import errors
from vdsm_container.image import cache as images


@pytest.fixture
def cache(tmp_path):
    return images.Cache(str(tmp_path / "cache"))


def test_oci_archive(cache, busybox_oci):
    img = cache.get(busybox_oci)
    assert img.key.startswith("sha256-")
    assert os.path.isfile(os.path.join(img.rootfs, "bin", "busybox"))
    assert img.config["Cmd"] == ["/bin/sh"]
    assert img.ref == "busybox:latest"


def test_docker_archive(cache, busybox_docker):
    img = cache.get(busybox_docker, "busybox:1.36")
    assert os.path.isfile(os.path.join(img.rootfs, "bin", "busybox"))
    assert img.config["Cmd"] == ["/bin/sh"]


def test_docker_ref_forms(cache, busybox_docker):
    for ref in ("docker.io/library/busybox:1.36", "library/busybox:1.36"):
        assert cache.get(busybox_docker, ref).key == \
            cache.get(busybox_docker, "busybox:1.36").key
    with pytest.raises(errors.InvalidParameter):
        cache.get(busybox_docker, "busybox:9.9")


def _volume(tmp_path, archive, tail):
    """The archive as vdsm's rounded-up volume: ``tail`` after it."""
    path = tmp_path / "volume"
    with open(archive, "rb") as src, open(path, "wb") as out:
        out.write(src.read())
        out.write(tail)
    return str(path)


@pytest.mark.parametrize("tail", [b"\0" * 1024 * 1024,
                                  os.urandom(256 * 1024)],
                         ids=["zeros", "garbage"])
def test_volume_tail_is_ignored(cache, tmp_path, busybox_oci, tail):
    img = cache.get(_volume(tmp_path, busybox_oci, tail))
    assert img.key == images.Cache(str(tmp_path / "c2")).get(busybox_oci).key


def test_unpacked_once(cache, busybox_oci, monkeypatch):
    cache.get(busybox_oci)
    calls = []
    monkeypatch.setattr(cache, "_unpack",
                        lambda *a: calls.append(a) or None)
    img = cache.get(busybox_oci)
    assert calls == []
    assert os.path.isdir(img.rootfs)


def test_concurrent_first_use_unpacks_once(cache, busybox_oci, monkeypatch):
    real = cache._unpack
    calls = []

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(cache, "_unpack", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.get(busybox_oci))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({r.key for r in results}) == 1 and len(results) == 4
    assert cache.keys() == [results[0].key]


def _rewrite(src, dest, change):
    """Copy tar ``src`` to ``dest`` passing each (info, data) to change."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            m, data = change(m, data)
            if data is not None:
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m)


def test_digest_mismatch(cache, tmp_path, busybox_oci):
    def corrupt(m, data):
        if m.isfile() and m.size > 100000:          # the layer
            data = data[:-1] + bytes([data[-1] ^ 1])
        return m, data
    bad = str(tmp_path / "bad.tar")
    _rewrite(busybox_oci, bad, corrupt)
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        cache.get(bad)
    assert "digest mismatch" in str(e.value)
    assert cache.keys() == []
    assert [n for n in os.listdir(cache.root) if not n.startswith(".")] == []


def test_truncated(cache, tmp_path, busybox_oci):
    path = tmp_path / "cut.tar"
    with open(busybox_oci, "rb") as f:
        path.write_bytes(f.read()[:600 * 1024])
    with pytest.raises(errors.UnsupportedImageFormat):
        cache.get(str(path))
    assert cache.keys() == []


def test_not_a_tar(cache, tmp_path):
    path = tmp_path / "random"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        cache.get(str(path))
    assert e.value.code == 17


def test_tar_that_is_no_image(cache, tmp_path):
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        cache.get(str(path))
    assert "neither an OCI archive" in str(e.value)


def test_missing_volume(cache, tmp_path):
    with pytest.raises(errors.ImageFileNotFound):
        cache.get(str(tmp_path / "nope"))


def test_oci_layout_directory(cache, tmp_path, busybox_oci):
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(busybox_oci) as t:
        t.extractall(layout)
    assert cache.get(str(layout)).key == cache.get(busybox_oci).key


def test_several_images_need_a_name(cache, tmp_path, busybox_oci):
    def two_refs(m, data):
        if m.name == "index.json":
            index = json.loads(data)
            second = dict(index["manifests"][0])
            second["annotations"] = {images.REF_ANNOTATION: "other:1"}
            index["manifests"].append(second)
            data = json.dumps(index).encode()
        return m, data
    multi = str(tmp_path / "multi.tar")
    _rewrite(busybox_oci, multi, two_refs)
    with pytest.raises(errors.InvalidParameter) as e:
        cache.get(multi)
    assert "name one" in str(e.value)
    assert cache.get(multi, "other:1").ref == "other:1"

"""Bounded images and a cache that survives killed unpacks.

Expansion limits (bytes, entries, per image) are checked while the layers
stream, before umoci runs, in memory that does not grow with the number of
entries; ``images prune`` removes what a killed first unpack left.
"""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import tracemalloc

import pytest

from vdsm_container import config, errors
from vdsm_container.image import cache as images

from .imagebuild import entry, layer, oci_archive

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fake_umoci(tmp_path):
    """An umoci that records that it ran, and fails."""
    marker = tmp_path / "umoci-ran"
    script = tmp_path / "umoci"
    script.write_text("#!/bin/sh\ntouch %s\nexit 1\n" % marker)
    script.chmod(0o755)
    return str(script), marker


def refused(cache, path, *words):
    with pytest.raises(errors.UnsupportedImageFormat) as e:
        cache.get(path)
    for w in words:
        assert w in str(e.value)
    assert cache.keys() == []
    assert [n for n in os.listdir(cache.root)
            if not n.endswith(".lock")] == []
    return e.value


def test_entry_limit(tmp_path, fake_umoci):
    umoci, ran = fake_umoci
    cache = images.Cache(str(tmp_path / "c"), umoci=umoci,
                         limits=config.ImageLimits(max_entries=100))
    path = oci_archive(tmp_path / "many.tar", [
        layer([entry("f%d" % i) for i in range(60)]),
        layer([entry("g%d" % i) for i in range(41)])], gzipped=True)
    err = refused(cache, path, "more than 100 entries", "max_entries",
                  "VDSM_CONTAINER_IMAGE_MAX_ENTRIES")
    assert err.code == 17
    assert not ran.exists()         # refused before umoci wrote anything


def test_byte_limit_counts_expanded_bytes(tmp_path, fake_umoci):
    umoci, ran = fake_umoci
    cache = images.Cache(str(tmp_path / "c"), umoci=umoci,
                         limits=config.ImageLimits(max_bytes=1024 ** 2))
    # 8 KiB of gzip expanding to 2 MiB: the archive's size says nothing.
    path = oci_archive(tmp_path / "bomb.tar", [
        layer([entry("zeros", data=bytes(2 * 1024 ** 2))])], gzipped=True)
    assert os.path.getsize(path) < 64 * 1024
    refused(cache, path, "expands to more than 1048576 bytes", "max_bytes",
            "VDSM_CONTAINER_IMAGE_MAX_BYTES")
    assert not ran.exists()


def test_limits_are_per_image_not_per_layer(tmp_path, fake_umoci):
    cache = images.Cache(str(tmp_path / "c"), umoci=fake_umoci[0],
                         limits=config.ImageLimits(max_bytes=1000 * 1024))
    path = oci_archive(tmp_path / "two.tar", [
        layer([entry("a", data=bytes(600 * 1024))]),
        layer([entry("b", data=bytes(600 * 1024))])])
    refused(cache, path, "max_bytes")


def test_limits_from_the_environment(tmp_path, monkeypatch, fake_umoci):
    monkeypatch.setenv("VDSM_CONTAINER_IMAGE_MAX_ENTRIES", "3")
    assert config.ImageLimits.from_env().max_entries == 3
    assert config.ImageLimits.from_env().max_bytes == \
        config.ImageLimits().max_bytes
    cache = images.Cache(str(tmp_path / "c"), umoci=fake_umoci[0])
    refused(cache, oci_archive(tmp_path / "x.tar", [
        layer([entry("f%d" % i) for i in range(4)])]), "max_entries")
    monkeypatch.setenv("VDSM_CONTAINER_IMAGE_MAX_BYTES", "lots")
    with pytest.raises(errors.InvalidConfiguration) as e:
        config.ImageLimits.from_env()
    assert "VDSM_CONTAINER_IMAGE_MAX_BYTES" in str(e.value)


def _peak(tmp_path, n, umoci):
    """Peak Python memory of checking a layer of ``n`` empty files."""
    buf = tmp_path / ("layer-%d" % n)
    with open(buf, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w") as t:
            info = tarfile.TarInfo()
            for i in range(n):
                info.name = "d/%07d" % i
                t.addfile(info)
    path = oci_archive(tmp_path / ("many-%d.tar" % n),
                       [buf.read_bytes()], gzipped=True)
    buf.unlink()
    cache = images.Cache(str(tmp_path / ("c%d" % n)), umoci=umoci,
                         limits=config.ImageLimits(max_entries=10 ** 7))
    tracemalloc.start()
    try:
        with pytest.raises(errors.UnsupportedImageFormat) as e:
            cache.get(path)     # the fake umoci fails after the check
        assert "umoci" in str(e.value)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_check_memory_does_not_grow_with_entries(tmp_path, fake_umoci):
    small = _peak(tmp_path, 2000, fake_umoci[0])
    large = _peak(tmp_path, 60000, fake_umoci[0])
    # tarfile kept a TarInfo per member: 60000 of them are tens of MiB.
    assert large < small + 2 * 1024 ** 2, (small, large)


# Interrupted unpacks

def _stale_layout(root, key):
    staging = os.path.join(root, ".new-%s-k1ll3d" % key)
    os.makedirs(os.path.join(staging, "rootfs", "usr"))
    open(os.path.join(root, ".%s.lock" % key), "w").close()
    return staging


def test_prune_removes_staging_and_locks_nobody_holds(tmp_path, busybox_oci):
    cache = images.Cache(str(tmp_path / "c"))
    ready = cache.get(busybox_oci).key
    dead = _stale_layout(cache.root, "sha256-" + "a" * 64)
    busy = _stale_layout(cache.root, "sha256-" + "b" * 64)
    lone_lock = os.path.join(cache.root, ".sha256-%s.lock" % ("c" * 64))
    open(lone_lock, "w").close()
    holder = subprocess.Popen(["flock", os.path.join(
        cache.root, ".sha256-%s.lock" % ("b" * 64)), "sleep", "600"],
        start_new_session=True)
    try:
        _wait_locked(cache, "sha256-" + "b" * 64)
        removed = cache.prune_stale()
        assert sorted(removed) == sorted([
            os.path.basename(dead), ".sha256-%s.lock" % ("a" * 64),
            os.path.basename(lone_lock)])
        assert not os.path.exists(dead) and not os.path.exists(lone_lock)
        assert not os.path.exists(os.path.join(
            cache.root, ".sha256-%s.lock" % ("a" * 64)))
        assert os.path.isdir(busy)              # its unpack is alive
        assert cache.keys() == [ready]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)   # flock and its sleep
        holder.wait()
    _wait_locked(cache, "sha256-" + "b" * 64, held=False)   # sleep's end
    assert cache.prune_stale() == [os.path.basename(busy),
                                   ".sha256-%s.lock" % ("b" * 64)]
    assert sorted(os.listdir(cache.root)) == [".%s.lock" % ready, ready]


def _wait_locked(cache, key, held=True, timeout=30):
    """Until some process holds ``key``'s lock (``held``), or none does:
    a killed holder's process ends, and lets the lock go, a moment after
    the signal, when the kernel gets to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with cache._key_lock(key, wait=False) as fd:
            if (fd is None) == held:
                return
        time.sleep(0.05)
    raise AssertionError("%s never got %s" % (
        key, "locked" if held else "unlocked"))


def test_kill_9_during_first_unpack_then_prune(tmp_path, busybox_oci):
    """The starting process dies mid-unpack: umoci dies with it (where
    setpriv has --pdeathsig; elsewhere it lives on holding the key's lock,
    and prune leaves its staging dir); then ``images prune`` removes the
    staging dir and the lock file."""
    storage = tmp_path / "storage"
    pidfile = tmp_path / "umoci.pid"
    umoci = tmp_path / "umoci"
    umoci.write_text("#!/bin/sh\necho $$ > %s\nexec sleep 600\n" % pidfile)
    umoci.chmod(0o755)
    cache = images.Cache(str(storage / "images"))
    starter = subprocess.Popen([sys.executable, "-c", (
        "import sys; sys.path.insert(0, %r)\n"
        "from vdsm_container.image import cache\n"
        "cache.Cache(%r, umoci=%r).get(%r)\n") % (
            REPO, cache.root, str(umoci), busybox_oci)])
    umoci_pid = None
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert starter.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        umoci_pid = int(pidfile.read_text())
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
        staging = [n for n in os.listdir(cache.root)
                   if n.startswith(".new-")]
        assert len(staging) == 1
        env = dict(os.environ, VDSM_CONTAINER_STORAGE_DIR=str(storage),
                   VDSM_CONTAINER_RUN_DIR=str(tmp_path / "run"))

        def prune():
            out = subprocess.run(
                [sys.executable, "-m", "vdsm_container", "images", "prune"],
                env=env, stdout=subprocess.PIPE, check=True,
                universal_newlines=True, cwd=REPO).stdout
            return json.loads(out)

        if images._die_with_us():
            _wait_gone(umoci_pid)       # no orphan: it died with its parent
        else:
            assert prune() == {"removed": [], "stale": []}  # umoci holds it
            os.kill(umoci_pid, signal.SIGKILL)
            _wait_gone(umoci_pid)
        umoci_pid = None
        locks = [n for n in os.listdir(cache.root) if n.endswith(".lock")]
        assert len(locks) == 1
        assert prune() == {"removed": [], "stale": staging + locks}
        assert os.listdir(cache.root) == []
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if umoci_pid is not None:
            os.kill(umoci_pid, signal.SIGKILL)


def _wait_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ")[-1].startswith("Z"):
                    return      # a zombie holds no lock
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError("pid %d lives on" % pid)

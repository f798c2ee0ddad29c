"""Bounded resources (issue #14): the writable layer's size limit, the
container log's bound, non-UTF-8 output, and the domain XML's bounds."""

import dataclasses
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest

from vdsm_container import constants
from vdsm_container import errors
from vdsm_container.bundle import ocispec
from vdsm_container.bundle import quota
from vdsm_container.container import create
from vdsm_container.linux import loop
from vdsm_container.linux import mounts
from vdsm_container.runtimes import conmon
from vdsm_container.spec import domxml
from vdsm_container.spec import hostbounds
from vdsm_container.vdsm import caps

from .conftest import bundle_of, in_container
from . import leaks
from .leaks import loop_freed
from .test_domxml import edited, set_attr, set_text
from .test_container import wait_status


def wait_for(ctr, text, timeout=20):
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        with open(ctr.log_path(), errors="replace") as f:
            out = f.read()
        if text in out:
            return out
        time.sleep(0.05)
    raise AssertionError("%r not in the log: %r" % (text, out[-2000:]))


def xml(image, command, **custom):
    return domxml.build(str(uuid.uuid4()), "res", "runc", image,
                        command=command, custom=custom or None)


# The writable layer's limit (item 3)

FILL = ("dd if=/dev/zero of=/big bs=1M count=200; echo dd=$?; "
        "df -k / | tail -1; echo done; sleep 1000")


def root_size_kib(out):
    """The size of / as ``df -k /`` inside the container printed it (its
    last line for /; busybox df: ... 1K-blocks Used Available Use% /)."""
    df = [ln for ln in out.splitlines() if ln.endswith(" /")][-1]
    return int(df.split()[-5])


@pytest.mark.parametrize("size,expected_mib", [("64M", 64), ("96", 96)])
@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_writable_layer_is_limited_by_the_kernel(paths, busybox_oci, size,
                                                 expected_mib):
    ctr = create(xml(busybox_oci, ["sh", "-c", FILL],
                     containerDiskSize=size), paths=paths)
    try:
        out = wait_for(ctr, "done")
        assert "No space left on device" in out
        assert "dd=1" in out
        total_kib = root_size_kib(out)
        # ext4's own metadata takes a little of the size.
        assert expected_mib * 1024 * 0.85 < total_kib <= expected_mib * 1024
        # The layer holds at most the limit (its filesystem, seen through
        # the container's root: it is mounted in its namespace only).
        st = os.statvfs(in_container(ctr))
        assert st.f_blocks * st.f_frsize <= expected_mib << 20
        image = os.path.join(bundle_of(ctr).storage_dir, "layer.img")
        assert os.stat(image).st_blocks * 512 <= expected_mib << 20
    finally:
        ctr.destroy(gracefulAttempts=0)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_default_limit_from_the_host_and_zero_turns_it_off(paths,
                                                           busybox_oci):
    limited = dataclasses.replace(paths, disk_size_mib=48)
    ctr = create(xml(busybox_oci, ["sh", "-c", "df -k /; echo done; "
                                   "sleep 1000"]), paths=limited)
    try:
        assert root_size_kib(wait_for(ctr, "done")) <= 48 * 1024
    finally:
        ctr.destroy(gracefulAttempts=0)
    off = dataclasses.replace(paths, disk_size_mib=0)
    ctr = create(xml(busybox_oci, ["sleep", "1000"]), paths=off)
    try:
        bundle = bundle_of(ctr)
        assert os.stat(bundle.upper).st_dev == \
            os.stat(bundle.storage_dir).st_dev
        assert not os.path.exists(os.path.join(bundle.storage_dir,
                                               "layer.img"))
    finally:
        ctr.destroy(gracefulAttempts=0)


@pytest.mark.runtime
def test_a_layer_a_loop_device_still_holds_is_not_mounted_again(tmp_path):
    """A reset mounts the writable layer again (``quota.remount``).  While
    the last run's namespace still has it mounted (a loop device is bound
    to the image), a second mount through another loop device would have
    two ext4 instances write one image: refused, naming the device."""
    storage = str(tmp_path / "vm")
    os.makedirs(storage)
    layer = quota.make(storage, 16)
    image = os.path.join(storage, quota.IMAGE)
    held = loop.devices_of(image)
    assert len(held) == 1
    try:
        with pytest.raises(errors.CannotCreateVM) as e:
            quota.remount(storage, wait=0.2)
        assert held[0] in str(e.value)
        assert mounts.mounted_under(storage) == [os.path.realpath(layer)]
    finally:
        mounts.umount(layer)
    assert loop_freed(image)        # autoclear
    quota.remount(storage)
    try:
        assert mounts.mounted_under(storage) == [os.path.realpath(layer)]
        assert len(loop.devices_of(image)) == 1
    finally:
        mounts.umount(layer)
    assert loop_freed(image)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_limit_larger_than_the_storage_filesystem_is_refused(paths,
                                                             busybox_oci):
    with pytest.raises(errors.InvalidParameter) as e:
        create(xml(busybox_oci, ["true"], containerDiskSize="16T"),
               paths=paths)
    assert "containerDiskSize" in str(e.value)
    assert "storage filesystem" in str(e.value)


def test_admin_default_from_the_environment():
    from vdsm_container import config
    p = config.Paths.from_env({"VDSM_CONTAINER_DISK_SIZE": "2G",
                               "VDSM_CONTAINER_LOG_SIZE_MAX": "64K"})
    assert (p.disk_size_mib, p.log_size_max) == (2048, 65536)
    assert config.Paths.from_env({}).disk_size_mib == 10240
    assert config.Paths.from_env({
        "VDSM_CONTAINER_DISK_SIZE": "0"}).disk_size_mib == 0
    for name, value in (("VDSM_CONTAINER_DISK_SIZE", "lots"),
                        ("VDSM_CONTAINER_DISK_SIZE", "1"),
                        ("VDSM_CONTAINER_LOG_SIZE_MAX", "1")):
        with pytest.raises(errors.InvalidConfiguration) as e:
            config.Paths.from_env({name: value})
        assert e.value.info()["code"] == 101
        assert e.value.context["key"] == name


def test_disk_size_property_is_parsed_into_the_spec(busybox_oci):
    spec = domxml.parse(xml(busybox_oci, ["true"], containerDiskSize="2G"))
    assert spec.disk_size_mib == 2048
    assert domxml.parse(xml(busybox_oci, ["true"])).disk_size_mib is None
    with pytest.raises(errors.InvalidParameter) as e:
        domxml.parse(xml(busybox_oci, ["true"], containerDiskSize="2 PB"))
    assert constants.PROP_DISK_SIZE in str(e.value)


# The container log (item 4)

@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_log_is_bounded(paths, busybox_oci):
    small = dataclasses.replace(paths, log_size_max=64 * 1024)
    # ~1 MiB of output, 16 times the bound, then a last line.
    noisy = ("i=0; while [ $i -lt 16384 ]; do echo line-$i-padding-to-be-"
             "sixty-four-bytes-long-xxxxxxxxxxxxxxxx; i=$((i+1)); done; "
             "echo the-end")
    ctr = create(xml(busybox_oci, ["sh", "-c", noisy]), paths=small)
    try:
        wait_status(ctr, constants.DOWN, timeout=60)
        size = os.path.getsize(ctr.log_path())
        assert 0 < size <= 64 * 1024
        with open(ctr.log_path()) as f:
            assert f.read().rstrip("\n").endswith("the-end")
    finally:
        ctr.destroy(gracefulAttempts=0)


def run_cli(argv, paths):
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent)
    return subprocess.run([sys.executable, "-m", "vdsm_container"] + argv,
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_logs_of_non_utf8_output(paths, busybox_oci):
    ctr = create(xml(busybox_oci, ["sh", "-c", r"printf 'a\377\376b\n'; "
                                   "echo done; sleep 1000"]), paths=paths)
    try:
        wait_for(ctr, "done")
        text = run_cli(["logs", ctr.id], paths)
        assert text.returncode == 0, text.stderr
        assert text.stdout.decode().splitlines()[0] == "a\ufffd\ufffdb"
        raw = run_cli(["logs", "--raw", ctr.id], paths)
        assert raw.returncode == 0, raw.stderr
        assert b"a\xff\xfeb" in raw.stdout
    finally:
        ctr.destroy(gracefulAttempts=0)


def test_runtime_messages_are_read_from_its_json_log():
    data = (b'{"level":"warning","msg":"skipping device /dev/char/10:200 '
            b'for systemd","time":"2026-11-25T21:45:28Z"}\n'
            b'{"msg":"use --console-socket","level":"error","time":"x"}\n'
            b"\n"
            b"not json \xff\n")
    assert conmon.runtime_messages(data) == [
        ("warning", "skipping device /dev/char/10:200 for systemd"),
        ("error", "use --console-socket"),
        ("warning", "not json \ufffd"),
    ]


@pytest.mark.runtime
def test_runtime_warnings_stay_out_of_the_container_log(paths, busybox_oci,
                                                         monkeypatch, caplog):
    """runc prints its own warnings where conmon reads the container's
    stderr; they go to vdsm's log instead.  runc 1.1 warns about kernel
    memory settings (libcontainer/specconv/spec_linux.go,
    CreateCgroupConfig), which our spec never sets: added here to make it
    speak."""
    build = ocispec.build

    def with_kernel_memory(*args, **kwargs):
        config = build(*args, **kwargs)
        config["linux"]["resources"].setdefault("memory", {})["kernel"] = \
            64 * 1024 * 1024
        return config

    monkeypatch.setattr(ocispec, "build", with_kernel_memory)
    caplog.set_level("INFO", "vdsm_container.runtimes.oci")
    ctr = create(xml(busybox_oci, ["sh", "-c", "echo first; sleep 1000"]),
                 paths=paths)
    try:
        out = wait_for(ctr, "first")
        assert out.splitlines()[0].endswith("first"), out
        assert "Kernel memory" not in out
        said = [r.getMessage() for r in caplog.records
                if "Kernel memory settings are ignored" in r.getMessage()]
        assert said and ctr.id in said[0], caplog.text
    finally:
        ctr.destroy(gracefulAttempts=0)


# Bounds on the domain XML (item 7)

def _cputune(tag, value):
    def edit(root):
        import xml.etree.ElementTree as ET
        tune = root.find("cputune")
        el = tune.find(tag)
        if el is None:
            el = ET.SubElement(tune, tag)
        el.text = value
    return edit


def _iotune(value):
    def edit(root):
        import xml.etree.ElementTree as ET
        disk = root.findall("devices/disk")[1]
        ET.SubElement(ET.SubElement(disk, "iotune"),
                      "total_bytes_sec").text = value
    return edit


def _memory(value, unit):
    def edit(root):
        for tag in ("memory", "currentMemory"):
            root.find(tag).text = value
            root.find(tag).set("unit", unit)
    return edit


ABSURD = [
    ("memory in TiB", _memory("1000000", "TiB"), "memory"),
    ("memory below a container's minimum", _memory("1", "MiB"), "memory"),
    ("current vCPUs above the maximum", set_attr("vcpu", "current", "64"),
     "vcpu"),
    ("maximum vCPUs absurd", set_text("vcpu", "100000"), "vcpu"),
    ("cpu shares", _cputune("shares", "99999999999"), "cputune/shares"),
    ("cpu quota", _cputune("quota", "99999999999999999999"),
     "cputune/quota"),
    ("cpu period", _cputune("period", "5000000"), "cputune/period"),
    ("iotune", _iotune("9" * 20), "disk/iotune/total_bytes_sec"),
    ("mtu", set_attr("devices/interface/mtu", "size", "1000000"),
     "interface/mtu"),
]


@pytest.mark.parametrize("edit,field", [a[1:] for a in ABSURD],
                         ids=[a[0] for a in ABSURD])
def test_absurd_sizes_are_refused_naming_the_field(edit, field):
    with pytest.raises(errors.InvalidParameter) as e:
        spec = domxml.parse(edited(edit))
        hostbounds.check(spec)      # what the root side and vdsm call
    assert e.value.info()["code"] == 91
    assert e.value.context["field"] == field


def test_host_bounds(busybox_oci):
    spec = domxml.parse(domxml.build(str(uuid.uuid4()), "b", "runc",
                                     busybox_oci, memory_mib=4096, vcpus=4))
    hostbounds.check(spec, memory_kib=8 << 20, cpus=4)     # fits
    with pytest.raises(errors.InvalidParameter) as e:
        hostbounds.check(spec, memory_kib=2 << 20, cpus=4)
    assert e.value.context["field"] == "memory"
    assert "2048 MiB" in str(e.value)
    with pytest.raises(errors.InvalidParameter) as e:
        hostbounds.check(spec, memory_kib=8 << 20, cpus=2)
    assert e.value.context["field"] == "vcpu"
    # The hotplug maximum may be above the host's CPUs: only current counts.
    xml = domxml.build(str(uuid.uuid4()), "b", "runc", busybox_oci)
    xml = xml.replace('<vcpu placement="static">1</vcpu>',
                      '<vcpu placement="static" current="1">64</vcpu>')
    hostbounds.check(domxml.parse(xml), memory_kib=8 << 20, cpus=2)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_more_memory_than_the_host_is_refused_before_anything_starts(
        paths, busybox_oci):
    host_mib = hostbounds.host_memory_kib() // 1024
    doc = domxml.build(str(uuid.uuid4()), "big", "runc", busybox_oci,
                       memory_mib=host_mib + 1, command=["true"])
    with pytest.raises(errors.InvalidParameter) as e:
        create(doc, paths=paths)
    assert e.value.context["field"] == "memory"


# The default never refuses (issue #24 item 2)

SMALL_FS_MIB = 128


@pytest.fixture
def small_storage_paths(paths, tmp_path):
    """``paths`` with the storage directory on a 128 MiB ext4 filesystem
    (a loop-mounted image): a host whose /var is smaller than the layer's
    default.  Leak-checked like ``paths``; the filesystem and its loop
    device go at the end."""
    image = str(tmp_path / "small-var.img")
    with open(image, "wb") as f:
        f.truncate(SMALL_FS_MIB << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], check=True)
    top = str(tmp_path / "small-var")
    os.makedirs(top)
    loop.mount(image, top, "ext4")
    try:
        moved = dataclasses.replace(paths, storage_dir=top + "/storage")
        before = leaks.snapshot(moved)
        yield moved
        after = leaks.snapshot(moved)
        leaks.assert_same(before, after)
    finally:
        mounts.umount(top)
    assert loop_freed(image)


@pytest.mark.runtime
def test_default_layer_shrinks_to_a_small_storage_filesystem(
        small_storage_paths, busybox_oci, caplog):
    """Without containerDiskSize the layer gets the host's default (10 GiB)
    or, where the storage filesystem is smaller, the filesystem's size: the
    VM runs, vdsm.log and ``caps`` say so; a size the admin asked for that
    cannot fit is still refused."""
    caplog.set_level(logging.INFO)
    paths = small_storage_paths
    assert paths.disk_size_mib == 10 * 1024
    fs_mib = quota.filesystem_mib(paths.storage_dir)
    assert fs_mib < SMALL_FS_MIB
    size = caps.disk_size(paths)
    assert size == {"configuredMiB": 10240, "defaultMiB": fs_mib,
                    "storageFilesystemMiB": fs_mib}
    ctr = create(xml(busybox_oci, ["sh", "-c", "df -k /; echo done; "
                                   "sleep 1000"]), paths=paths)
    try:
        assert root_size_kib(wait_for(ctr, "done")) <= fs_mib * 1024
        image = os.path.join(bundle_of(ctr).storage_dir, quota.IMAGE)
        assert os.stat(image).st_size == fs_mib << 20
        assert "the default of 10240 MiB does not fit" in caplog.text
    finally:
        ctr.destroy(gracefulAttempts=0)
    with pytest.raises(errors.InvalidParameter) as e:
        create(xml(busybox_oci, ["true"], containerDiskSize="1G"),
               paths=paths)
    assert "containerDiskSize" in str(e.value)
    assert "storage filesystem" in str(e.value)


def test_default_layer_is_the_configured_one_where_it_fits(tmp_path):
    fs_mib = quota.filesystem_mib(str(tmp_path / "not" / "made" / "yet"))
    assert fs_mib == quota.filesystem_mib(str(tmp_path))
    assert quota.default_mib(str(tmp_path), 16) == 16
    assert quota.default_mib(str(tmp_path), 0) == 0
    assert quota.default_mib(str(tmp_path), fs_mib + 1) == fs_mib

"""config.json: the OCI runtime spec, and the VM sizing in it."""

import pytest

from vdsm_container import errors
from vdsm_container.bundle import ocispec
from vdsm_container.image.cache import Image
from vdsm_container.spec.model import ContainerSpec
from vdsm_container.spec.model import Disk

from .schemas import oci_validator


def spec(**kw):
    base = dict(vm_id="0b0c5a1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b", name="My App_1",
                runtime="runc", image_disk=Disk("/img", False, "sda"),
                memory_kib=512 * 1024, current_memory_kib=256 * 1024,
                vcpus=2)
    base.update(kw)
    return ContainerSpec(**base)


IMAGE = Image("sha256-" + "a" * 64, "/rootfs",
              {"Entrypoint": ["/entry"], "Cmd": ["--serve"],
               "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv"},
              "app:1")


def test_valid_against_oci_schema():
    config = ocispec.build(spec(env=(("A", "2"),)), IMAGE, "/rootfs",
                           "/vdsm-containers.slice/x.scope")
    validator = oci_validator("oci-runtime-spec", "config-schema.json")
    errors_found = sorted(e.message for e in validator.iter_errors(config))
    assert errors_found == []
    # And the schema does catch a broken config: the check is real.
    config["process"]["args"] = "not a list"
    assert list(validator.iter_errors(config))


def test_sizing():
    config = ocispec.build(spec(cpu_shares=2048), IMAGE, "/r", "/p")
    res = config["linux"]["resources"]
    assert res["memory"] == {"limit": 512 * 1024 ** 2,
                             "swap": 512 * 1024 ** 2,
                             "reservation": 256 * 1024 ** 2}
    assert res["cpu"] == {"period": 100000, "quota": 200000, "shares": 2048}
    assert res["pids"]["limit"] == ocispec.DEFAULT_PIDS_LIMIT


def test_cputune_quota_is_per_vcpu():
    res = ocispec.resources(spec(cpu_quota=50000, cpu_period=200000))
    assert res["cpu"] == {"period": 200000, "quota": 100000}


def test_process():
    config = ocispec.build(spec(env=(("A", "2"),)), IMAGE, "/r", "/p")
    proc = config["process"]
    assert proc["args"] == ["/entry", "--serve"]
    assert "A=2" in proc["env"] and "PATH=/bin" in proc["env"]
    assert proc["cwd"] == "/srv"
    assert proc["noNewPrivileges"] is True
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["bounding"]
    assert "rlimits" not in proc and "oomScoreAdj" not in proc
    assert config["hostname"] == "my-app-1"


def test_command_replaces_image_command():
    config = ocispec.build(spec(command=("sleep", "1")), IMAGE, "/r", "/p")
    assert config["process"]["args"] == ["sleep", "1"]


def test_no_command_at_all():
    with pytest.raises(errors.InvalidParameter) as e:
        ocispec.build(spec(), Image("sha256-" + "b" * 64, "/r", {}, "x"),
                      "/r", "/p")
    assert e.value.context["field"] == "containerCommand"


def test_user_lookup(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0::/:/bin/sh\nweb:x:101:102::/:/bin/false\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    assert ocispec.process_user(str(tmp_path), {"User": "web"}) == \
        {"uid": 101, "gid": 102}
    assert ocispec.process_user(str(tmp_path), {"User": "web:staff"}) == \
        {"uid": 101, "gid": 50}
    assert ocispec.process_user(str(tmp_path), {"User": "7:8"}) == \
        {"uid": 7, "gid": 8}
    with pytest.raises(errors.InvalidParameter):
        ocispec.process_user(str(tmp_path), {"User": "ghost"})

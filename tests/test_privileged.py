"""The root-side protocol vdsmd uses through supervdsm: plain data in and
out, vdsm errors carried as {'code', 'message'} and raised again."""

import dataclasses
import pickle
import uuid

import pytest

from vdsm_container import constants
from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.vdsm import privileged

pytestmark = [pytest.mark.runtime, pytest.mark.usefixtures("leakcheck")]


def roundtrip(out):
    """What crosses supervdsm's socket: it must pickle."""
    return pickle.loads(pickle.dumps(out))


def test_lifecycle(paths, busybox_oci):
    pd = dataclasses.asdict(paths)
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "p", "runc", busybox_oci,
                       command=["sleep", "1000"])
    out = roundtrip(privileged.create(xml, pd))
    assert "error" not in out
    assert out["state"]["status"] == constants.UP
    assert "xml" not in out["state"]
    out = roundtrip(privileged.call(vm_id, "refresh", paths_dict=pd))
    assert out["result"] == {"network": {}, "guest": {}}
    out = roundtrip(privileged.call(vm_id, "pause", paths_dict=pd))
    assert out["state"]["status"] == constants.PAUSED
    out = roundtrip(privileged.call(vm_id, "cont", paths_dict=pd))
    assert out["state"]["status"] == constants.UP
    out = roundtrip(privileged.call(vm_id, "destroy", (0,), paths_dict=pd))
    assert out["result"]["status"]["code"] == 0
    out = roundtrip(privileged.call(vm_id, "refresh", paths_dict=pd))
    err = errors.from_info(out["error"])
    assert isinstance(err, errors.NoSuchVM) and err.code == 1


def test_failed_create_carries_the_error(paths, tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"x" * 4096)
    vm_id = str(uuid.uuid4())
    xml = domxml.build(vm_id, "p", "runc", str(bad), command=["true"])
    out = roundtrip(privileged.create(xml, dataclasses.asdict(paths)))
    err = errors.from_info(out["error"])
    assert isinstance(err, errors.UnsupportedImageFormat)
    assert err.code == 17 and str(err) == out["error"]["message"]
    assert out["state"]["status"] == constants.DOWN
    assert out["state"]["exitCode"] == constants.ERROR


def test_only_container_verbs(paths):
    with pytest.raises(ValueError):
        privileged.call(str(uuid.uuid4()), "__init__",
                        paths_dict=dataclasses.asdict(paths))

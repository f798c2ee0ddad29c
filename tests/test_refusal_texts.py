"""Each refused verb answers a vdsm code whose meaning, as Engine shows it,
tells what happened (issue #37 item 5).

Engine turns vdsm's status code into a name with
``EngineError.forValue`` (ovirt-engine master 0111fc63,
backend/manager/modules/common/.../common/errors/EngineError.java: a
HashMap filled in declaration order, so of two names for one code the later
wins); a code it lacks becomes ``unexpected``
(vdsbroker/vdsbroker/BrokerCommandBase.java ``getReturnValueFromStatus``,
"Unexpected return value").  The name's user-facing text lives in dal's
bundles/VdsmErrors.properties, which the snapshot doesn't hold: the
mapping checked here is the one parsed from EngineError.java at test time,
and the names judged misleading are named with the text they stand for.
"""

import os
import re
import tarfile

import pytest

from vdsm_container import errors
from vdsm_container.container import Container
from vdsm_container import verbs

from .test_container import xml_for

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared",
                      "vendor", "ovirt-engine",
                      "ovirt-engine-0111fc63.tar.xz")
MEMBER = ("ovirt-engine-0111fc63/backend/manager/modules/common/src/main/"
          "java/org/ovirt/engine/core/common/errors/EngineError.java")

# Names whose Engine text points the user at something that did not happen.
MISLEADING = {
    # VdsmErrors.properties: 'Failed to perform "Change CD" operation, CD
    # might be still in use by the VM. Please try to manually detach the CD
    # from within the VM ... un-mount the CD using umount command'.
    "FAILED_CHANGE_CD_IS_MOUNTED",
    # A code Engine doesn't know: "Unexpected exception".
    "unexpected",
}
# Migration names: truthful only for a migration verb.
MIGRATION_NAMES = {"migrateErr", "MIGRATION_CANCEL_ERROR", "migInProgress",
                   "MIGRATION_DEST_INVALID_HOSTNAME"}
MIGRATION_VERBS = {"migrate", "migrateStatus", "migrateCancel",
                   "migrateChangeParams", "waitForMigrationDestinationPrepare"}


@pytest.fixture(scope="module")
def engine_error():
    """code -> name, as EngineError.forValue answers (None: unexpected)."""
    if not os.path.exists(ENGINE):
        pytest.skip("%s is absent: ../shared/vendor/ovirt-engine must be "
                    "beside the repository" % ENGINE)
    with tarfile.open(ENGINE, "r:xz") as tar:
        source = tar.extractfile(MEMBER).read().decode()
    body = source[source.index("public enum EngineError {"):]
    body = body[:body.index(";")]
    body = re.sub(r"//[^\n]*", "", body)
    mapping = {}
    for name, code in re.findall(r"\b(\w+)\((-?\d+)\)", body):
        mapping[int(code)] = name          # HashMap.put: the later wins
    assert mapping[0] == "Done" and mapping[75] == "UnsupportedOperationErr"
    return mapping


def shown(engine_error, code):
    return engine_error.get(code, "unexpected")


@pytest.fixture
def idle(paths, busybox_oci):
    return Container.from_xml(xml_for(busybox_oci, ["true"]), paths=paths)


def refusal_code(vm, name, params):
    with pytest.raises(errors.VdsmException) as e:
        getattr(vm, name)(params)
    return e.value.response()["status"]["code"]


@pytest.mark.parametrize("name", sorted(verbs.REFUSED))
def test_refusal_is_not_misleading(engine_error, idle, name):
    code = refusal_code(idle, name, {"some": "params"})
    name_shown = shown(engine_error, code)
    assert name_shown not in MISLEADING, (name, code)
    if name not in MIGRATION_VERBS:
        assert name_shown not in MIGRATION_NAMES, (name, code)


def test_change_cd_says_not_supported(engine_error, idle):
    """ChangeDiskVDSCommand sends VM.changeCD (API.py VM.changeCD ->
    vm.changeCD): today 41, FAILED_CHANGE_CD_IS_MOUNTED."""
    for verb, params in (("changeCD", {"path": "/x.iso"}),
                         ("changeFloppy", "/x.img")):
        code = refusal_code(idle, verb, params)
        assert shown(engine_error, code) == "UnsupportedOperationErr", verb


def test_suspend_says_not_supported(engine_error, idle, paths):
    """Engine's Suspend: HibernateBrokerVDSCommand sends VM.hibernate, which
    API.py VM.hibernate runs as VM.migrate({'mode': 'file', ...}): today
    MigrationError, migrateErr "Fatal error during migration"."""
    params = {"vmId": idle.id, "mode": "file",
              "hiberVolHandle": "sd,sp,img,vol,img,vol", "dst": "/x",
              "dstparams": "/y"}
    code = refusal_code(idle, "migrate", params)
    assert shown(engine_error, code) == "UnsupportedOperationErr"
    assert not os.path.exists(paths.run_dir)
    # A migration to a host still answers as a failed migration.
    code = refusal_code(idle, "migrate", {"dst": "h2", "method": "online"})
    assert shown(engine_error, code) == "migrateErr"


def test_migrate_cancel_says_not_in_progress(engine_error, idle):
    """CancelMigrateVDSCommand: vdsm answers 47 when no migration runs
    (virt/vm.py migrateCancel, migCancelErr); Engine's
    MIGRATION_CANCEL_ERROR, "Migration not in progress"."""
    code = refusal_code(idle, "migrateCancel", None)
    assert shown(engine_error, code) == "MIGRATION_CANCEL_ERROR"

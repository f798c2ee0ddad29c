"""The host marker against vdsm's own hooks module (lib/vdsm/common/hooks.py
of the vendored vdsm snapshot, ../shared/vendor/vdsm): vdsm lists it among
the host's hooks (``installed()``, what Engine shows under
/hosts/{id}/hooks) and runs it for no event."""

import ast
import importlib.util
import os
import sys
import tarfile
import types

import pytest

from vdsm_container.vdsm import hostmark

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared",
                      "vendor", "vdsm", "vdsm-fd4b0df20.tar.gz")
MEMBER = "vdsm-fd4b0df20/lib/vdsm/common/hooks.py"


@pytest.fixture
def vdsm_hooks(tmp_path, monkeypatch):
    """vdsm's hooks.py, its P_VDSM_HOOKS pointing at a private directory.

    Its three vdsm imports (commands, exception, constants) are stand-ins:
    the functions used here (installed, _scriptsPerDir, _getHookInfo,
    _getScriptInfo) need only the constants.
    """
    if not os.path.exists(VENDOR):
        pytest.skip("%s is absent: ../shared/vendor/vdsm must be beside "
                    "the repository" % VENDOR)
    with tarfile.open(VENDOR) as tar:
        source = tar.extractfile(MEMBER).read().decode()
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    constants = types.ModuleType("vdsm.common.constants")
    constants.P_VDSM_HOOKS = str(hooks_dir) + "/"
    constants.P_VDSM_RUN = str(tmp_path / "run") + "/"
    stubs = {"vdsm": types.ModuleType("vdsm"),
             "vdsm.common": types.ModuleType("vdsm.common"),
             "vdsm.common.commands": types.ModuleType("vdsm.common.commands"),
             "vdsm.common.exception":
             types.ModuleType("vdsm.common.exception"),
             "vdsm.common.constants": constants}
    for name, module in stubs.items():
        if name not in sys.modules:     # a real vdsm may be imported
            monkeypatch.setitem(sys.modules, name, module)
    for name in ("commands", "exception", "constants"):
        if not hasattr(sys.modules["vdsm.common"], name):
            monkeypatch.setattr(sys.modules["vdsm.common"], name,
                                sys.modules["vdsm.common." + name],
                                raising=False)
    spec = importlib.util.spec_from_loader("vdsm_hooks_under_test",
                                           loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, MEMBER, "exec"), module.__dict__)
    module.P_VDSM_HOOKS = constants.P_VDSM_HOOKS
    return module, str(hooks_dir), source


def events_vdsm_runs(source):
    """Every directory vdsm's hook functions run: the literal passed to
    ``_runHooksDir(data, 'dir', ...)`` in hooks.py."""
    events = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "_runHooksDir"):
            arg = node.args[1]
            assert isinstance(arg, ast.Constant), ast.dump(arg)
            events.add(arg.value)
    return events


def test_vdsm_lists_the_marker_and_never_runs_it(vdsm_hooks):
    hooks, hooks_dir, source = vdsm_hooks
    assert hostmark.mark(True, hooks_dir) is True
    path = hostmark.hook_path(hooks_dir)
    # Engine sees it: hooks.installed() -> Host.getCapabilities 'hooks'
    installed = hooks.installed()
    assert set(installed) == {hostmark.HOOK_EVENT}
    assert set(installed[hostmark.HOOK_EVENT]) == {hostmark.HOOK_NAME}
    assert installed[hostmark.HOOK_EVENT][hostmark.HOOK_NAME]["checksum"]
    # and no vdsm event executes it
    events = events_vdsm_runs(source)
    assert "before_vm_start" in events and len(events) > 40
    assert hostmark.HOOK_EVENT not in events
    for event in events:
        assert path not in hooks._scriptsPerDir(event), event


def test_mark_moves_the_old_before_vm_start_marker(vdsm_hooks):
    hooks, hooks_dir, _ = vdsm_hooks
    old = os.path.join(hooks_dir, "before_vm_start", hostmark.HOOK_NAME)
    os.makedirs(os.path.dirname(old))
    with open(old, "w") as f:
        f.write(hostmark.SCRIPT)
    os.chmod(old, 0o755)
    other = os.path.join(hooks_dir, "before_vm_start", "50_vhostmd")
    with open(other, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(other, 0o755)
    assert sorted(hooks._scriptsPerDir("before_vm_start")) == [old, other]
    hostmark.mark(True, hooks_dir)
    assert hooks._scriptsPerDir("before_vm_start") == [other]
    assert hostmark.HOOK_EVENT in hooks.installed()
    hostmark.mark(False, hooks_dir)
    assert set(hooks.installed()) == {"before_vm_start"}   # others kept

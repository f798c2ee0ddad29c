"""The package's shape, as README's drawing ("How it works") promises it.

A newcomer reads the tree from the top: a few top-level modules, the core
(the VM's status and verbs as vdsm keeps them) over the root side
(``host/``), which orchestrates the parts below it (``bundle/``,
``runtimes/`` ...), which use the host's primitives (``linux/``: files,
pids, mounts, loop devices).  Dependencies point down only; vdsm's own
code (``vdsm/``) sits on top.  The imports are read with ``ast``,
function-level ones included, so nothing is imported here.
"""

import ast
import os

import pytest

PKG = "vdsm_container"
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), PKG)

MAX_TOP_LEVEL = 12
MAX_LINES = 400
# The core: a VM's status, its end, its verbs, as vdsm keeps them.
CORE = ("container", "vmstate", "transitions", "exit_status", "powerdown",
        "verbs")


def _modules():
    """{dotted module name: path} of every module of the package."""
    found = {}
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(top, name)
            parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3]
            parts = parts.split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path):
    """The package's modules that the module at ``path`` imports."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names
                       if a.name.split(".")[0] == PKG)
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0 and node.module.split(".")[0] == PKG:
            for alias in node.names:
                sub = "%s.%s" % (node.module, alias.name)
                out.add(sub if sub in MODULES else node.module)
    return out


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _under(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def _violations(importer, imported):
    """["a imports b"] for modules under ``importer`` that import a module
    under one of ``imported``."""
    return sorted("%s imports %s" % (src, dst)
                  for src, dsts in IMPORTS.items()
                  if _under(src, importer)
                  for dst in dsts
                  if any(_under(dst, p) for p in imported))


def test_few_top_level_modules():
    top = sorted(name for name in os.listdir(ROOT)
                 if name.endswith(".py")
                 and name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("module", CORE)
def test_core_knows_nothing_of_vdsm(module):
    assert _violations("%s.%s" % (PKG, module), [PKG + ".vdsm"]) == []


def test_host_knows_nothing_of_the_core():
    above = ["%s.%s" % (PKG, m) for m in CORE + ("cli",)]
    assert _violations(PKG + ".host", above + [PKG + ".vdsm"]) == []


def test_records_sit_below_host_and_the_core():
    above = ["%s.%s" % (PKG, m) for m in CORE + ("cli",)]
    assert _violations(PKG + ".records",
                       above + [PKG + ".host", PKG + ".vdsm"]) == []


def test_bundle_and_host_one_way():
    # host/ orchestrates bundles; bundle/ uses the primitives below both.
    assert _violations(PKG + ".bundle", [PKG + ".host"]) == []
    assert _violations(PKG + ".host", [PKG + ".bundle"]) != []


@pytest.mark.parametrize("part", ("bundle", "image", "runtimes", "spec",
                                  "stats"))
def test_parts_know_nothing_of_the_root_side(part):
    above = ["%s.%s" % (PKG, m) for m in CORE + ("cli", "records", "host",
                                                 "vdsm")]
    assert _violations("%s.%s" % (PKG, part), above) == []


def test_primitives_at_the_bottom():
    allowed = (PKG + ".linux", PKG + ".errors")
    others = [m for m in MODULES
              if m != PKG and not any(_under(m, a) for a in allowed)]
    assert _violations(PKG + ".linux", others) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    with open(MODULES[name]) as f:
        lines = sum(1 for _ in f)
    assert lines <= MAX_LINES, "%s has %d lines" % (name, lines)

"""The README and docs/ say what the code and the package do.

README.rst stays short, keeps its two commands and points to one docs/
file per reader, each of which exists.  The admin guide's commands parse
and pass ovirt-container's checks, its paths are the ones the spec
installs and hostmark writes, and its network notes state what
tests/test_ovirt_container.py shows (NICs in MAC order, ;vdsmdummy;)."""

import os
import re
import shlex

import pytest

from vdsm_container.vdsm import hostmark

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.rst"
README_MAX_LINES = 250
ADMIN_GUIDE = "docs/admin-guide.rst"


@pytest.fixture
def tool():
    """contrib/ovirt-container's module, as test_ovirt_container loads it."""
    pytest.importorskip("ovirtsdk4", reason="ovirt-engine-sdk-python is not "
                        "installed (make check installs it)")
    from .test_ovirt_container import tool
    return tool


def _read(name):
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def _section(text, title):
    start = text.index(title + "\n")
    nxt = re.search(r"\n[^\n]+\n-{4,}\n", text[start + len(title) + 1:])
    return text[start:start + len(title) + 1 + (nxt.start() if nxt
                                                   else len(text))]


def _commands(text, program):
    """The ``program ...`` lines of literal blocks, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines()
            if line.strip().startswith(program + " ")]


def test_readme_is_short_and_keeps_its_two_commands():
    readme = _read(README)
    assert len(readme.splitlines()) <= README_MAX_LINES
    for target in ("demo", "check"):
        assert ("    apt-get update && apt-get install -y make && make %s\n"
                % target) in readme


def test_readme_points_to_docs_that_exist():
    named = set(re.findall(r"\bdocs/[\w.-]+\.rst\b", _read(README)))
    assert ADMIN_GUIDE in named
    for name in sorted(named):
        assert os.path.isfile(os.path.join(REPO, name)), name
    # and no docs/ file is one the README does not point a reader to
    docs = {"docs/" + name for name in os.listdir(os.path.join(REPO, "docs"))
            if name.endswith(".rst")}
    assert docs <= named


def test_admin_guide_matches_the_tools_and_the_package(tool):
    guide = _section(_read(ADMIN_GUIDE), "From zero to a container VM")
    spec = _read("vdsm-container.spec").replace("%{_datadir}", "/usr/share") \
        .replace("%{name}", "vdsm-container")
    commands = _commands(guide, "ovirt-container")
    assert any(" create " in c for c in commands)
    # The image goes in with the tool's own commands (issue #26).
    assert any(" import docker://" in c for c in commands)
    assert any(" upload-image " in c for c in commands)
    for command in commands:
        words = shlex.split(command.split("#")[0])
        words = ["--url" if w == "..." else w for w in words[1:]]
        if words[0] == "--url" and not words[1].startswith("http"):
            words.insert(1, "https://engine/ovirt-engine/api")
        args = tool.parser().parse_args(words)
        if args.cmd == "create":
            tool.custom_properties(args)      # no Failure
    script = re.search(r"(/usr/share/\S+/container-properties\.sh)", guide)
    assert script and script.group(1) in spec
    marker = "%s/%s" % (hostmark.HOOK_EVENT, hostmark.HOOK_NAME)
    assert marker in guide
    assert "/vdsm/hooks/" + marker in spec


def test_admin_guide_states_nic_order_and_the_dummy_bridge():
    networks = _section(_read(ADMIN_GUIDE), "Networks")
    text = " ".join(networks.split())
    assert "sorted by MAC address" in text
    assert "``|`` list follow MAC order" in text
    assert "``;vdsmdummy;`` with link state down" in text

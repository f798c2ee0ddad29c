"""make demo: its script (contrib/demo) runs commands the vdsm-container
command has, the demo installs its runtimes only (make check all the test
tools), and run end to end it says what each step shows, with nothing
but the answers after."""

import os
import re
import shlex
import stat
import subprocess
import sys

import pytest

from vdsm_container import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "contrib", "demo")


def _script():
    with open(DEMO) as f:
        return f.read()


def _make_vars(*names):
    """The Makefile's variables, as make expands them."""
    rules = "print-demo-vars:\n" + "".join(
        "\t@echo '%s='$(%s)\n" % (n, n) for n in names)
    out = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-",
                          "print-demo-vars"], cwd=REPO, input=rules,
                         stdout=subprocess.PIPE, universal_newlines=True,
                         check=True)
    return {k: v.split() for k, _, v in
            (line.partition("=") for line in out.stdout.splitlines())}


def test_script_parses():
    subprocess.run(["sh", "-n", DEMO], check=True)


def _vc_commands(text):
    """The argv of each ``"$vc" ...`` in the script: from there to the end
    of its quotes and lines (continued with \\), up to a redirection, pipe,
    list operator or the ``)`` of a ``$(...)``; variables as a vmId."""
    text = re.sub(r"\$\{?\w+\}?", "6d1c7e4a-2b7f-4f5e-9c3a-0e5b8d7a6c41",
                  text.replace('"$vc"', "VC"))
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        start = line.find("VC ")
        if start < 0:
            continue
        rest = line[start:]
        j = i
        while True:
            try:
                words = shlex.split(rest.replace("\\\n", " "))
                if not rest.endswith("\\"):
                    break
            except ValueError:      # a quote continues on the next line
                pass
            j += 1
            rest += "\n" + lines[j]
        argv = []
        for w in words[1:]:
            if w[:1] in "|;&>" or w.startswith("2>"):
                break
            if w.endswith(")"):
                argv.append(w[:-1])
                break
            argv.append(w)
        found.append(argv)
    return found


def test_its_commands_exist():
    """Every ``"$vc" VERB ...`` of the script parses with vdsm-container's
    own parser; the verbs are the ones the README says the demo shows."""
    text = _script()
    verbs = set()
    for argv in _vc_commands(text):
        verbs.add(cli.parser().parse_args(argv).verb)
    assert verbs >= {"caps", "run", "list", "stats", "logs", "migrate",
                     "destroy"}
    assert set(re.findall(r"--runtime (\w+)", text)) == {"runc", "crun",
                                                         "rkt"}


def test_installs_the_demos_runtimes_only():
    v = _make_vars("DEMO_DEB_PACKAGES", "DEB_PACKAGES", "DEMO_RPM_PACKAGES",
                   "RPM_PACKAGES", "DEMO_TOOLS")
    # make check installs what the demo does, and its test tools.
    assert set(v["DEMO_DEB_PACKAGES"]) < set(v["DEB_PACKAGES"])
    assert set(v["DEMO_RPM_PACKAGES"]) < set(v["RPM_PACKAGES"])
    for tool in ("golang-go", "autoconf", "docker-registry", "rpmlint",
                 "gcc", "runsc", "appc-spec"):
        assert tool not in v["DEMO_DEB_PACKAGES"]
    for runtime in ("runc", "crun", "conmon", "umoci", "skopeo",
                    "busybox-static", "python3-venv"):
        assert runtime in v["DEMO_DEB_PACKAGES"]
    # What the image script runs is checked for before the demo starts.
    with open(os.path.join(REPO, "contrib", "build-busybox-image")) as f:
        image = f.read()
    for tool in ("umoci", "skopeo", "busybox"):
        assert tool in image and tool in v["DEMO_TOOLS"]


def test_make_demo_builds_no_test_tools():
    """make demo: no rkt build, no test dependencies, no make check
    install; its commands are not echoed (@)."""
    out = subprocess.run(["make", "-n", "-B", "demo"], cwd=REPO,
                         stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    assert "contrib/demo" in out
    assert "pip install -q --disable-pip-version-check -e ." in out
    assert ".[test]" not in out
    assert "build-rkt" not in out
    assert "docker-registry" not in out
    assert "golang-go" not in out
    rules = subprocess.run(["make", "-p", "-n", "-B", "demo"], cwd=REPO,
                           stdout=subprocess.PIPE,
                           universal_newlines=True).stdout
    recipe = rules.split("\ndemo: ", 1)[1].split("\n\n", 1)[0]
    assert [line for line in recipe.splitlines()
            if line.startswith("\t") and not line.startswith("\t@")] == []


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_demo_runs(paths, tmp_path_factory):
    """The whole demo, in ``paths``' tree: exit 0, nothing on stderr, each
    step's line then its answer; rkt's where it is (the tests' rkt)."""
    bindir = tmp_path_factory.mktemp("demo-bin")
    vc = bindir / "vdsm-container"
    vc.write_text("#!/bin/sh\nexec %s -m vdsm_container \"$@\"\n"
                  % sys.executable)
    vc.chmod(vc.stat().st_mode | stat.S_IXUSR)
    demo = os.path.dirname(paths.run_dir)
    assert paths.storage_dir == os.path.join(demo, "storage")
    rkt = os.environ.get("VDSM_CONTAINER_TEST_RKT") or "none"
    env = dict(os.environ, VDSM_CONTAINER=str(vc), DEMO_RKT=rkt,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent,
               PYTHONPATH=REPO)
    out = subprocess.run([DEMO, demo], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr == ""
    steps = out.stdout.split("\n== ")[1:]
    assert len(steps) >= 9
    shown = dict(step.split("\n", 1) for step in steps if "\n" in step)
    logs = [answer for title, answer in shown.items()
            if title.startswith("its output, the container's log")]
    assert logs == ["hello from a container VM\n"]
    assert "containers cannot be migrated" in out.stdout
    assert steps[-1] == "none left (list)\n[]\n"
    if rkt != "none":
        pod = [answer for title, answer in shown.items()
               if title.startswith("its output: the pod's console")]
        assert len(pod) == 1 and "hello from an rkt pod" in pod[0]

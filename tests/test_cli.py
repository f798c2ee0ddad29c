"""The vdsm-container command, run as admins run it: a process per call."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from vdsm_container import config
from vdsm_container import constants


@pytest.fixture
def cli(paths):
    env = dict(os.environ, VDSM_CONTAINER_RUN_DIR=paths.run_dir,
               VDSM_CONTAINER_STORAGE_DIR=paths.storage_dir,
               VDSM_CONTAINER_CGROUP_PARENT=paths.cgroup_parent,
               VDSM_CONTAINER_STOP_TIMEOUT="2")

    def run(*args, ok=True):
        proc = subprocess.run([sys.executable, "-m", "vdsm_container"]
                              + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc
    return run


def assert_one_line_error(proc, code):
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("vdsm-container: error %d: " % code)


def test_caps(cli):
    caps = json.loads(cli("caps").stdout)
    runtimes = caps["runtimes"]
    assert set(runtimes) == {"runc", "crun", "rkt", "runsc"}
    # runsc: the platform its self-check ran on, and why the others not
    # (KVM is tried first; ptrace works wherever runsc runs at all).
    runsc = runtimes["runsc"]
    if runsc["available"]:
        platform = runsc["reason"].split()[1]
        assert runsc["reason"].startswith("platform ") and \
            platform in ("kvm", "ptrace"), runsc
        if platform == "ptrace":
            assert "(kvm: " in runsc["reason"], runsc
    else:
        assert runsc["reason"], runsc
    usable = sorted(n for n, a in runtimes.items() if a["available"])
    expected = ["containers"] + ["containers_" + n for n in usable] \
        if usable else []
    assert caps["additionalFeatures"] == expected
    for name, a in runtimes.items():
        assert a["available"] or a["reason"], name
        if a["available"] and name != "rkt":
            # The version the binary itself prints first.
            first = subprocess.run([name, "--version"], check=True,
                                   stdout=subprocess.PIPE,
                                   universal_newlines=True).stdout
            assert a["version"] and \
                first.splitlines()[0].endswith(" " + a["version"])
    # conmon's and umoci's versions, as their --version prints them.
    assert set(caps["tools"]) == {"conmon", "umoci"}
    for tool, v in caps["tools"].items():
        if shutil.which(tool) is None:
            assert v == {"version": None,
                         "reason": "%s not found in PATH" % tool}
            continue
        first = subprocess.run([tool, "--version"], check=True,
                               stdout=subprocess.PIPE,
                               universal_newlines=True).stdout
        assert v["version"] and v["reason"] == ""
        assert first.splitlines()[0] == "%s version %s" % (tool,
                                                           v["version"])
    size = caps["containerDiskSize"]
    assert size["configuredMiB"] == config.Paths.from_env().disk_size_mib
    assert size["defaultMiB"] == min(size["configuredMiB"],
                                     size["storageFilesystemMiB"])


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_lifecycle(cli, busybox_oci):
    vm_id = str(uuid.uuid4())
    out = json.loads(cli("run", "--runtime", "runc", "--image", busybox_oci,
                         "--vm-id", vm_id, "--name", "web", "--",
                         "sh", "-c", "echo hi; exec sleep 1000").stdout)
    assert out["status"] == constants.UP
    assert json.loads(cli("list").stdout) == [
        {"vmId": vm_id, "vmName": "web", "status": "Up"}]
    stats = json.loads(cli("stats", vm_id, "--interval", "0.1").stdout)
    assert stats["vmId"] == vm_id and stats["cpuActual"] is True
    assert_one_line_error(cli("migrate", vm_id, "dst", ok=False), 12)
    assert json.loads(cli("list").stdout)[0]["status"] == "Up"
    assert "hi" in cli("logs", vm_id).stdout
    assert json.loads(cli("destroy", vm_id).stdout)["status"]["code"] == 0
    assert json.loads(cli("list").stdout) == []


@pytest.mark.parametrize("line,text", [
    # conmon's k8s-file lines (runc, crun): the prefix goes; P is part of
    # a line, continued by the next.
    ("2026-12-07T03:46:14.1+00:00 stdout F hello world\n", "hello world\n"),
    ("2026-12-07T03:46:14.1+00:00 stderr P part\n", "part"),
    ("2026-12-07T03:46:14.1+00:00 stdout F \n", "\n"),
    # rkt's pod console (journald's "[uptime] app[pid]: text", CR LF):
    # as it is, whatever its spaces (it was cut at the third one).
    ("[ 1179.418909] busybox[6]: hello from an rkt pod\r\n",
     "[ 1179.418909] busybox[6]: hello from an rkt pod\n"),
    ("[  179.418909] busybox[6]: hi\r\n", "[  179.418909] busybox[6]: hi\n"),
    ("no k8s prefix at all\n", "no k8s prefix at all\n"),
])
def test_logs_text_of_each_runtimes_lines(line, text):
    from vdsm_container import cli
    assert cli.log_text(line) == text


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_create_from_engine_xml_file(cli, tmp_path, busybox_oci):
    from vdsm_container.spec import domxml
    vm_id = str(uuid.uuid4())
    xml = tmp_path / "vm.xml"
    xml.write_text(domxml.build(vm_id, "x", "runc", busybox_oci,
                                command=["true"]))
    assert json.loads(cli("create", str(xml)).stdout)["vmId"] == vm_id
    cli("destroy", vm_id)


@pytest.mark.usefixtures("leakcheck")
def test_errors(cli, tmp_path):
    assert_one_line_error(cli("stats", str(uuid.uuid4()), ok=False), 1)
    assert_one_line_error(cli("run", "--runtime", "lxc", "--image", "/x",
                              ok=False), 91)
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain>")
    assert_one_line_error(cli("create", str(bad), ok=False), 91)
    assert_one_line_error(cli("run", "--runtime", "runc", "--image",
                              str(tmp_path / "missing"), "--", "true",
                              ok=False), 13)
    assert_one_line_error(cli("create", str(tmp_path / "nofile.xml"),
                              ok=False), 91)


@pytest.mark.runtime
@pytest.mark.usefixtures("leakcheck")
def test_images_and_prune(cli, busybox_oci, busybox_docker):
    vm_id = str(uuid.uuid4())
    cli("run", "--runtime", "runc", "--image", busybox_oci, "--vm-id", vm_id,
        "--", "sleep", "1000")
    exited = str(uuid.uuid4())
    cli("run", "--runtime", "runc", "--image", busybox_docker, "--image-ref",
        "busybox:1.36", "--vm-id", exited, "--", "true")
    listed = json.loads(cli("images").stdout)
    assert len(listed) == 2
    # Each image is used by its container, the exited one included.
    assert sorted(i["users"] for i in listed) == sorted([[vm_id], [exited]])
    # The exited container still holds its image until it is destroyed.
    for vm in json.loads(cli("list").stdout):
        if vm["vmId"] != vm_id:
            cli("destroy", vm["vmId"])
    removed = json.loads(cli("images", "prune").stdout)["removed"]
    assert len(removed) == 1
    left = json.loads(cli("images").stdout)
    assert [i["users"] for i in left] == [[vm_id]]
    cli("destroy", vm_id)
    assert json.loads(cli("images", "prune").stdout)["removed"] == \
        [left[0]["key"]]
    assert json.loads(cli("images").stdout) == []


def test_mark_host(cli, tmp_path):
    hooks = tmp_path / "hooks"
    # The sysctl it raises, in a tree of the test's own (test_hostsysctl.py
    # raises the real one, in the VM).
    proc_sys = tmp_path / "sys"
    (proc_sys / "fs" / "inotify").mkdir(parents=True)
    (proc_sys / "fs" / "inotify" / "max_user_instances").write_text("128\n")
    out = json.loads(cli("mark-host", "--hooks-dir", str(hooks),
                         "--sysctl-dir", str(tmp_path / "none"),
                         "--proc-sys", str(proc_sys)).stdout)
    assert out["sysctl"]["settings"] == {
        "fs.inotify.max_user_instances": {"was": 128, "now": 8192}}
    assert (proc_sys / "fs" / "inotify" / "max_user_instances"
            ).read_text() == "8192\n"
    path = hooks / "container_capable" / "50_vdsm_container"
    assert out["installed"] == bool(out["additionalFeatures"])
    assert path.exists() == out["installed"]
    if out["installed"]:
        assert os.access(str(path), os.X_OK)
        assert subprocess.run([str(path)]).returncode == 0


def test_mark_removed_when_not_capable(tmp_path):
    from vdsm_container.vdsm import hostmark
    assert hostmark.mark(True, str(tmp_path)) is True
    assert os.path.exists(hostmark.hook_path(str(tmp_path)))
    assert hostmark.mark(False, str(tmp_path)) is False
    assert not os.path.exists(hostmark.hook_path(str(tmp_path)))

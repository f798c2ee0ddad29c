"""vdsm-container.spec builds, as on EL9, and rpmlint finds no error.

Debian's rpm (4.18, like EL9's 4.16 for what the spec uses) has neither
the Python macros nor systemd's: they are defined here as EL9 defines them
(python-rpm-macros, pyproject-rpm-macros, systemd-rpm-macros,
redhat-rpm-config), with EL9's build tools: the wheel is built without
isolation by setuptools 53 and wheel 0.36 (``make deps`` puts them in
.venv-el9), and installed by pip run with /usr/bin/python3, which writes
the scripts' ``#!/usr/bin/python3``.  BuildRequires are not installed
(``--nodeps``): their names are EL9's.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

from . import el9repos

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EL9_PYTHON = os.path.join(REPO, ".venv-el9", "bin", "python")
SPEC = os.path.join(REPO, "vdsm-container.spec")
RPMLINT_CONFIG = os.path.join(HERE, "data", "rpmlint-el.toml")
PY_VERSION = "%d.%d" % sys.version_info[:2]

pytestmark = pytest.mark.skipif(
    not (shutil.which("rpmbuild") and os.path.exists(EL9_PYTHON)),
    reason="rpmbuild or .venv-el9 missing: make deps installs them")


def _version():
    with open(SPEC) as f:
        return re.search(r"^Version:\s*(\S+)", f.read(), re.M).group(1)


def _source(tmp_path, version):
    """The tracked files as they are now, as vdsm-container-V.tar.gz."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    path = tmp_path / ("vdsm-container-%s.tar.gz" % version)
    with tarfile.open(path, "w:gz") as tar:
        for name in filter(None, files):
            if os.path.exists(os.path.join(REPO, name)):
                tar.add(os.path.join(REPO, name),
                        "vdsm-container-%s/%s" % (version, name))
    return path


def el9_macros(topdir):
    pip = [sys.executable, "-m", "pip"]
    sitelib = "/usr/lib/python%s/site-packages" % PY_VERSION
    wheel = " ".join(pip + [
        "--python", EL9_PYTHON, "wheel", "--wheel-dir",
        "%{_pyproject_wheeldir}", "--no-deps", "--use-pep517",
        "--no-build-isolation", "--disable-pip-version-check",
        "--no-clean", "--progress-bar", "off", "--verbose", "."])
    install = " ".join(pip + [
        "--python", "/usr/bin/python3", "install", "--root",
        "%{buildroot}", "--prefix", "/usr", "--no-deps",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--ignore-installed", "--no-warn-script-location", "--no-index",
        "--no-cache-dir", "--no-compile", "--find-links",
        "%{_pyproject_wheeldir}", "vdsm-container"]) + (
        " && rm -fv %{buildroot}%{python3_sitelib}/*.dist-info/"
        "{RECORD,REQUESTED,direct_url.json}")
    return {
        "_topdir": str(topdir),
        "dist": ".el9",
        "__python3": "/usr/bin/python3",
        "python3": "/usr/bin/python3",
        "python3_version": PY_VERSION,
        "python3_sitelib": sitelib,
        "_unitdir": "/usr/lib/systemd/system",
        "_sysctldir": "/usr/lib/sysctl.d",
        "_pyproject_wheeldir": "pyproject-wheeldir",
        "pyproject_wheel": wheel,
        "pyproject_install": install,
        # redhat-rpm-config byte-compiles site-packages after %install,
        "__os_install_post": " ; ".join(line.strip() for line in (
            subprocess.run(["rpm", "--eval", "%{__os_install_post}"],
                           check=True, capture_output=True,
                           text=True).stdout.splitlines()) if line.strip())
        # as EL9's brp-python-bytecompile (Debian's matches only
        # python3.N with one digit): .pyc and .opt-1.pyc under sitelib
        + " ; /usr/bin/python3 -m compileall -q -f -o 0 -o 1"
        " -s $RPM_BUILD_ROOT -p / $RPM_BUILD_ROOT%{python3_sitelib}"
        # and hardlinks identical .pyc and .opt-1.pyc
        " ; /usr/lib/rpm/brp-python-hardlink",
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rpm")
    version = _version()
    tarball = _source(tmp, version)
    topdir = tmp / "rpmbuild"
    cmd = ["rpmbuild", "-ta", "--nodeps", str(tarball)]
    for name, value in el9_macros(topdir).items():
        cmd += ["--define", "%s %s" % (name, value)]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       env=dict(os.environ, PIP_NO_INPUT="1"))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    rpms = sorted(str(p) for p in (topdir / "RPMS").rglob("*.rpm"))
    srpms = sorted(str(p) for p in (topdir / "SRPMS").glob("*.rpm"))
    return {os.path.basename(p).rsplit("-", 2)[0]: p for p in rpms}, srpms


def _query(rpm, fmt):
    return subprocess.run(["rpm", "-qp", "--qf", fmt, rpm], check=True,
                          capture_output=True, text=True).stdout


def _requires(rpm):
    return subprocess.run(["rpm", "-qp", "--requires", rpm], check=True,
                          capture_output=True, text=True).stdout.split("\n")


def _files(rpm):
    """{path: fflags} of the package."""
    out = _query(rpm, "[%{FILENAMES}\t%{FILEFLAGS:fflags}\n]")
    return dict(line.split("\t") for line in out.splitlines())


def _payload(rpm, dest):
    dest.mkdir()
    cpio = subprocess.run(["rpm2cpio", rpm], check=True,
                          capture_output=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=dest,
                   check=True)
    return dest


def test_builds_two_packages(built):
    rpms, srpms = built
    assert sorted(rpms) == ["vdsm-container", "vdsm-container-engine"]
    assert len(srpms) == 1


def test_host_package(built):
    rpms, _ = built
    files = _files(rpms["vdsm-container"])
    sitelib = "/usr/lib/python%s/site-packages" % PY_VERSION
    assert "/usr/bin/vdsm-container" in files
    assert sitelib + "/vdsm_container/spec/domxml.py" in files
    assert sitelib + "/vdsm_container/__pycache__" in files
    assert ("/usr/lib/systemd/system/vdsmd.service.d/"
            "50-vdsm-container.conf") in files
    assert "/usr/lib/sysctl.d/50-vdsm-container.conf" in files
    assert not any(f.startswith("/etc/") for f in files)
    marker = "/usr/libexec/vdsm/hooks/container_capable/50_vdsm_container"
    assert "g" in files[marker]                       # %ghost
    assert not any("before_vm_start" in f for f in files)
    assert "/usr/bin/ovirt-container" not in files
    requires = _requires(rpms["vdsm-container"])
    assert "vdsm" in requires and "runc" in requires


def test_requirements_install_on_el9_with_ovirt_and_epel(built):
    """Every Requires and Recommends of both packages, the generated
    python3.9dist() ones included, is met by a package of EL9, EPEL 9 or
    oVirt 4.5 (tests/el9repos.py: the table, with each row's source)."""
    rpms, _ = built
    seen = []
    for rpm in rpms.values():
        for query in ("--requires", "--recommends"):
            out = subprocess.run(["rpm", "-qp", query, rpm], check=True,
                                 capture_output=True, text=True).stdout
            seen += [el9repos.el9_requirement(line, PY_VERSION)
                     for line in out.splitlines() if line.strip()]
    assert el9repos.unmet(seen) == []
    assert "python3.9dist(pyroute2) >= 0.5.14" in seen
    assert "python(abi) = 3.9" in seen and "crun" in seen
    # skopeo is an admin's tool: the engine package recommends it for
    # ``import``; the host package runs it nowhere.
    assert "skopeo" not in _requires(rpms["vdsm-container"])


def test_scriptlets(built):
    """%post marks the host (raising the sysctl.d settings) and reloads
    systemd's units where systemd runs; %postun reloads them again."""
    rpms, _ = built
    scripts = subprocess.run(["rpm", "-qp", "--scripts",
                              rpms["vdsm-container"]], check=True,
                             capture_output=True, text=True).stdout
    post = scripts.split("postinstall scriptlet")[1].split("scriptlet")[0]
    postun = scripts.split("postuninstall scriptlet")[1]
    assert "/usr/bin/vdsm-container mark-host" in post
    for body in (post, postun):
        assert "if [ -d /run/systemd/system ]; then" in body
        assert "systemctl daemon-reload" in body
    requires = _requires(rpms["vdsm-container"])
    assert requires.count("systemd") == 2        # Requires(post, postun)


def test_engine_package(built):
    rpms, _ = built
    files = _files(rpms["vdsm-container-engine"])
    assert "/usr/bin/ovirt-container" in files
    assert "/usr/share/vdsm-container-engine/container-properties.sh" \
        in files
    requires = _requires(rpms["vdsm-container-engine"])
    assert "python3-ovirt-engine-sdk4" in requires
    assert not {"vdsm", "runc", "vdsm-container"} & set(requires)


def test_scripts_run_usr_bin_python3(built, tmp_path):
    rpms, _ = built
    for name, rpm in rpms.items():
        root = _payload(rpm, tmp_path / name)
        for path in root.rglob("*"):
            if path.is_file() and os.access(path, os.X_OK):
                with open(path, "rb") as f:
                    first = f.readline()
                if first.startswith(b"#!"):
                    assert first.split()[0] in (b"#!/usr/bin/python3",
                                                b"#!/bin/sh"), (path, first)


def test_installed_engine_tools_find_each_other(built, tmp_path):
    """ovirt-container (a symlink in /usr/bin) loads merge_properties.py
    from its real directory."""
    rpms, _ = built
    root = _payload(rpms["vdsm-container-engine"], tmp_path / "root")
    link = root / "usr" / "bin" / "ovirt-container"
    assert os.readlink(link) == "../share/vdsm-container-engine/" \
        "ovirt_container.py"
    r = subprocess.run([sys.executable, str(link), "--url", "x", "create",
                        "web", "--cluster", "C", "--image-disk", "d",
                        "--command", "a;b"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "holds ';'" in r.stderr


def test_installed_upload_checks_with_its_own_image_modules(built,
                                                            tmp_path):
    """upload-image's archive check runs from the engine package alone:
    vdsm_container's image modules beside the script, not this checkout's
    (python -S: no .pth, so no editable install; PYTHONPATH: the SDK and
    ovirt-imageio only)."""
    rpms, _ = built
    root = _payload(rpms["vdsm-container-engine"], tmp_path / "root")
    share = root / "usr" / "share" / "vdsm-container-engine"
    link = root / "usr" / "bin" / "ovirt-container"
    probe = ("import runpy, sys; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    sdk = os.path.dirname(os.path.dirname(ovirtsdk4_file()))
    r = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(link), "--help"],
        capture_output=True, text=True, cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=sdk))
    assert r.returncode == 0, r.stderr
    assert "upload-image" in r.stdout and "import" in r.stdout
    check = ("import sys; sys.path[:0] = [%r]; "
             "import container_upload as u; "
             "print(u.archive.__file__, u.manifest.__file__)" % str(share))
    r = subprocess.run([sys.executable, "-S", "-c", check],
                       capture_output=True, text=True, cwd=str(tmp_path),
                       env=dict(os.environ, PYTHONPATH=sdk))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [
        str(share / "vdsm_container" / "image" / "archive.py"),
        str(share / "vdsm_container" / "image" / "manifest.py")]


def ovirtsdk4_file():
    import ovirtsdk4
    return ovirtsdk4.__file__


def test_rpmlint_finds_no_error(built):
    rpms, srpms = built
    if not shutil.which("rpmlint"):
        pytest.skip("rpmlint is not installed (make deps installs it)")
    r = subprocess.run(["rpmlint", "-c", RPMLINT_CONFIG]
                       + sorted(rpms.values()) + srpms + [SPEC],
                       capture_output=True, text=True)
    summary = [line for line in r.stdout.splitlines()
               if "packages and" in line and "errors" in line]
    assert summary, r.stdout + r.stderr
    assert re.search(r"\b0 errors\b", summary[-1]), r.stdout
    print(r.stdout)

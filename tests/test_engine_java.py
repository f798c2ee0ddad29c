"""tests/engine/java: the build of Engine's classes says what is missing,
and the tests then fail with that message (they never skip: CI installs
the JDK and jars with `make system-deps`)."""

import os
import subprocess

import pytest

from .engine import java


def test_build_without_a_jdk_names_what_is_missing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink("/usr/bin/dirname", str(bin_dir / "dirname"))
    res = subprocess.run(["/bin/bash", java.BUILD], env={
        "PATH": str(bin_dir)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True)
    assert res.returncode == 2
    assert "missing: javac xz java" in res.stderr
    assert "openjdk-17-jdk-headless" in res.stderr


def test_no_jdk_is_a_failure_with_the_build_message(tmp_path, monkeypatch):
    fake = tmp_path / "build"
    fake.write_text("#!/bin/sh\necho 'engine build: missing: javac' >&2\n"
                    "exit 2\n")
    fake.chmod(0o755)
    monkeypatch.setattr(java, "BUILD", str(fake))
    with pytest.raises(java.EngineJavaMissing, match="missing: javac"):
        java.Jvm()


def test_the_harness_answers():
    assert java.jvm().call("ping") == ("pong", [])

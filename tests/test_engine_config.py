"""contrib/engine-config: the custom properties' regexes and the merge
into UserDefinedVMProperties."""

import importlib.util
import json
import os
import re
import subprocess

import pytest

from vdsm_container import errors
from vdsm_container.spec import properties

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("merge_properties", os.path.join(
    os.path.dirname(HERE), "contrib", "engine-config", "merge_properties.py"))
merge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge)
REGEX = dict(merge.PROPERTIES)
SCRIPT = os.path.join(os.path.dirname(HERE), "contrib", "engine-config",
                      "container-properties.sh")
DOUBLES = os.path.join(HERE, "doubles")

# What a real Engine holds (0000_config.sql stores UserDefinedVMProperties
# for 4.2 ... 4.8), with other hooks' properties set at some levels.
OTHERS = ("sndbuf=^[0-9]+$;vhost=^(([a-zA-Z0-9_]*):(true|false),?)*$;"
          "sap_agent=^(true|false)$")
LEVELS = ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"]


@pytest.fixture
def engine_config(tmp_path, monkeypatch):
    """The engine-config stand-in (tests/doubles/engine-config) on PATH."""
    db = tmp_path / "db.json"
    rows = [[v, OTHERS if v in ("4.7", "4.8") else ""] for v in LEVELS]
    # The database's order, not sorted: the script must not rely on it.
    rows = rows[3:] + rows[:3]
    db.write_text(json.dumps({"UserDefinedVMProperties": rows}))
    log = tmp_path / "calls.log"
    monkeypatch.setenv("ENGINE_CONFIG_DB", str(db))
    monkeypatch.setenv("ENGINE_CONFIG_LOG", str(log))
    monkeypatch.setenv("PATH", DOUBLES + os.pathsep + os.environ["PATH"])

    def values():
        return dict(json.loads(db.read_text())["UserDefinedVMProperties"])

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()]
    return values, calls


def test_stand_in_prints_what_engine_config_prints(engine_config):
    # EngineConfigLogic.printAllValuesForKey / printKeyWithSpecifiedVersion
    def get(*args):
        return subprocess.run(["engine-config", "-g",
                               "UserDefinedVMProperties"] + list(args),
                              check=True, capture_output=True,
                              text=True).stdout
    listing = get()
    assert ("UserDefinedVMProperties: %s version: 4.8\n" % OTHERS) in listing
    assert "UserDefinedVMProperties:  version: 4.2\n" in listing
    assert get("--cver=4.8") == OTHERS + "\n"
    assert get("--cver=4.2") == "\n"
    assert merge.levels(listing) == LEVELS


def test_script_keeps_other_hooks_at_every_level(engine_config):
    values, calls = engine_config
    out = subprocess.run(["sh", SCRIPT], check=True, capture_output=True,
                         text=True).stdout
    after = values()
    assert sorted(after) == LEVELS          # no level added or lost
    for level in LEVELS:
        props = dict(merge.parse(after[level]))
        for name, regex in merge.PROPERTIES:
            assert props[name] == regex, (level, name)
        if level in ("4.7", "4.8"):
            # sndbuf, vhost, sap_agent survive, unchanged
            assert merge.parse(after[level])[:3] == merge.parse(OTHERS)
        else:
            assert set(props) == merge.OURS
    sets = [c for c in calls() if c[0] == "-s"]
    assert sorted(c[-1] for c in sets) == ["--cver=%s" % v for v in LEVELS]
    assert "cluster 4.8: " in out
    # A second run changes nothing.
    subprocess.run(["sh", SCRIPT], check=True, capture_output=True)
    assert values() == after


def test_script_only_at_the_levels_given(engine_config):
    values, _ = engine_config
    before = values()
    subprocess.run(["sh", SCRIPT, "4.8"], check=True, capture_output=True)
    after = values()
    assert {v for v in LEVELS if after[v] != before[v]} == {"4.8"}
    assert merge.parse(after["4.8"])[:3] == merge.parse(OTHERS)
    # A level Engine lacks: engine-config's error, nothing written.
    before = after
    r = subprocess.run(["sh", SCRIPT, "4.9"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "no such entry with version '4.9'" in r.stderr
    assert values() == before


def test_merge_refuses_engine_configs_listing_line():
    # Never written back into Engine: a "KEY: ... version: X" line is not
    # a value.
    with pytest.raises(ValueError):
        merge.merge("UserDefinedVMProperties: %s version: 4.7" % OTHERS)


def test_merge_keeps_other_hooks_and_replaces_ours():
    existing = ("sap_agent=^(true|false)$;"
                "containerType=^(rkt)$;"
                "viodiskcache=^(none|writeback|writethrough)$")
    merged = merge.merge(existing)
    parsed = merge.parse(merged)
    names = [n for n, _ in parsed]
    assert names[:2] == ["sap_agent", "viodiskcache"]
    assert dict(parsed)["containerType"] == "^(runc|crun|rkt|runsc)$"
    assert names.count("containerType") == 1
    assert merge.merge(merged) == merged            # idempotent
    assert merge.merge("") == ";".join("%s=%s" % p for p in merge.PROPERTIES)


def test_regexes_hold_no_engine_separator():
    for name, regex in merge.PROPERTIES:
        assert ";" not in regex, name


GOOD = {
    "containerType": ["runc", "crun", "rkt", "runsc"],
    "containerImage": ["docker.io/library/redis:7", "redis:7", "busybox",
                       "quay.io/org/app@sha256:" + "a" * 64],
    "containerCommand": ["sh -c 'echo hi'", "nginx -g 'daemon off'"],
    "containerEnv": ["A=1", 'A=1 B="two words"', "PATH=/bin:/usr/bin"],
    "containerVolumes": ["data:/var/lib/data", "data:/d,logs:/var/log/app"],
    "containerNetwork": ["dhcp", "none", "static:192.0.2.10/24",
                         "static:192.0.2.10/24,gw=192.0.2.1|dhcp",
                         "static:2001:db8::5/64"],
    "containerInsecure": ["true", "false"],
    "containerUserns": ["true", "false"],
    "containerDiskSize": ["512", "512M", "2G", "2GiB", "1T", "1024 MiB"],
}
BAD = {
    "containerType": ["docker", "runc ", "RUNC", "", "runsc2", "gvisor"],
    "containerImage": ["two words", "a;b", "", "-leading"],
    "containerCommand": ["a;b", ""],
    "containerEnv": ["1A=x", "A", "A=1;B=2"],
    "containerVolumes": ["data", "data:relative", "data:/d;x"],
    "containerNetwork": ["dhcpx", "static:192.0.2.10", "dhcp;none"],
    "containerInsecure": ["yes"],
    "containerDiskSize": ["", "-1", "1.5G", "2 GB", "1P", "10;x"],
}
PARSERS = {
    "containerType": properties.runtime,
    "containerImage": properties.image_ref,
    "containerCommand": properties.command,
    "containerEnv": properties.env,
    "containerVolumes": properties.volumes,
    "containerNetwork": lambda v: properties.network(v, v.count("|") + 1),
    "containerUserns": properties.userns,
    "containerDiskSize": properties.disk_size,
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_what_engine_accepts_the_plugin_parses(name):
    for value in GOOD[name]:
        assert re.match(REGEX[name], value), (name, value)
        if name in PARSERS:
            PARSERS[name](value)        # no vdsm error


@pytest.mark.parametrize("name", sorted(BAD))
def test_engine_refuses_bad_values(name):
    for value in BAD[name]:
        assert not re.match(REGEX[name], value), (name, value)


def test_plugin_refuses_what_engine_would_let_through():
    # Engine's regex can't check everything (e.g. '..' in a path): the
    # plugin still refuses it with vdsm's error.
    assert re.match(REGEX["containerVolumes"], "data:/a/../etc")
    with pytest.raises(errors.InvalidParameter):
        properties.volumes("data:/a/../etc")
    for too_small_or_big in ("1", "15M", "17T"):
        assert re.match(REGEX["containerDiskSize"], too_small_or_big)
        with pytest.raises(errors.InvalidParameter) as e:
            properties.disk_size(too_small_or_big)
        assert "'field': 'containerDiskSize'" in str(e.value)

"""contrib/engine-config: the custom properties' regexes and the merge
into UserDefinedVMProperties."""

import importlib.util
import os
import re

import pytest

from vdsm_container import errors
from vdsm_container.spec import properties

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("merge_properties", os.path.join(
    os.path.dirname(HERE), "contrib", "engine-config", "merge_properties.py"))
merge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge)
REGEX = dict(merge.PROPERTIES)


def test_merge_keeps_other_hooks_and_replaces_ours():
    existing = ("sap_agent=^(true|false)$;"
                "containerType=^(rkt)$;"
                "viodiskcache=^(none|writeback|writethrough)$")
    merged = merge.merge(existing)
    parsed = merge.parse(merged)
    names = [n for n, _ in parsed]
    assert names[:2] == ["sap_agent", "viodiskcache"]
    assert dict(parsed)["containerType"] == "^(runc|crun|rkt)$"
    assert names.count("containerType") == 1
    assert merge.merge(merged) == merged            # idempotent
    assert merge.merge("") == ";".join("%s=%s" % p for p in merge.PROPERTIES)


def test_regexes_hold_no_engine_separator():
    for name, regex in merge.PROPERTIES:
        assert ";" not in regex, name


GOOD = {
    "containerType": ["runc", "crun", "rkt"],
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
}
BAD = {
    "containerType": ["docker", "runc ", "RUNC", ""],
    "containerImage": ["two words", "a;b", "", "-leading"],
    "containerCommand": ["a;b", ""],
    "containerEnv": ["1A=x", "A", "A=1;B=2"],
    "containerVolumes": ["data", "data:relative", "data:/d;x"],
    "containerNetwork": ["dhcpx", "static:192.0.2.10", "dhcp;none"],
    "containerInsecure": ["yes"],
}
PARSERS = {
    "containerType": properties.runtime,
    "containerImage": properties.image_ref,
    "containerCommand": properties.command,
    "containerEnv": properties.env,
    "containerVolumes": properties.volumes,
    "containerNetwork": lambda v: properties.network(v, v.count("|") + 1),
    "containerUserns": properties.userns,
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

"""Check values against vdsm's API schema (../shared/reference/vdsm).

vdsm-api.yml is not JSON Schema: each type lists ``properties`` with
``name``, ``type`` and, when optional, ``defaultvalue``; ``type: string``
with a ``datatype`` means the value travels as a string.  This follows
vdsm's own checker (lib/vdsm/api/vdsmapi.py ``_verify_type``), made strict:
every required property must be present.

Two places where vdsm's schema and vdsm's wire format disagree, for every
VM, are handled the way vdsm and Engine actually behave:
- ExitedVmStats.exitCode/exitReason are documented as enums of names but
  sent as vdsm's numbers (define.NORMAL/ERROR, vmexitreason.*): a number is
  accepted when it maps to a name of the enum.
- ``Vm.getStats`` adds statusTime to every VM's stats, Down ones included,
  though ExitedVmStats does not list it.
"""

import yaml

from .conftest import reference

_PRIMITIVE = {
    "boolean": lambda v: isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, (int, float)),
    "ulong": lambda v: isinstance(v, (int, float)) and v >= 0,
    "string": lambda v: isinstance(v, str),
    "uint": lambda v: isinstance(v, int) and v >= 0,
}

# vdsm numbers -> schema enum names (lib/vdsm/common/define.py,
# lib/vdsm/virt/vmexitreason.py)
_NUMBERED_ENUMS = {
    "VmExitCode": {0: "NORMAL", 1: "ERROR"},
    "VmExitReason": {0: "success", 1: "generic error",
                     2: "lost qemu connection", 3: "libvirt start failed",
                     4: "migration succeeded", 5: "save state succeeded",
                     6: "admin shutdown", 7: "user shutdown",
                     8: "migration failed", 9: "libvirt domain missing",
                     10: "destroyed on startup"},
}


class Schema:

    def __init__(self):
        with open(reference("vdsm", "vdsm-api.yml")) as f:
            self.doc = yaml.safe_load(f)
        self.types = self.doc["types"]

    def check(self, type_name, value):
        """Return a list of problems (empty when ``value`` conforms)."""
        problems = []
        self._check(self.types[type_name], value, type_name, problems)
        return problems

    def _check(self, t, value, where, problems):
        if isinstance(t, list):
            if not isinstance(value, (list, tuple)):
                problems.append("%s: %r is not a list" % (where, value))
                return
            for i, item in enumerate(value):
                self._check(t[0], item, "%s[%d]" % (where, i), problems)
            return
        if isinstance(t, str):
            if t in _PRIMITIVE:
                if not _PRIMITIVE[t](value):
                    problems.append("%s: %r is not %s" % (where, value, t))
                return
            t = self.types[t]
        kind = t.get("type")
        if kind in _PRIMITIVE or isinstance(kind, (list, dict)):
            self._check(kind, value, where, problems)
        elif kind == "alias":
            self._check(t["sourcetype"], value, where, problems)
        elif kind == "enum":
            names = t["values"]
            numbered = _NUMBERED_ENUMS.get(t.get("name"), {})
            if value not in names and numbered.get(value) not in names:
                problems.append("%s: %r not in enum %s" % (
                    where, value, t.get("name")))
        elif kind == "map":
            if not isinstance(value, dict):
                problems.append("%s: %r is not a map" % (where, value))
                return
            for k, v in value.items():
                self._check(t["key-type"], k, where + " key", problems)
                self._check(t["value-type"], v, "%s[%s]" % (where, k),
                            problems)
        elif kind == "union":
            self._union(t, value, where, problems)
        elif kind == "object":
            self._object(t, value, where, problems)
        else:
            problems.append("%s: unknown schema type %r" % (where, kind))

    def _union(self, t, value, where, problems):
        best = None
        for variant in t["values"]:
            found = []
            self._object(variant, value, where, found)
            if not found:
                return
            if best is None or len(found) < len(best):
                best = found
        problems.extend(best or ["%s: matches no variant" % where])

    def _object(self, t, value, where, problems):
        if not isinstance(value, dict):
            problems.append("%s: %r is not an object" % (where, value))
            return
        props = {p["name"]: p for p in t.get("properties") or []}
        extra = set(value) - set(props)
        if t.get("name") == "ExitedVmStats":
            extra.discard("statusTime")
        for name in sorted(extra):
            problems.append("%s: unknown property %s" % (where, name))
        for name, p in props.items():
            if name not in value:
                if "defaultvalue" not in p:
                    problems.append("%s: missing %s" % (where, name))
                continue
            v = value[name]
            if p["type"] == "string" and p.get("datatype"):
                # A number sent as a string: check both.
                if not isinstance(v, str):
                    problems.append("%s.%s: %r is not a string" % (
                        where, name, v))
                    continue
                try:
                    v = float(v) if p["datatype"] == "float" else (
                        v in ("true", "false") if p["datatype"] == "boolean"
                        else int(v))
                except ValueError:
                    problems.append("%s.%s: %r is not %s" % (
                        where, name, v, p["datatype"]))
                    continue
                if v is False:
                    problems.append("%s.%s: %r is not a boolean" % (
                        where, name, value[name]))
                continue
            self._check(p["type"], v, "%s.%s" % (where, name), problems)

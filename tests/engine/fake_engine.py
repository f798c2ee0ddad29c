"""A local stand-in for oVirt Engine's REST API, on 127.0.0.1 only.

As ovirt-engine-sdk's own tests do, it answers the SDK's HTTP requests
with Engine API XML; replies are written with the SDK's own XML writer
from its types, and each request is recorded (method, path, query, body)
so tests can read bodies back with the SDK's reader and assert exactly
what was sent.  It keeps a little state: clusters, hosts and their hooks,
affinity labels, each cluster's affinity groups, disks, VMs with their
disk attachments and NICs.

Where ovirt-engine (master, 0111fc63) refuses a request the tool could
send, this does too, with Engine's message:

- a VM's custom properties: REST joins them ``name=value;``
  (CustomPropertiesParser.parse), VmPropertiesUtils.validateVmProperties
  checks the syntax of the joined string (CustomPropertiesUtils
  VALIDATION_STR) and each value against UserDefinedVMProperties (here,
  what contrib/engine-config installs);
- attaching a disk that is not shareable and already attached to another
  VM (AttachDiskToVmCommand.validate,
  ACTION_TYPE_FAILED_NOT_SHAREABLE_DISK_ALREADY_ATTACHED), or read-only on
  IDE/SATA (DiskVmElementValidator.isReadOnlyPropertyCompatibleWithInterface);
- making a qcow2 disk shareable (UpdateDiskCommand
  .validateCanUpdateShareable);
- host maintenance, VM start, shutdown, stop, migrate, update: see
  lifecycle.py (``engine.life``).
"""

import importlib.util
import json
import os
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ovirtsdk4 import types
from ovirtsdk4.reader import Reader
from ovirtsdk4.writer import Writer

API = "/ovirt-engine/api"
PASSWORD = "secret"

_MERGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "contrib", "engine-config",
    "merge_properties.py")
_spec = importlib.util.spec_from_file_location("merge_properties", _MERGE)
merge_properties = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(merge_properties)

# CustomPropertiesUtils.java
_KV = r"(([a-z_A-Z0-9])+)=(([^;])*)"
VALIDATION_STR = re.compile(r"(%s(;%s)*;?)?" % (_KV, _KV))


class Refused(Exception):
    """Engine refuses the request: (HTTP code, reason, detail)."""


class Engine:

    def __init__(self):
        self.requests = []
        self.clusters = {}       # cluster id -> types.Cluster
        self.hosts = []          # types.Host
        self.hooks = {}          # host id -> [types.Hook]
        self.labels = {}         # label id -> {"label", "hosts", "vms"}
        self.groups = {}         # cluster id -> {group id -> {"group",
        #                          "hostlabels", "vms"}}
        self.disks = {}          # disk id -> types.Disk
        self.attachments = {}    # vm id -> [types.DiskAttachment]
        self.nics = {}           # vm id -> [types.Nic]
        self.profiles = {}       # vnic profile id -> network name or None
        self.vms = {}            # vm id -> types.Vm
        self.reported = {}       # vm id -> [types.ReportedDevice]
        # UserDefinedVMProperties as contrib/engine-config leaves it
        self.vm_properties = dict(merge_properties.parse(
            merge_properties.merge("sap_agent=^(true|false)$")))
        # The MAC pool hands these out in turn (tests may set them).
        self.macs = ["56:6f:3a:1b:00:%02x" % i for i in range(1, 200)]
        self.add_cluster("Default")
        # More routes, tried first: (method, parts, query, body) -> a
        # reply, or None (tests/engine/storage.py adds its own).
        self.routes = []
        from .lifecycle import Lifecycle    # hosts and VMs in motion
        self.life = Lifecycle(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.server.server_port, API)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_cluster(self, name, version=(4, 8)):
        cluster = types.Cluster(id=str(uuid.uuid4()), name=name,
                                version=types.Version(major=version[0],
                                                      minor=version[1]))
        self.clusters[cluster.id] = cluster
        self.groups[cluster.id] = {}
        return cluster

    def cluster(self, name):
        return [c for c in self.clusters.values() if c.name == name][0]

    def add_host(self, name, container_hook, cluster="Default",
                 hook_event="container_capable"):
        """A host; ``container_hook``: vdsm reports vdsm-container's marker
        (hooks.installed(): every directory under the hooks dir)."""
        host = types.Host(id=str(uuid.uuid4()), name=name,
                          cluster=types.Cluster(id=self.cluster(cluster).id))
        self.hosts.append(host)
        self.hooks[host.id] = [types.Hook(
            id=str(uuid.uuid4()), event_name=hook_event,
            name="50_vdsm_container")] if container_hook else []
        return host

    def add_disk(self, alias, shareable=False, fmt=types.DiskFormat.RAW,
                 storage_type=types.StorageType.NFS):
        disk = types.Disk(id=str(uuid.uuid4()), alias=alias, name=alias,
                          shareable=shareable, format=fmt,
                          image_id=str(uuid.uuid4()),
                          storage_domains=[types.StorageDomain(
                              id=str(uuid.uuid4()),
                              storage=types.HostStorage(type=storage_type))])
        self.disks[disk.id] = disk
        return disk

    def add_profile(self, network):
        """A vNIC profile of ``network`` (None: the empty profile)."""
        profile_id = str(uuid.uuid4())
        self.profiles[profile_id] = network
        return profile_id

    def group(self, cluster_name):
        """The cluster's affinity groups by name."""
        return {g["group"].name: g for g in
                self.groups[self.cluster(cluster_name).id].values()}

    def sent(self, method, pattern):
        """Bodies of the recorded requests, read back with the SDK."""
        return [Reader.read(r["body"]) for r in self.requests
                if r["method"] == method and re.fullmatch(pattern,
                                                          r["path"])]

    def _handler(self):
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, code, body, ctype="application/xml"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                parsed = urllib.parse.urlparse(self.path)
                body = self._body()
                engine.requests.append({"method": method,
                                        "path": parsed.path,
                                        "query": parsed.query,
                                        "body": body})
                try:
                    code, reply, ctype = engine.route(method, parsed.path,
                                                      parsed.query, body)
                except Refused as e:
                    code, reason, detail = e.args
                    reply = Writer.write(types.Fault(reason=reason,
                                                     detail=detail))
                    ctype = "application/xml"
                self._reply(code, reply, ctype)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

            def do_PUT(self):
                self._handle("PUT")

        return Handler

    # Routes: (code, body, content type)

    def route(self, method, path, query, body):
        if path == "/ovirt-engine/sso/oauth/token":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("password") != [PASSWORD]:
                return 400, json.dumps({
                    "error": "access_denied",
                    "error_description": "Cannot authenticate user: the "
                    "user name or password is incorrect."}), \
                    "application/json"
            return 200, json.dumps({"access_token": "token-1",
                                    "token_type": "bearer"}), \
                "application/json"
        if path == "/ovirt-engine/services/sso-logout":
            return 200, "{}", "application/json"
        rel = path[len(API):] if path.startswith(API) else path
        parts = [p for p in rel.split("/") if p]
        xml = "application/xml"
        for extra in self.routes:
            reply = extra(method, parts, query, body)
            if reply is not None:
                return reply
        if parts == ["clusters"]:
            found = list(self.clusters.values())
            search = urllib.parse.parse_qs(query).get("search", [""])[0]
            if search.startswith("name="):
                found = [c for c in found if c.name == search[5:]]
            return 200, Writer.write(found, root="clusters"), xml
        if len(parts) >= 3 and parts[0] == "clusters" and \
                parts[2] == "affinitygroups":
            return self._groups(method, parts[1], parts[3:], body)
        if len(parts) == 2 and parts[0] == "disks":
            disk = self.disks[parts[1]]
            if method == "PUT":
                change = Reader.read(body)
                if change.shareable and disk.format == types.DiskFormat.COW:
                    raise Refused(409, "Operation Failed", "[Cannot edit "
                                  "Virtual Disk. Disk's volume format is "
                                  "not supported for shareable disk.]")
                if change.shareable is not None:
                    disk.shareable = change.shareable
            return 200, Writer.write(disk), xml
        if parts == ["hosts"]:
            return 200, Writer.write(self.hosts, root="hosts"), xml
        if len(parts) == 3 and parts[0] == "hosts" and parts[2] == "hooks":
            return 200, Writer.write(self.hooks[parts[1]], root="hooks"), xml
        if parts == ["affinitylabels"]:
            if method == "POST":
                label = Reader.read(body)
                label.id = str(uuid.uuid4())
                self.labels[label.id] = {"label": label, "hosts": [],
                                         "vms": []}
                return 201, Writer.write(label), xml
            return 200, Writer.write([v["label"] for v in
                                      self.labels.values()],
                                     root="affinity_labels"), xml
        if len(parts) >= 3 and parts[0] == "affinitylabels":
            entry = self.labels[parts[1]]
            kind = parts[2]
            if method == "POST":
                obj = Reader.read(body)
                entry[kind].append(obj.id)
                return 201, Writer.write(obj), xml
            if method == "DELETE":
                entry[kind].remove(parts[3])
                return 200, "", xml
            cls = types.Host if kind == "hosts" else types.Vm
            return 200, Writer.write([cls(id=i) for i in entry[kind]],
                                     root=kind), xml
        if parts == ["vms"]:
            if method == "POST":
                vm = Reader.read(body)
                self._check_custom_properties(vm.custom_properties or [])
                if vm.cluster.id is None:
                    vm.cluster = types.Cluster(
                        id=self.cluster(vm.cluster.name).id)
                vm.id = str(uuid.uuid4())
                vm.status = types.VmStatus.DOWN
                self.life.placed(vm)
                self.vms[vm.id] = vm
                return 201, Writer.write(vm), xml
            vms = list(self.vms.values())
            search = urllib.parse.parse_qs(query).get("search", [""])[0]
            if search.startswith("name="):
                vms = [v for v in vms if v.name == search[5:]]
            return 200, Writer.write(vms, root="vms"), xml
        if len(parts) >= 2 and parts[0] == "vms":
            vm = self.vms.get(parts[1])
            if vm is None:
                return 404, "<fault><reason>Not Found</reason></fault>", xml
            if len(parts) == 2 and method == "DELETE":
                del self.vms[vm.id]
                self.attachments.pop(vm.id, None)
                self.nics.pop(vm.id, None)
                for groups in self.groups.values():
                    for g in groups.values():
                        if vm.id in g["vms"]:
                            g["vms"].remove(vm.id)
                for entry in self.labels.values():
                    if vm.id in entry["vms"]:
                        entry["vms"].remove(vm.id)
                return 200, "", xml
            if len(parts) == 3 and parts[2] == "reporteddevices":
                return 200, Writer.write(self.reported.get(vm.id, []),
                                         root="reported_devices"), xml
            if len(parts) == 2:
                return 200, Writer.write(vm), xml
            if parts[2:] == ["diskattachments"] and method == "GET":
                return 200, Writer.write(self.attachments.get(vm.id, []),
                                         root="disk_attachments"), xml
            if len(parts) == 3 and parts[2] == "diskattachments" and \
                    method == "POST":
                att = Reader.read(body)
                self._check_attach(vm.id, att)
                att.id = att.disk.id
                self.attachments.setdefault(vm.id, []).append(att)
                return 201, Writer.write(att), xml
            if len(parts) == 3 and parts[2] == "nics" and method == "POST":
                nic = Reader.read(body)
                nic.id = str(uuid.uuid4())
                nic.mac = types.Mac(address=self.macs.pop(0))
                self.nics.setdefault(vm.id, []).append(nic)
                return 201, Writer.write(nic), xml
        return 404, "<fault><reason>no route %s %s</reason></fault>" % (
            method, path), xml

    def _groups(self, method, cluster_id, rest, body):
        """/clusters/{id}/affinitygroups[/{gid}[/hostlabels|vms[/{id}]]]"""
        xml = "application/xml"
        groups = self.groups[cluster_id]
        if not rest:
            if method == "POST":
                group = Reader.read(body)
                group.id = str(uuid.uuid4())
                group.cluster = types.Cluster(id=cluster_id)
                groups[group.id] = {"group": group, "hostlabels": [],
                                    "vms": []}
                return 201, Writer.write(group), xml
            return 200, Writer.write([g["group"] for g in groups.values()],
                                     root="affinity_groups"), xml
        entry = groups[rest[0]]
        if len(rest) == 1:
            if method == "PUT":
                change = Reader.read(body)
                if change.hosts_rule is not None:
                    entry["group"].hosts_rule = change.hosts_rule
            return 200, Writer.write(entry["group"]), xml
        kind = rest[1]
        if method == "POST":
            obj = Reader.read(body)
            if kind == "vms" and self.vms[obj.id].cluster.id != cluster_id:
                raise Refused(409, "Operation Failed", "[VM is not in the "
                              "affinity group's cluster]")
            entry[kind].append(obj.id)
            return 201, Writer.write(obj), xml
        if method == "DELETE":
            entry[kind].remove(rest[2])
            return 200, "", xml
        cls = types.AffinityLabel if kind == "hostlabels" else types.Vm
        root = "affinity_labels" if kind == "hostlabels" else "vms"
        return 200, Writer.write([cls(id=i) for i in entry[kind]],
                                 root=root), xml

    def _check_custom_properties(self, props):
        joined = "".join("%s=%s;" % (p.name, p.value) for p in props)
        if not VALIDATION_STR.fullmatch(joined):
            raise Refused(400, "Operation Failed", "[Cannot add VM. Custom "
                          "properties have invalid syntax.]")
        for item in filter(None, joined.split(";")):
            name, _, value = item.partition("=")
            regex = self.vm_properties.get(name)
            if regex is None or not re.fullmatch(regex, value):
                raise Refused(400, "Operation Failed", "[Cannot add VM. "
                              "Custom property %s has invalid value.]"
                              % name)

    def _check_attach(self, vm_id, att):
        disk = self.disks.get(att.disk.id)
        if disk is None:
            raise Refused(404, "Operation Failed", "[Cannot attach Virtual "
                          "Disk. The disk doesn't exist.]")
        others = [v for v, atts in self.attachments.items()
                  if v != vm_id and any(a.disk.id == disk.id for a in atts)]
        if not disk.shareable and others:
            raise Refused(409, "Operation Failed", "[Cannot attach Virtual "
                          "Disk. The disk is not shareable and is already "
                          "attached to a VM.]")
        if att.read_only and att.interface in (types.DiskInterface.IDE,
                                               types.DiskInterface.SATA):
            raise Refused(409, "Operation Failed", "[Cannot attach Virtual "
                          "Disk. %s does not support read-only.]"
                          % att.interface)

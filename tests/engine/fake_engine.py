"""A local stand-in for oVirt Engine's REST API, on 127.0.0.1 only.

As ovirt-engine-sdk's own tests do, it answers the SDK's HTTP requests
with Engine API XML; replies are written with the SDK's own XML writer
from its types, and each request is recorded (method, path, query, body)
so tests can read bodies back with the SDK's reader and assert exactly
what was sent.  It keeps a little state: hosts and their hooks, affinity
labels, VMs.
"""

import json
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


class Engine:

    def __init__(self):
        self.requests = []
        self.hosts = []          # types.Host
        self.hooks = {}          # host id -> [types.Hook]
        self.labels = {}         # label id -> {"label", "hosts", "vms"}
        self.vms = {}            # vm id -> types.Vm
        self.reported = {}       # vm id -> [types.ReportedDevice]
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

    def add_host(self, name, container_hook):
        host = types.Host(id=str(uuid.uuid4()), name=name)
        self.hosts.append(host)
        self.hooks[host.id] = [types.Hook(
            id=str(uuid.uuid4()), event_name="before_vm_start",
            name="50_vdsm_container")] if container_hook else []
        return host

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
                code, reply, ctype = engine.route(method, parsed.path,
                                                  parsed.query, body)
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
                vm.id = str(uuid.uuid4())
                vm.status = types.VmStatus.DOWN
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
                return 200, "", xml
            if len(parts) == 3 and parts[2] in ("start", "stop"):
                vm.status = types.VmStatus.UP if parts[2] == "start" else \
                    types.VmStatus.DOWN
                return 200, Writer.write(types.Action(status="complete")), \
                    xml
            if len(parts) == 3 and parts[2] == "reporteddevices":
                return 200, Writer.write(self.reported.get(vm.id, []),
                                         root="reported_devices"), xml
            if len(parts) == 3 and method == "POST":
                obj = Reader.read(body)
                obj.id = str(uuid.uuid4())
                return 201, Writer.write(obj), xml
        return 404, "<fault><reason>no route %s %s</reason></fault>" % (
            method, path), xml

"""import: an image from wherever skopeo copies from, into a disk.

``REF`` is a skopeo source (``docker://REGISTRY/NAME:TAG``,
``oci-archive:PATH``, ``docker-archive:PATH``, ``containers-storage:NAME``
...).  skopeo copies it into an OCI archive of the cluster's platform: a
multi-arch reference (an image index or a docker manifest list) resolves
to it through ``--override-os linux --override-arch ARCH``; a single
image of another architecture is copied as it is and then refused by the
archive check, before any disk exists.  The archive is then uploaded as
``upload-image`` does (container_upload.Upload) and removed.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

import container_upload as upload

SKOPEO = "skopeo"
# skopeo's transports (containers-transports(5)) that hold an image.
TRANSPORTS = ("docker://", "oci-archive:", "docker-archive:",
              "containers-storage:", "oci:", "dir:", "docker-daemon:",
              "sif:")
_LOGRUS = re.compile(r'level=\w+ msg="((?:[^"\\]|\\.)*)"')


def _last_error(stderr, rc):
    """skopeo's last message (logrus' msg="..." unquoted)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "skopeo exited with %d" % rc
    m = _LOGRUS.search(lines[-1])
    if not m:
        return lines[-1]
    return re.sub(r"\\(.)", r"\1", m.group(1))


def image_name(ref):
    """``name:tag`` of a registry or storage reference (the archive's ref
    annotation, what ``containerImage`` names); None for the others."""
    for prefix in ("docker://", "containers-storage:"):
        if ref.startswith(prefix):
            rest = ref[len(prefix):].split("@", 1)[0]
            if rest.startswith("["):          # containers-storage's [store]
                rest = rest.split("]", 1)[-1]
            last = rest.rsplit("/", 1)[-1]
            return rest if ":" in last else rest + ":latest"
    return None


def disk_name(ref):
    """The default disk name: the image's name, else the file's, as a disk
    alias Engine takes (upload.disk_alias, which upload-image uses too)."""
    return upload.disk_alias(image_name(ref) or os.path.basename(
        ref.split(":", 1)[1].split(":", 1)[0]))


@contextlib.contextmanager
def _sigint_after():
    """Ctrl-C in the block takes effect when it ends: a Popen interrupted
    half-way leaves a child nobody can name, let alone kill."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda *_: got.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt


def copy(ref, target, dest, tls_verify=True):
    """skopeo copy ``ref`` to the OCI archive ``dest`` for ``target``."""
    step = "copy %s with skopeo" % ref
    if not ref.startswith(TRANSPORTS):
        raise upload.StepFailed(step, "name its transport, e.g. docker://%s"
                                % ref)
    name = image_name(ref)
    cmd = [SKOPEO, "copy", "--quiet", "--override-os", target.os,
           "--override-arch", target.arch]
    if not tls_verify:
        cmd.append("--src-tls-verify=false")
    cmd += [ref, "oci-archive:%s%s" % (dest, ":" + name if name else "")]
    proc = None
    try:
        with _sigint_after():
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE,
                                    universal_newlines=True)
        _, err = proc.communicate()
    except BaseException as e:
        # Ctrl-C (a terminal's reaches skopeo too): none left running.
        if proc is not None:
            proc.kill()
            proc.wait()
        if isinstance(e, OSError):
            raise upload.StepFailed(step, "cannot run %s: %s"
                                    % (SKOPEO, e)) from e
        raise
    if proc.returncode != 0:
        raise upload.StepFailed(step, _last_error(err, proc.returncode))


def import_image(conn, ref, domain_name, name=None, cluster=None,
                 cafile=None, secure=True, tls_verify=True, progress=None):
    """Copy ``ref`` for the cluster's platform, upload it; the disk id."""
    system = conn.system_service()
    domain = upload.find_domain(system, domain_name)
    target = upload.target_of(system, domain, cluster)
    tmp = tempfile.mkdtemp(prefix="ovirt-container-import-")
    try:
        path = os.path.join(tmp, "image.tar")
        try:
            copy(ref, target, path, tls_verify)
        except KeyboardInterrupt as e:
            raise upload.StepFailed("copy %s with skopeo" % ref,
                                    "interrupted", True) from e
        return upload.upload_image(conn, path, domain_name,
                                   name=name or disk_name(ref),
                                   cluster=cluster, cafile=cafile,
                                   secure=secure, want=image_name(ref),
                                   progress=progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_parser(sub):
    p = sub.add_parser("import", help="copy an image (docker://, "
                       "oci-archive:, docker-archive:, containers-storage: "
                       "...) for the cluster's architecture and upload it "
                       "into a new raw disk; prints the disk's id")
    p.add_argument("ref", help="a skopeo source reference")
    upload.add_common(p)
    p.add_argument("--src-tls-verify", choices=("true", "false"),
                   default="true", help="skopeo's: false for a registry "
                   "without TLS")


def run(conn, args):
    cafile, secure = upload.imageio_security(args)
    return import_image(conn, args.ref, args.storage_domain, name=args.name,
                        cluster=args.cluster, cafile=cafile, secure=secure,
                        tls_verify=args.src_tls_verify == "true")

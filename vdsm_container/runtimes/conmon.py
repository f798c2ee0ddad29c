"""conmon's supervision of an OCI runtime's container (runc, crun).

The container is created by conmon, which double-forks, runs ``<runtime>
create``, reports the container's pid as one JSON line on the sync pipe
(and keeps the pipe open, so we read exactly one line), stays as the
container's parent, keeps its stdout/stderr in a log and writes its exit
status to ``<exit_dir>/<id>`` when it ends.  conmon only creates: the driver
(``oci.OCIDriver``) runs ``<runtime> start``, and later ``<runtime>
delete``.  The container thus outlives the process that started it (vdsm,
or one ``vdsm-container`` command), as a VM outlives vdsm under libvirt.
Where systemd is PID 1 conmon runs in a scope of its own, so a vdsmd
restart never kills it.

The runtime's own messages stay out of the container's log: conmon gives
``<runtime> create`` the container's stdout/stderr pipes, so whatever the
runtime prints there lands in the log before the container's first line
(runc's systemd driver warns "skipping device ..." at every start on EL9).
The runtime writes them to ``runtime.log`` in the bundle instead (its global
``--log``, JSON lines), which is read after the create: warnings go to our
log, and an error there explains a failed create when conmon relayed none.
Fatal errors runc and crun also print on stderr, which conmon relays.

A mixin of ``oci.OCIDriver``: it uses the driver's ``paths``, ``name``,
``systemd``, ``hierarchy`` and ``_args``.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal as signals
import subprocess
import time

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.runtimes import console, proc
from vdsm_container.stats import cgroups

# One logger for the whole OCI driver, whichever module of it speaks.
log = logging.getLogger("vdsm_container.runtimes.oci")

SYNC_TIMEOUT = 60.0
# How much of runtime.log is read after a create (it holds one create's
# messages: a few lines).
RUNTIME_LOG_MAX = 64 * 1024


def runtime_messages(data):
    """(level, message) of each JSON line runc or crun wrote with
    ``--log-format json`` (``{"level": ..., "msg": ...}``); a line that is
    not such JSON is kept as a warning, whole."""
    found = []
    for raw in data.decode(errors="replace").splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
            found.append((str(entry.get("level", "info")).lower(),
                          entry["msg"]))
        else:
            found.append(("warning", raw))
    return found



class Supervision:
    """Starting a container under conmon, and what conmon leaves."""

    def runtime_log(self, bundle):
        """Where ``<runtime> create`` writes its own messages (JSON lines)."""
        return os.path.join(bundle.dir, "runtime.log")

    def _oom_file(self, bundle):
        # conmon writes "oom" in its working directory (the bundle).
        return os.path.join(bundle.dir, "oom")


    def _conmon_argv(self, bundle):
        cid = bundle.vm_id
        argv = [
            shutil.which("conmon") or "conmon",
            "--api-version", "1",
            "--cid", cid, "--cuuid", cid, "--name", cid,
            "--runtime", self._path,
            "--bundle", bundle.dir,
            "--container-pidfile", bundle.pid_file,
            "--conmon-pidfile", bundle.conmon_pid_file,
            "--log-path", "k8s-file:" + bundle.log_path,
            # Bounded: past it conmon starts the log afresh.
            "--log-size-max", str(self.paths.log_size_max),
            "--exit-dir", bundle.exit_dir,
            "--socket-dir-path", bundle.socket_dir,
            "--log-level", "error",
        ]
        if console.socket_path(bundle):
            # A pty for Engine's serial console (``runtimes.console``).
            argv.append("--terminal")
        runtime_args = self._args()[1:] + [
            "--log", self.runtime_log(bundle), "--log-format", "json"]
        for arg in runtime_args:
            argv += ["--runtime-arg", arg]
        if self.systemd:
            # Give conmon a scope of its own, out of vdsmd's cgroup.
            argv = ["systemd-run", "--scope", "--quiet", "--collect",
                    "--slice=%s" % self.paths.cgroup_parent,
                    "--unit=vdsm-container-conmon-%s" % cid, "--"] + argv
        return argv


    def _create(self, bundle):
        rfd, wfd = os.pipe()
        env = dict(os.environ, _OCI_SYNCPIPE=str(wfd))
        try:
            # In the bundle: conmon writes its "oom" file in its working
            # directory, which must not be the caller's.
            conmon = subprocess.Popen(
                self._conmon_argv(bundle), pass_fds=(wfd,), env=env,
                cwd=bundle.dir, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                universal_newlines=True)
        except OSError as e:
            os.close(rfd)
            os.close(wfd)
            raise errors.CannotCreateVM("cannot run conmon: %s" % e) from e
        os.close(wfd)
        try:
            line = self._read_sync(rfd)
        finally:
            os.close(rfd)
            # conmon's first process exits after forking the monitor.
            try:
                _, conmon_err = conmon.communicate(timeout=SYNC_TIMEOUT)
            except subprocess.TimeoutExpired:
                conmon.kill()
                _, conmon_err = conmon.communicate()
        try:
            msg = json.loads(line) if line else {}
        except ValueError:
            msg = {"message": line}
        pid = msg.get("data")
        created = isinstance(pid, int) and pid > 0
        runtime_errors = self._report_runtime_log(bundle, created)
        if not created:
            detail = proc.last_line(
                msg.get("message") or
                (runtime_errors[-1] if runtime_errors else "") or conmon_err or
                "conmon reported no pid within %d s" % SYNC_TIMEOUT)
            raise errors.CannotCreateVM("%s create failed: %s"
                                        % (self.name, detail.strip()),
                                        vmId=bundle.vm_id)
        return pid

    def _report_runtime_log(self, bundle, created):
        """Log what the runtime said about this create; return its errors
        (logged only if the container was created anyway: else they are
        the failure's reason, which the caller raises).

        Read once per create; the file is removed at the next start and
        with the bundle.
        """
        try:
            with open(self.runtime_log(bundle), "rb") as f:
                data = f.read(RUNTIME_LOG_MAX)
        except OSError:
            return []
        errors_said = []
        for level, text in runtime_messages(data):
            if level in ("error", "fatal", "panic"):
                errors_said.append(text)
                if created:
                    log.warning("Container %s: %s: %s", bundle.vm_id,
                                self.name, text)
            elif level in ("warning", "warn"):
                log.info("Container %s: %s: %s", bundle.vm_id, self.name,
                         text)
        return errors_said

    def _read_sync(self, fd):
        deadline = time.monotonic() + SYNC_TIMEOUT
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\n", 1)[0].decode(errors="replace").strip()

    # State

    def exit_file(self, bundle):
        """conmon writes the exit status here as the container ends."""
        return os.path.join(bundle.exit_dir, bundle.vm_id)

    def _exit_code(self, bundle):
        try:
            return int(files.read_text(self.exit_file(bundle)).strip())
        except (OSError, ValueError):
            return None


    def _conmon_alive(self, bundle):
        try:
            with open(bundle.conmon_pid_file) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError, IndexError):
            return False


    def _stop_conmon_scope(self, bundle):
        """systemd removes the scope of a dead conmon when it gets to it;
        stopping it is synchronous, so nothing is left once we return."""
        if not self.systemd:
            return
        scope = "vdsm-container-conmon-%s.scope" % bundle.vm_id
        rel = "%s/%s" % (cgroups.parent_relpath(self.paths.cgroup_parent,
                                                True), scope)
        if os.path.isdir(self.hierarchy.path(rel)):
            proc.run(["systemctl", "stop", scope])


    def _reap_conmon(self, bundle):
        files.kill_if_ours(files.read_pid(bundle.conmon_pid_file),
                           bundle.vm_id, signals.SIGKILL)


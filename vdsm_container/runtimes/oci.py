"""OCI runtimes (runc, crun) supervised by conmon.

The container is created by conmon, which double-forks, runs ``<runtime>
create``, reports the container's pid as one JSON line on the sync pipe
(and keeps the pipe open, so we read exactly one line), stays as the
container's parent, keeps its stdout/stderr in a log and writes its exit
status to ``<exit_dir>/<id>`` when it ends.  conmon only creates: we run
``<runtime> start``, and later ``<runtime> delete``.  The container thus
outlives the process that started it (vdsm, or one ``vdsm-container``
command), as a VM outlives vdsm under libvirt.

Cgroups: where systemd is PID 1 (every oVirt host) the runtime's systemd
driver puts the container in ``vdsm-container-<vmId>.scope`` under
``vdsm-containers.slice`` (which systemd nests as
``vdsm.slice/vdsm-containers.slice``) and conmon runs in a scope of its own,
so a vdsmd restart never kills it; elsewhere the runtime's cgroupfs driver
makes ``/vdsm-containers.slice/vdsm-container-<vmId>.scope``.  Either way
the driver records where the container really is (``cgroup`` in the bundle,
read from ``/proc/<pid>/cgroup``), and reads and removes that.

Status is read without running the runtime: conmon's exit file says the
container ended, ``/proc/<pid>/cgroup`` that it still runs (and that the pid
was not reused), the freezer that it is paused, the runtime's exec.fifo
that it was created and never started (then ``<runtime> state`` confirms
it), and conmon's ``oom`` file (written in its working directory, the
bundle) or the cgroup's OOM kill counter that the kernel killed it for
memory.  ``<runtime> state`` is otherwise used only to recover.

The runtime's own messages stay out of the container's log: conmon gives
``<runtime> create`` the container's stdout/stderr pipes, so whatever the
runtime prints there lands in the log before the container's first line
(runc's systemd driver warns "skipping device ..." at every start on EL9).
The runtime writes them to ``runtime.log`` in the bundle instead (its global
``--log``, JSON lines), which is read after the create: warnings go to our
log, and an error there explains a failed create when conmon relayed none.
Fatal errors runc and crun also print on stderr, which conmon relays.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal as signals
import subprocess
import tempfile
import time

from vdsm_container import errors
from vdsm_container import files
from vdsm_container.bundle import ocispec
from vdsm_container.runtimes import base, oomwatch, proc
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.runtimes.oci")

SYNC_TIMEOUT = 60.0
KILL_WAIT = 10.0
# After a SIGKILL: how long conmon and systemd get to say it was the OOM
# killer (both handle the end asynchronously; under emulation, slowly).
OOM_WAIT = 5.0
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


def _version(binary):
    try:
        out = proc.run([binary, "--version"], timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, proc.last_line(out.stderr)
    first = (out.stdout.splitlines() or [""])[0]
    return first.split()[-1] if first else "unknown", None


def _tmp_root(paths):
    os.makedirs(paths.run_dir, mode=0o700, exist_ok=True)
    return paths.run_dir


def kernel_oom_kill(scope):
    """True if the kernel's log has an OOM kill in cgroup ``scope``.

    The OOM killer logs each kill ("oom-kill:...,oom_memcg=<cgroup>,...")
    in the kernel's ring buffer, which outlives the container's cgroup:
    where systemd removes an emptied scope at once, conmon's and systemd's
    own watches of memory.events can both lose that race, and this record
    still tells.  Reads /dev/kmsg (root) without waiting.
    """
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    # The scope itself, or below it (crun puts the container's processes
    # in a "container" cgroup inside the scope on cgroup v2).
    markers = [("/%s%s" % (scope, end)).encode() for end in (",", "/")]
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BrokenPipeError:
                continue        # overwritten while we read: go on
            except BlockingIOError:
                return False    # the end of the buffer
            if not record:
                return False
            if b"oom-kill:" in record and any(m in record for m in markers):
                return True
    finally:
        os.close(fd)


class OCIDriver(base.Driver):
    """A runc-compatible runtime behind conmon."""

    binary = None
    capabilities = dict(base.Driver.capabilities, pause=True, nics=True,
                        volumes=True, userns=True)

    def __init__(self, paths, hierarchy=None):
        super().__init__(paths)
        self.root = paths.runtime_root(self.name)
        self.systemd = proc.systemd_booted()
        self.hierarchy = hierarchy or cgroups.Hierarchy()
        self._path = shutil.which(self.binary) or self.binary

    # Availability

    @classmethod
    def probe(cls, paths):
        path = shutil.which(cls.binary)
        if path is None:
            return base.Availability(cls.name, False,
                                     "%s not found in PATH" % cls.binary)
        if shutil.which("conmon") is None:
            return base.Availability(cls.name, False,
                                     "conmon not found in PATH")
        version, err = _version(path)
        if version is None:
            return base.Availability(cls.name, False,
                                     "%s --version failed: %s"
                                     % (cls.binary, err))
        reason = cls(paths).self_check()
        return base.Availability(cls.name, reason is None, reason or "",
                                 version)

    def self_check(self):
        """Run a throwaway container; None if it ran, else why it failed.

        The container runs the host's ``true`` from read-only bind mounts of
        the host's /usr (and /bin, /lib... as the host lays them out), under
        the same cgroup parent, namespaces and memory limit as a real one,
        so the runtime meets every host feature a real container needs.
        Catches, for example, crun 1.8 on hybrid cgroup hosts.
        """
        with tempfile.TemporaryDirectory(prefix="selfcheck-",
                                         dir=_tmp_root(self.paths)) as tmp:
            cid = "vdsm-container-selfcheck-%d" % os.getpid()
            rootfs = os.path.join(tmp, "rootfs")
            os.mkdir(rootfs)
            # Mount points an image has: crun, unlike runc, does not make
            # /dev ("open /dev directory in ...: No such file").
            for name in ("dev", "proc", "sys"):
                os.mkdir(os.path.join(rootfs, name))
            binds = []
            for name in ("usr", "bin", "sbin", "lib", "lib64"):
                host = "/" + name
                if os.path.islink(host):
                    os.symlink(os.readlink(host), os.path.join(rootfs, name))
                elif os.path.isdir(host):
                    binds.append({"destination": host, "source": host,
                                  "type": "bind",
                                  "options": ["rbind", "ro", "nosuid"]})
            config = ocispec.selfcheck_config(
                rootfs, self.cgroups_path_spec("selfcheck-%d" % os.getpid()),
                binds)
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(config, f)
            root = os.path.join(tmp, "state")
            args = [self._path, "--root", root] + \
                (["--systemd-cgroup"] if self.systemd else [])
            try:
                out = proc.run(args + ["run", "--bundle", tmp, cid],
                               timeout=30)
            except subprocess.TimeoutExpired:
                return "%s self-check container timed out" % self.name
            finally:
                proc.run(args + ["delete", "--force", cid], timeout=30)
            if out.returncode != 0:
                return "%s cannot run containers on this host: %s" % (
                    self.name, proc.last_line(out.stderr or out.stdout))
        return None

    # Paths

    def _args(self):
        args = [self._path, "--root", self.root]
        if self.systemd:
            args.append("--systemd-cgroup")
        return args

    def cgroups_path_spec(self, vm_id):
        """``linux.cgroupsPath`` as the runtime's cgroup driver wants it."""
        if self.systemd:
            # slice:prefix:name -> <slice>/<prefix>-<name>.scope
            return "%s:vdsm-container:%s" % (self.paths.cgroup_parent, vm_id)
        return cgroups.relpath(self.paths.cgroup_parent, vm_id)

    def _cgroup_file(self, bundle):
        return os.path.join(bundle.dir, "cgroup")

    def runtime_log(self, bundle):
        """Where ``<runtime> create`` writes its own messages (JSON lines)."""
        return os.path.join(bundle.dir, "runtime.log")

    def _oom_file(self, bundle):
        # conmon writes "oom" in its working directory (the bundle).
        return os.path.join(bundle.dir, "oom")

    def cgroup_path(self, bundle):
        """Where the container is: as recorded when it started, else as the
        runtime's cgroup driver would have put it."""
        try:
            with open(self._cgroup_file(bundle)) as f:
                recorded = f.read().strip()
        except OSError:
            recorded = ""
        return recorded or cgroups.relpath(self.paths.cgroup_parent,
                                           bundle.vm_id, self.systemd)

    def _record_cgroup(self, bundle, pid):
        rel = cgroups.of_pid(pid, self.hierarchy.version)
        if rel and rel != "/":
            with open(self._cgroup_file(bundle), "w") as f:
                f.write(rel)

    # Lifecycle

    def prepare(self, bundle, spec, image, mounts=(), netns=None,
                blkio=None, id_map=None):
        config = ocispec.build(spec, image, bundle.rootfs,
                               self.cgroups_path_spec(spec.vm_id),
                               netns_path=netns, mounts=mounts, blkio=blkio,
                               id_map=id_map)
        bundle.write_config(config)
        return config

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

    def start(self, bundle):
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for stale in (self._cgroup_file(bundle), self._oom_file(bundle),
                      self.runtime_log(bundle)):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        try:
            pid = self._create(bundle)
            self._record_cgroup(bundle, pid)
            out = proc.run(self._args() + ["start", bundle.vm_id])
            if out.returncode != 0:
                raise errors.CannotCreateVM(
                    "%s start failed: %s"
                    % (self.name, proc.last_line(out.stderr)),
                    vmId=bundle.vm_id)
        except BaseException:
            # The contract: a failed start leaves nothing of its own.
            try:
                self.cleanup(bundle)
            except Exception as e:
                log.error("Container %s: cleanup after a failed start: %s",
                          bundle.vm_id, e)
            raise
        if self.hierarchy.version == 2:
            oomwatch.check(bundle.vm_id, files.read_pid(
                bundle.conmon_pid_file))
        return pid

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

    def _alive(self, bundle, pid):
        """True if ``pid`` still is this container's process."""
        if not pid:
            return False
        try:
            if cgroups.scope_name(bundle.vm_id) not in files.read_text(
                    "/proc/%d/cgroup" % pid):
                return False
            # State field follows the parenthesised command name.
            return files.read_text("/proc/%d/stat" % pid).rsplit(
                ")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def _frozen(self, bundle):
        rel = self.cgroup_path(bundle)
        if self.hierarchy.version == 2:
            path = os.path.join(self.hierarchy.path(rel), "cgroup.freeze")
            frozen = "1"
        else:
            path = os.path.join(self.hierarchy.path(rel, "freezer"),
                                "freezer.state")
            frozen = "FROZEN"
        try:
            return files.read_text(path).strip() == frozen
        except OSError:
            return False

    def _created(self, bundle):
        """True if the container was created and never started: its init
        (the runtime's, not the image's command) waits on exec.fifo, which
        ``start`` removes (runc and crun alike).  The runtime itself is
        asked only then, so the usual look stays a few file reads."""
        if not os.path.exists(os.path.join(self.root, bundle.vm_id,
                                           "exec.fifo")):
            return False
        out = proc.run(self._args() + ["state", bundle.vm_id], timeout=30)
        try:
            return json.loads(out.stdout).get("status") == base.CREATED
        except ValueError:
            return False

    def state(self, bundle):
        pid = bundle.pid()
        code = self._exit_code(bundle)
        if code is None and self._alive(bundle, pid):
            if self._created(bundle):
                return base.RuntimeState(base.CREATED, pid)
            status = base.PAUSED if self._frozen(bundle) else base.RUNNING
            return base.RuntimeState(status, pid)
        if code is None and pid is None and not os.path.exists(
                os.path.join(self.root, bundle.vm_id)):
            return base.RuntimeState(base.GONE)
        if code is None:
            # Died just now: give conmon a moment to write the exit file.
            deadline = time.monotonic() + 1.0
            while code is None and time.monotonic() < deadline:
                time.sleep(0.01)
                code = self._exit_code(bundle)
        return base.RuntimeState(base.STOPPED, pid, code,
                                 self._oom_killed(bundle, code))

    def _oom_killed(self, bundle, code):
        """conmon saw an OOM kill (it watches memory.events on v2 and the
        OOM eventfd on v1), or the cgroup, if still there, counted one.
        Where systemd is PID 1 the scope's cgroup goes away with its last
        process, so conmon's file is the one that tells there; conmon may
        handle the container's exit before the OOM event, so for a SIGKILL
        it is given until it exits to write the file."""
        if os.path.exists(self._oom_file(bundle)):
            return True
        if self.hierarchy.oom_kills(self.cgroup_path(bundle)) > 0:
            return True
        if code != 128 + signals.SIGKILL:
            return False
        # A SIGKILL: the OOM killer's, or anyone's.  conmon and systemd
        # (which watches the scope's memory.events too, and keeps a failed
        # scope with its result until cleanup resets it) each tell, once
        # they have handled the end; either may still be at it.
        deadline = time.monotonic() + OOM_WAIT
        while True:
            if os.path.exists(self._oom_file(bundle)) or \
                    kernel_oom_kill(self._scope(bundle)):
                return True
            unit = self._unit_state(bundle) if self.systemd else {}
            if unit.get("Result") == "oom-kill":
                return True
            settled = not self._conmon_alive(bundle) and unit.get(
                "ActiveState") not in ("active", "activating",
                                       "deactivating")
            if settled or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _scope(self, bundle):
        return cgroups.scope_name(bundle.vm_id)

    def _unit_state(self, bundle):
        """The container scope's Result and ActiveState (systemd)."""
        out = proc.run(["systemctl", "show", "--property=Result,ActiveState",
                        self._scope(bundle)], timeout=30)
        return dict(line.split("=", 1) for line in out.stdout.splitlines()
                    if "=" in line)

    def _conmon_alive(self, bundle):
        try:
            with open(bundle.conmon_pid_file) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError, IndexError):
            return False

    # Stopping

    def kill(self, bundle, signal):
        out = proc.run(self._args() + ["kill", bundle.vm_id,
                                       str(int(signal))])
        if out.returncode != 0:
            pid = bundle.pid()
            if self._alive(bundle, pid):
                # The runtime lost its state: signal the process directly.
                os.kill(pid, signal)

    def _wait_stopped(self, bundle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(bundle, bundle.pid()):
                return True
            time.sleep(0.02)
        return not self._alive(bundle, bundle.pid())

    def stop(self, bundle, timeout):
        if not self._alive(bundle, bundle.pid()):
            return
        if self._frozen(bundle):
            self.resume(bundle)     # a frozen process can't take SIGTERM
        if timeout > 0:
            self.kill(bundle, signals.SIGTERM)
            if self._wait_stopped(bundle, timeout):
                return
            log.warning("Container %s ignored SIGTERM for %ss, killing",
                        bundle.vm_id, timeout)
        self.kill(bundle, signals.SIGKILL)
        if not self._wait_stopped(bundle, KILL_WAIT):
            raise errors.VMDestroyFailed(
                "container still running after SIGKILL", vmId=bundle.vm_id)

    def pause(self, bundle):
        self._simple("pause", bundle)

    def resume(self, bundle):
        self._simple("resume", bundle)

    def _simple(self, verb, bundle):
        out = proc.run(self._args() + [verb, bundle.vm_id])
        if out.returncode != 0:
            raise errors.UnsupportedOperation(
                "%s %s failed: %s" % (self.name, verb,
                                      proc.last_line(out.stderr)),
                vmId=bundle.vm_id)

    def cleanup(self, bundle):
        out = proc.run(self._args() + ["delete", "--force", bundle.vm_id])
        if out.returncode != 0 and "not exist" not in out.stderr:
            log.warning("%s delete %s: %s", self.name, bundle.vm_id,
                        proc.last_line(out.stderr))
        shutil.rmtree(os.path.join(self.root, bundle.vm_id),
                      ignore_errors=True)
        self._remove_cgroup(bundle)
        self._reap_conmon(bundle)
        self._stop_conmon_scope(bundle)
        if self.systemd:
            # A scope that failed (an OOM kill) stays loaded until reset.
            proc.run(["systemctl", "reset-failed", self._scope(bundle)],
                     timeout=30)

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

    def _remove_cgroup(self, bundle):
        """Kill what is left in the container's cgroup and remove it.

        The runtime does this on delete; doing it again covers a runtime
        that lost its state while the processes lived on.
        """
        dirs = self.hierarchy.dirs(self.cgroup_path(bundle))
        try:
            cgroups.empty_and_remove(dirs)
        except OSError as e:
            log.warning("Cannot remove cgroup %s: %s", dirs, e)

    def _reap_conmon(self, bundle):
        files.kill_if_ours(files.read_pid(bundle.conmon_pid_file),
                           bundle.vm_id, signals.SIGKILL)


"""OCI runtimes (runc, crun) supervised by conmon: the shared driver.

The parts: ``conmon`` (creating the container under conmon, and what conmon
leaves), ``ocistate`` (its status from files, without running the runtime),
this module (the lifecycle: probe, prepare, start, stop, pause, cleanup),
and each runtime's own module (``runc``, ``crun``).

Cgroups: where systemd is PID 1 (every oVirt host) the runtime's systemd
driver puts the container in ``vdsm-container-<vmId>.scope`` under
``vdsm-containers.slice`` (which systemd nests as
``vdsm.slice/vdsm-containers.slice``) and conmon runs in a scope of its own,
so a vdsmd restart never kills it; elsewhere the runtime's cgroupfs driver
makes ``/vdsm-containers.slice/vdsm-container-<vmId>.scope``.  Either way
the driver records where the container really is (``cgroup`` in the bundle,
read from ``/proc/<pid>/cgroup``), and reads and removes that.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal as signals
import subprocess
import tempfile
import time

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.bundle import ocispec
from vdsm_container.runtimes import base, conmon, console, ocistate, \
    oomwatch, proc
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.runtimes.oci")

KILL_WAIT = 10.0


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


class OCIDriver(conmon.Supervision, ocistate.Status, base.Driver):
    """A runc-compatible runtime behind conmon."""

    binary = None
    capabilities = dict(base.Driver.capabilities, pause=True, nics=True,
                        volumes=True, userns=True, console=True)

    #: The self-check container's pids limit: room for the runtime's own
    #: threads where they count in the container's cgroup (runsc).
    selfcheck_pids = 16
    selfcheck_timeout = 30

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
                binds, pids=self.selfcheck_pids)
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(config, f)
            root = os.path.join(tmp, "state")
            args = [self._path, "--root", root] + self.global_flags()
            try:
                out = proc.run(args + ["run", "--bundle", tmp, cid],
                               timeout=self.selfcheck_timeout)
            except subprocess.TimeoutExpired:
                return "%s self-check container timed out (%d s)" % (
                    self.name, self.selfcheck_timeout)
            finally:
                proc.run(args + ["delete", "--force", cid], timeout=30)
                # runsc's delete leaves the cgroupfs driver's cgroup.
                self._remove_cgroup_rel(cgroups.relpath(
                    self.paths.cgroup_parent, "selfcheck-%d" % os.getpid(),
                    self.systemd))
            if out.returncode != 0:
                return "%s cannot run containers on this host: %s" % (
                    self.name, proc.last_line(out.stderr or out.stdout))
        return None

    # Paths

    @staticmethod
    def record_ids(root):
        """``{vmId: path}`` of the containers the runtime's ``--root``
        records: runc and crun keep a directory per container."""
        try:
            names = os.listdir(root)
        except OSError:
            return {}
        return {n: os.path.join(root, n) for n in names
                if os.path.isdir(os.path.join(root, n))}

    def records(self, vm_id):
        """The paths in ``--root`` that record container ``vm_id``."""
        return [os.path.join(self.root, vm_id)]

    def global_flags(self):
        """The runtime's global flags after ``--root`` (a subclass adds
        its own: runsc's platform)."""
        return ["--systemd-cgroup"] if self.systemd else []

    def _args(self):
        return [self._path, "--root", self.root] + self.global_flags()

    def _start_argv(self, bundle):
        """The ``start`` command line (runsc's differs for a container
        with NICs)."""
        return self._args() + ["start", bundle.vm_id]

    def cgroups_path_spec(self, vm_id):
        """``linux.cgroupsPath`` as the runtime's cgroup driver wants it."""
        if self.systemd:
            # slice:prefix:name -> <slice>/<prefix>-<name>.scope
            return "%s:vdsm-container:%s" % (self.paths.cgroup_parent, vm_id)
        return cgroups.relpath(self.paths.cgroup_parent, vm_id)

    def _cgroup_file(self, bundle):
        return os.path.join(bundle.dir, "cgroup")

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
        console.annotate(config, spec)
        bundle.write_config(config)
        return config

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
            self._before_start(bundle)
            out = proc.run(self._start_argv(bundle))
            if out.returncode != 0:
                raise errors.CannotCreateVM(
                    "%s start failed: %s"
                    % (self.name, proc.last_line(out.stderr)),
                    vmId=bundle.vm_id)
            console.start(bundle, files.read_pid(bundle.conmon_pid_file))
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

    def _before_start(self, bundle):
        """What the driver does between create and start, the container's
        cgroup made and nothing of it running yet: nothing for runc and
        crun, whose cgroup drivers apply the whole spec."""

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
        console.stop(bundle)
        out = proc.run(self._args() + ["delete", "--force", bundle.vm_id])
        if out.returncode != 0 and "not exist" not in out.stderr:
            log.warning("%s delete %s: %s", self.name, bundle.vm_id,
                        proc.last_line(out.stderr))
        for path in self.records(bundle.vm_id):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self._remove_cgroup(bundle)
        self._reap_conmon(bundle)
        self._stop_conmon_scope(bundle)
        if self.systemd:
            # A scope that failed (an OOM kill) stays loaded until reset.
            proc.run(["systemctl", "reset-failed", self._scope(bundle)],
                     timeout=30)

    def _remove_cgroup(self, bundle):
        """Kill what is left in the container's cgroup and remove it.

        The runtime does this on delete; doing it again covers a runtime
        that lost its state while the processes lived on.
        """
        self._remove_cgroup_rel(self.cgroup_path(bundle))

    def _remove_cgroup_rel(self, rel):
        dirs = self.hierarchy.dirs(rel)
        try:
            cgroups.empty_and_remove(dirs)
        except OSError as e:
            log.warning("Cannot remove cgroup %s: %s", dirs, e)


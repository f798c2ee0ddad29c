"""rkt: the runtime the feature page names first.

rkt was discontinued in 2020 and is in no distribution; the tests run this
driver against rkt 1.30 built from its last source (contrib/build-rkt,
tests/test_rkt_real.py), with stage1 host (the host's systemd-nspawn; how
the pod is placed and held to the VM's limits: ``rktpod``; its image:
``rktimage``), and against a scripted double (tests/doubles/rkt) for the
failures a real rkt can't be made to produce.

- Start: ``rkt [--insecure-options=image] --dir=D run --uuid-file-save=F
  --net=none --hostname=N [--set-env=K=V]... [--volume=...]... IMAGE
  [--memory=..] [--cpu=..] [--exec=CMD] [--mount ...]... [-- ARGS]``
  (Documentation/subcommands/run.md).  ``rkt run`` stays in the foreground
  for the pod's life (stage1 host execs nspawn in its place), so it runs
  supervised: as a transient service ``vdsm-container-<vmId>.service`` in
  ``vdsm-containers.slice`` where systemd is PID 1 (``systemd-run``, as
  rkt's documentation recommends), in a session and cgroup of its own
  elsewhere.  rkt writes the UUID file (no newline) once the pod is
  prepared, seconds after the call: the driver polls it, then ``rkt
  status`` until the pod runs or has exited with its app's status.
- Output: ``rkt run``'s stdout and stderr are the container's log: the
  pod's console (what the app writes, "[uptime] app[pid]: text") and
  rkt's own messages (``group "rkt" not found``, "networking: ...", why a
  run failed).  Kept together: with rkt's stderr in a file of its own,
  the app's output sometimes never reached the log (seen in 2 runs of
  test_rkt_real out of about 10, under load), so which stream nspawn
  gives the console on is not something to rely on.
- State and pid: ``rkt status UUID`` (key=value lines: ``state=running``,
  ``pid=`` nspawn's, ``exited=true`` and ``app-<name>=N`` once exited).  rkt
  writes no exit file: the status round watches the pod's pid (``watch``).
- Stop: ``rkt stop UUID`` (the pod's systemd stops the app with SIGTERM),
  then ``rkt stop --force UUID``.  Cleanup: ``rkt rm UUID`` once the pod's
  process ended, then ``rkt gc --grace-period=0s``.
- Images: an ACI on the image volume, or a ``docker://`` reference (rkt
  runs those only unsigned).  rkt verifies signatures against its trust
  store (``rkt trust``; ``--local-config`` from VDSM_CONTAINER_RKT_CONFIG);
  the admin allows unsigned images with ``containerInsecure=true``.
- Not supported: NICs on the VMs' bridges (rkt's networks are CNI configs of
  its own), pause, block I/O limits: refused before anything starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal as signals
import subprocess
import time

from vdsm_container import errors
from vdsm_container.linux import files
from vdsm_container.runtimes import base, proc, rktgc, rktimage, rktpod
from vdsm_container.runtimes import rktstatus
from vdsm_container.runtimes import watch as watches
from vdsm_container.stats import cgroups

log = logging.getLogger("vdsm_container.runtimes.rkt")

PROP_INSECURE = "containerInsecure"
# A bound for a hung ``rkt run`` (one that fails ends at once): the first
# pod of an rkt directory imports stage1 (47 MB) into rkt's store, which
# took over a minute in the qemu-emulated VM of ``make check-el9``.
START_TIMEOUT = 300.0


def _binary():
    return os.environ.get("VDSM_CONTAINER_RKT") or shutil.which("rkt")


class Driver(base.Driver):
    name = "rkt"
    binary = "rkt"
    capabilities = dict(base.Driver.capabilities, volumes=True, nics=False,
                        pause=False, rootfs=False)

    def __init__(self, paths, hierarchy=None):
        super().__init__(paths)
        self.root = paths.runtime_root(self.name)
        self._path = _binary() or self.binary
        self.hierarchy = hierarchy or cgroups.Hierarchy()

    @classmethod
    def probe(cls, paths):
        return rktpod.availability(cls.name, _binary())

    # Paths of one pod

    def _uuid_file(self, bundle):
        return os.path.join(bundle.dir, "rkt.uuid")

    def _uuid(self, bundle):
        try:
            with open(self._uuid_file(bundle)) as f:
                return f.read().strip() or None
        except OSError:
            return None

    def _global(self):
        argv = [self._path, "--dir=" + self.root]
        config = os.environ.get("VDSM_CONTAINER_RKT_CONFIG")
        if config:
            # rkt's trust store and settings, instead of /etc/rkt.
            argv.append("--local-config=" + config)
        return argv

    # Lifecycle

    def prepare(self, bundle, spec, image, mounts=(), netns=None,
                blkio=None, id_map=None):
        if netns or spec.nics:
            raise errors.UnsupportedOperation(
                "the rkt driver can't join the VMs' bridges", vmId=spec.vm_id)
        if blkio:
            raise errors.UnsupportedOperation(
                "rkt has no block I/O limits", vmId=spec.vm_id)
        custom = dict(spec.custom)
        insecure = custom.get(PROP_INSECURE, "").lower() == "true"
        target = self._image(bundle, spec, insecure)
        argv = self._global()
        if insecure:
            argv.append("--insecure-options=image")
        argv += ["run", "--uuid-file-save=" + self._uuid_file(bundle),
                 "--net=none", "--hostname=" + spec.name[:63]]
        argv += ["--set-env=%s=%s" % kv for kv in spec.env]
        app = [target, "--memory=%dM" % (spec.memory_kib // 1024),
               "--cpu=%dm" % (spec.vcpus * 1000),
               # Whose pod it is, for the orphan scan (rktgc.pods).
               "--user-annotation=%s=%s" % (rktgc.VM_ID_ANNOTATION,
                                            spec.vm_id)]
        for i, m in enumerate(mounts):
            name = "vol%d" % i
            argv.append("--volume=%s,kind=host,source=%s,readOnly=%s" % (
                name, m["source"], "true" if "ro" in m["options"] else
                "false"))
            app.append("--mount=volume=%s,target=%s" % (name,
                                                        m["destination"]))
        if spec.command:
            app.append("--exec=" + spec.command[0])
            if len(spec.command) > 1:
                app += ["--"] + list(spec.command[1:])
        argv += app
        with open(os.path.join(bundle.dir, "rkt-run.argv"), "w") as f:
            f.write("\0".join(argv))
        with open(os.path.join(bundle.dir, "rkt-limits.json"), "w") as f:
            json.dump(rktpod.limits(spec), f)
        return argv

    def _image(self, bundle, spec, insecure):
        if spec.image_ref and spec.image_ref.startswith("docker://"):
            if not insecure:
                raise errors.CannotCreateVM("rkt runs docker:// "
                                            "images only unsigned: set %s=true"
                                            % PROP_INSECURE, vmId=spec.vm_id)
            return spec.image_ref
        target = os.path.join(bundle.dir, "image.aci")
        signed = rktimage.copy_aci(spec.image_disk.path, target)
        if not signed and not insecure:
            raise errors.CannotCreateVM(
                "the image carries no signature (NAME.aci with NAME.aci.asc "
                "on its volume): rkt runs unsigned images only with %s=true"
                % PROP_INSECURE, vmId=spec.vm_id)
        return target

    def _unit(self, bundle):
        return "vdsm-container-%s.service" % bundle.vm_id

    def start(self, bundle):
        with open(os.path.join(bundle.dir, "rkt-run.argv")) as f:
            argv = f.read().split("\0")
        with open(os.path.join(bundle.dir, "rkt-limits.json")) as f:
            limit = tuple(json.load(f))
        systemd = proc.systemd_booted()
        env = dict(os.environ, PATH="%s:%s" % (
            rktpod.nspawn_dir(self.paths, systemd),
            os.environ.get("PATH", os.defpath)))
        rel = rktpod.cgroup_rel(self.paths, bundle.vm_id, systemd,
                                self._unit(bundle))
        os.makedirs(self.root, exist_ok=True)
        try:
            if systemd:
                argv = ["systemd-run", "--quiet", "--collect",
                        "--slice=%s" % self.paths.cgroup_parent,
                        "--unit=%s" % self._unit(bundle),
                        # stderr follows stdout (StandardError=inherit);
                        # "file:" is in EL8's systemd 239, "append:" is not.
                        "--property=StandardOutput=file:%s" % bundle.log_path,
                        ] + rktpod.unit_properties(
                            limit, self.hierarchy.version) + \
                    proc.unit_environment(env) + ["--"] + argv
            else:
                argv = rktpod.join_argv(
                    rktpod.make_scope(self.hierarchy, rel, limit), argv)
            with open(self._cgroup_file(bundle), "w") as f:
                f.write(rel)
            with open(bundle.log_path, "ab") as out:
                runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=out, env=env,
                                          stderr=subprocess.STDOUT,
                                          start_new_session=True)
        except OSError as e:
            self.cleanup(bundle)
            raise errors.CannotCreateVM("cannot start rkt: %s" % e,
                                        vmId=bundle.vm_id) from e
        with open(os.path.join(bundle.dir, "rkt.pid"), "w") as f:
            f.write(str(runner.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            # Asked first: rkt may write its UUID file and end between the
            # two looks, and then it did start.
            starting = self._starting(runner, bundle, systemd)
            if self._uuid(bundle):
                st = self.state(bundle)
                if st.status == base.RUNNING and st.pid:
                    self._check_limits(bundle, limit, st.pid)
                    return st.pid
                if st.status == base.STOPPED and st.exit_code is not None:
                    # Ran and ended before we looked: started all the same;
                    # refresh will find it Down with its status.
                    return st.pid or runner.pid
            if not starting:
                break
            time.sleep(0.05)
        detail = rktstatus.why_failed(bundle.log_path)
        self.cleanup(bundle)
        raise errors.CannotCreateVM("rkt run failed: %s" % detail,
                                    vmId=bundle.vm_id)

    def _check_limits(self, bundle, limit, pid):
        """Refuse a pod this host did not hold to the VM's limits
        (``rktpod.unapplied``), rather than run it unlimited."""
        missing = rktpod.unapplied(self.hierarchy, pid, limit)
        if missing:
            self.cleanup(bundle)
            raise errors.CannotCreateVM(
                "rkt could not apply the %s on this host"
                % " nor the ".join(missing), vmId=bundle.vm_id)

    def _starting(self, runner, bundle, systemd):
        """Whether ``rkt run`` may still write its UUID file: our child runs,
        or, under systemd-run (which returns once the unit started), the
        unit is still active."""
        if runner.poll() is None:
            return True
        if runner.returncode != 0 or not systemd:
            return False
        out = proc.run(["systemctl", "show", "--property=ActiveState",
                        "--value", self._unit(bundle)], timeout=30)
        return out.stdout.strip() in ("active", "activating")

    def state(self, bundle):
        uuid = self._uuid(bundle)
        if uuid is None:
            return base.RuntimeState(base.GONE)
        out = proc.run(self._global() + ["status", uuid], timeout=30)
        if out.returncode != 0:
            return base.RuntimeState(base.GONE)
        return rktstatus.runtime_state(rktstatus.parse_status(out.stdout))

    def watch(self, bundle, state):
        """rkt writes no exit file; the pod's process (``rkt status``'s
        pid) ends with the pod, so the status round follows that pid
        instead of running ``rkt status`` every 2 s."""
        return watches.Process(state.pid) if state.pid else None

    def stop(self, bundle, timeout):
        uuid = self._uuid(bundle)
        if uuid is None or self.state(bundle).status != base.RUNNING:
            return
        if timeout > 0:
            proc.run(self._global() + ["stop", uuid])
            if self._wait_stopped(bundle, timeout):
                return
        proc.run(self._global() + ["stop", "--force", uuid])
        if not self._wait_stopped(bundle, 10):
            raise errors.VMDestroyFailed("rkt pod still "
                                         "running after stop --force",
                                         vmId=bundle.vm_id)

    def _wait_stopped(self, bundle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(bundle).status != base.RUNNING:
                return True
            time.sleep(0.05)
        return False

    def kill(self, bundle, signal):
        st = self.state(bundle)
        if st.pid:
            try:
                os.kill(st.pid, signal)
            except ProcessLookupError:
                pass

    def _cgroup_file(self, bundle):
        return os.path.join(bundle.dir, "cgroup")

    def cgroup_path(self, bundle):
        """The cgroup the driver started the pod in, which holds all of
        it and its limits (``rktpod``)."""
        try:
            return files.read_text(self._cgroup_file(bundle)).strip() or None
        except OSError:
            return None

    def cleanup(self, bundle):
        uuid = self._uuid(bundle)
        removed = True
        if uuid is not None:
            st = self.state(bundle)
            if st.status == base.RUNNING:
                proc.run(self._global() + ["stop", "--force", uuid])
            # rkt reports a pod exited while its stage1 (nspawn, the
            # process rkt run became) still tears it down and holds its
            # lock; rm then fails and the pod's mounts stay: wait for it.
            if st.pid:
                pod = watches.Process(st.pid)
                deadline = time.monotonic() + 10
                while not pod.ended() and time.monotonic() < deadline:
                    time.sleep(0.05)
            removed = self._rm(uuid)
        proc.run(self._global() + ["gc", "--grace-period=0s"])
        self._reap_runner(bundle)
        if not removed:
            self._rm(uuid)
            proc.run(self._global() + ["gc", "--grace-period=0s"])
        rel = self.cgroup_path(bundle)
        if rel and not proc.systemd_booted():
            # First: what is left of the pod dies with it, and its mount
            # namespace, where stage1 mounted v1 hierarchies, goes.
            dirs = self.hierarchy.dirs(rel)
            try:
                cgroups.empty_and_remove(dirs)
            except OSError as e:
                log.warning("Cannot remove cgroup %s: %s", dirs, e)
        if uuid is not None:
            try:
                rktgc.remove_pod_cgroups(self.paths, uuid)
            except OSError as e:
                log.warning("rkt pod %s's cgroups: %s", uuid, e)

    def _rm(self, uuid):
        """``rkt rm``; True if the pod is gone."""
        out = proc.run(self._global() + ["rm", uuid])
        if out.returncode == 0 or "no matches found" in out.stderr:
            return True
        log.warning("rkt rm %s: %s", uuid, proc.last_line(out.stderr))
        return False

    def _reap_runner(self, bundle):
        """The ``rkt run`` process we started, if it is still around (under
        systemd: its unit)."""
        if proc.systemd_booted():
            proc.run(["systemctl", "stop", self._unit(bundle)], timeout=60)
            proc.run(["systemctl", "reset-failed", self._unit(bundle)],
                     timeout=30)
        pid = files.read_pid(os.path.join(bundle.dir, "rkt.pid"))
        if files.kill_if_ours(pid, bundle.vm_id, signals.SIGKILL):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

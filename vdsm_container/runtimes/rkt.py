"""rkt: the runtime the feature page names first.

rkt was discontinued in 2020 and can't be installed on current hosts; this
driver is written against rkt 1.30's documented command line
(Documentation/subcommands/{run,status,stop,rm,gc}.md) and tested against a
scripted double of it (tests/doubles/rkt), never against a real rkt.

- Start: ``rkt [--insecure-options=image] --dir=D run --uuid-file-save=F
  [--net=none] [--set-env=K=V]... [--volume=...]... IMAGE [--memory=..]
  [--cpu=..] [--exec=CMD] [--mount volume=..,target=..]... [-- ARGS]``.
  ``rkt run`` stays in the foreground for the pod's life, so it runs
  supervised: as a transient service ``vdsm-container-<vmId>.service`` in
  ``vdsm-containers.slice`` where systemd is PID 1 (``systemd-run``, as
  rkt's documentation recommends), in a session of its own elsewhere; the
  pod outlives the caller either way.  The unit gets the caller's
  environment and writes to the container's log, as the plain child does;
  systemd-run returns once the unit started, so the driver waits for rkt's
  UUID file, not for its own child.
- Started is a pod with a UUID that rkt reports running, or exited with
  its app's status: one that ran and ended before the driver looked is Up,
  then Down with that status, as a runc container is.
- State and pid: ``rkt status UUID`` (key=value lines; ``app-<name>=N`` is
  an app's exit status once ``exited=true``).  rkt writes no exit file: the
  status round watches the pod's pid instead (``watch``), and asks ``rkt
  status`` again once that process is gone.
- Stop: ``rkt stop UUID``, then ``rkt stop --force UUID``.
- Cleanup: ``rkt rm UUID``, then ``rkt gc --grace-period=0s``.
- Images: an ACI file on the image volume (copied up to the end of its tar,
  the volume's tail ignored); a ``containerImage`` of ``docker://...`` runs
  an image from a registry, which rkt accepts only unsigned.  rkt verifies
  image signatures; the admin allows unsigned images with the custom
  property ``containerInsecure=true``.
- Not supported: NICs on the VMs' bridges (rkt's networks are CNI configs of
  its own), pause.  Containers asking for them are refused before anything
  starts.
"""

from __future__ import annotations

import os
import shutil
import signal as signals
import subprocess
import tarfile
import time

from vdsm_container import errors
from vdsm_container import files
from vdsm_container.runtimes import base, proc
from vdsm_container.runtimes import watch as watches

PROP_INSECURE = "containerInsecure"
START_TIMEOUT = 60.0
EXITED_STATES = ("exited", "exited-garbage", "garbage", "deleting")


def _binary():
    return os.environ.get("VDSM_CONTAINER_RKT") or shutil.which("rkt")


def parse_status(text):
    """``rkt status`` key=value lines -> dict (app exit codes as ints)."""
    result = {"apps": {}}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            continue
        if key.startswith("app-"):
            try:
                result["apps"][key[4:]] = int(value)
            except ValueError:
                pass
        else:
            result[key] = value
    return result


class Driver(base.Driver):
    name = "rkt"
    binary = "rkt"
    capabilities = dict(base.Driver.capabilities, volumes=True, nics=False,
                        pause=False, rootfs=False)

    def __init__(self, paths):
        super().__init__(paths)
        self.root = paths.runtime_root(self.name)
        self._path = _binary() or self.binary

    @classmethod
    def probe(cls, paths):
        path = _binary()
        if path is None:
            return base.Availability(cls.name, False, "rkt not found in PATH "
                                     "(rkt was discontinued in 2020)")
        try:
            out = proc.run([path, "version"], timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return base.Availability(cls.name, False,
                                     "rkt version failed: %s" % e)
        if out.returncode != 0:
            return base.Availability(
                cls.name, False, "rkt version failed: %s" % proc.last_line(
                    out.stderr or out.stdout,
                    "exit status %d" % out.returncode))
        for line in out.stdout.splitlines():
            if line.startswith("rkt Version:"):
                return base.Availability(cls.name, True, "",
                                         line.split(":", 1)[1].strip())
        return base.Availability(cls.name, False, "rkt version printed no "
                                 "'rkt Version:' line")

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
        return [self._path, "--dir=" + self.root]

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
               "--cpu=%dm" % (spec.vcpus * 1000)]
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
        return argv

    def _image(self, bundle, spec, insecure):
        if spec.image_ref and spec.image_ref.startswith("docker://"):
            if not insecure:
                raise errors.CannotCreateVM("rkt runs docker:// "
                                            "images only unsigned: set %s=true"
                                            % PROP_INSECURE, vmId=spec.vm_id)
            return spec.image_ref
        target = os.path.join(bundle.dir, "image.aci")
        copy_tar(spec.image_disk.path, target)
        return target

    def _unit(self, bundle):
        return "vdsm-container-%s.service" % bundle.vm_id

    def start(self, bundle):
        with open(os.path.join(bundle.dir, "rkt-run.argv")) as f:
            argv = f.read().split("\0")
        systemd = proc.systemd_booted()
        if systemd:
            argv = ["systemd-run", "--quiet", "--collect",
                    "--slice=%s" % self.paths.cgroup_parent,
                    "--unit=%s" % self._unit(bundle),
                    # stderr follows stdout (StandardError=inherit);
                    # "file:" is in EL8's systemd 239, "append:" is not.
                    "--property=StandardOutput=file:%s" % bundle.log_path,
                    ] + proc.unit_environment() + ["--"] + argv
        os.makedirs(self.root, exist_ok=True)
        log = open(bundle.log_path, "ab")
        try:
            runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        finally:
            log.close()
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
                    return st.pid
                if st.status == base.STOPPED and st.exit_code is not None:
                    # Ran and ended before we looked: started all the same;
                    # refresh will find it Down with its status.
                    return st.pid or runner.pid
            if not starting:
                break
            time.sleep(0.02)
        detail = _tail(bundle.log_path)
        self.cleanup(bundle)
        raise errors.CannotCreateVM("rkt run failed: %s" % detail,
                                    vmId=bundle.vm_id)

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
        st = parse_status(out.stdout)
        try:
            pid = int(st.get("pid", "0"))
        except ValueError:
            pid = 0
        if st.get("exited") == "true" or st.get("state") in EXITED_STATES:
            codes = list(st["apps"].values())
            code = max(codes) if codes else None
            return base.RuntimeState(base.STOPPED, pid if pid > 0 else None,
                                     code)
        if st.get("state") == "running":
            return base.RuntimeState(base.RUNNING, pid)
        return base.RuntimeState(base.CREATING, pid if pid > 0 else None)

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

    def cgroup_path(self, bundle):
        """The pod's memory cgroup, read from its process."""
        st = self.state(bundle)
        if not st.pid:
            return None
        try:
            with open("/proc/%d/cgroup" % st.pid) as f:
                for line in f:
                    _, controllers, path = line.rstrip("\n").split(":", 2)
                    if "memory" in controllers.split(",") or controllers == "":
                        return path
        except OSError:
            pass
        return None

    def cleanup(self, bundle):
        uuid = self._uuid(bundle)
        if uuid is not None:
            if self.state(bundle).status == base.RUNNING:
                proc.run(self._global() + ["stop", "--force", uuid])
                self._wait_stopped(bundle, 10)
            # A pod rm can't remove is left to gc; one that is gone is fine.
            proc.run(self._global() + ["rm", uuid])
        proc.run(self._global() + ["gc", "--grace-period=0s"])
        self._reap_runner(bundle)

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


def copy_tar(src, dest):
    """Copy the tar archive at the start of volume ``src`` to ``dest``.

    Stops at the archive's end (the volume's tail may be garbage).
    """
    try:
        with open(src, "rb") as f, tarfile.open(fileobj=f, mode="r:") as t:
            for _ in t:
                pass
            end = t.offset
    except (OSError, tarfile.TarError) as e:
        raise errors.UnsupportedImageFormat(
            "not an ACI archive: %s" % e, image=src) from e
    with open(src, "rb") as f, open(dest, "wb") as out:
        left = end
        while left:
            chunk = f.read(min(left, 1024 * 1024))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
        out.write(b"\0" * 1024)


def _tail(path):
    """The last useful line of the pod's log (where rkt says why)."""
    try:
        with open(path, errors="replace") as f:
            return proc.last_line(f.read())
    except OSError:
        return proc.last_line("")

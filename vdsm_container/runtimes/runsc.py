"""runsc: gVisor, a user-space kernel between the container and the host.

For images an admin does not trust.  runsc takes runc's command line, so it
shares the OCI driver under conmon (``oci.OCIDriver``); what differs:

- Global flags: ``--platform`` (how the sandbox traps the application's
  system calls: ``kvm`` needs a usable /dev/kvm, ``ptrace`` works
  everywhere, slower), chosen by the probe, which runs the self-check
  container on each in turn and keeps the one that ran in the run dir;
  ``--network``: ``sandbox`` (runsc's own network stack over the network
  namespace the container joins) where there is one, else ``none``;
  ``--oci-seccomp``: the bundle's seccomp profile applies inside the
  sandbox too (runsc ignores it otherwise; its own filter guards the host
  from the Sentry).  ``--log``/``--log-format json`` as runc takes them.
- Its processes: a sandbox (the Sentry, with its ptrace stubs) and a gofer
  (file access) per container, all in the container's cgroup, so limits
  and stats cover them (the pids limit counts the Sentry's threads).
- NICs: its netstack takes over the namespace's addresses at ``start``
  (``runscnet``: how, and how a runsc with gVisor #10704 is run).
- What it can't do is in ``capabilities``, with ``why_not``: no user
  namespace.
- Where it differs from runc, the driver adapts: pause (the freezer is not
  used), its records in ``--root`` (files, not a directory), the cgroup
  its delete leaves.

Modelled on containerd's runsc shim options (``runsc --platform``,
``--root``), which Kubernetes' RuntimeClass ``gvisor`` selects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time

from vdsm_container import errors
from vdsm_container.linux import files, pidinfo
from vdsm_container.bundle import blockio
from vdsm_container.runtimes import base, oci, runscnet

_STATE = re.compile(r"^(.+)_sandbox:(.+)\.state$")

#: Platforms to try, the fastest first.
PLATFORMS = ("kvm", "ptrace")
KVM_TIMEOUT = 10


#: The KVM platform's self-check verdict, once per process (a /dev/kvm
#: that hangs the sandbox costs ``KVM_TIMEOUT`` each time).
_kvm_verdict = {}

#: ``runsc --version`` by binary path, once per process.
_versions = {}


def _kvm_reason():
    """Why the KVM platform can't work here, or None if it might."""
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return "/dev/kvm: %s" % e.strerror
    os.close(fd)
    return None


class Driver(oci.OCIDriver):
    name = "runsc"
    binary = "runsc"
    capabilities = dict(oci.OCIDriver.capabilities, userns=False)
    why_not = {
        "userns": ": gVisor's sandbox runs as its own user already; use "
                  "runsc without containerUserns",
    }

    #: Its own network stack holds the container's addresses, taken from
    #: the namespace at ``start`` (``host.netstack`` hands them over).
    owns_addresses = True

    #: The sandbox's and gofer's threads count in the container's pids
    #: limit (they live in its cgroup): the Go runtime starts a few dozen.
    selfcheck_pids = 256

    #: The platform the probe found working; the driver uses this one.
    platform = "ptrace"

    def __init__(self, paths, hierarchy=None, platform=None):
        super().__init__(paths, hierarchy)
        self.platform = platform or _platform_file_read(paths) or \
            self.platform

    def global_flags(self, network="none"):
        """``--network=sandbox`` (netstack over the NICs of the namespace
        the plugin prepared) for a container that has one; runsc makes no
        network namespace of its own (it would use the caller's, the
        host's, and refuses to: "cannot run with network enabled in root
        network namespace"), so ``none`` (loopback only) for the others
        and for every verb but create, where it means nothing."""
        return super().global_flags() + ["--platform", self.platform,
                                         "--network", network,
                                         "--oci-seccomp"]

    def _conmon_argv(self, bundle):
        argv = super()._conmon_argv(bundle)
        if runscnet.netns_path(bundle.config_path):
            i = argv.index("--network") + 2     # "--runtime-arg" between
            argv[i] = "sandbox"
        return argv

    # Per-device I/O limits where systemd is PID 1: runsc's systemd cgroup
    # driver (runsc/cgroup/cgroup_v2.go, io2.generateProperties and
    # systemd.go, addIOProps, unchanged up to gVisor's 2026 head) sends
    # IOReadBandwidthMax & co. as a "MAJ:MIN RATE" string where systemd's
    # D-Bus API takes an array of (path, rate): systemd refuses the whole
    # unit ("Failed to set unit properties: Unexpected message contents")
    # and the container never starts.  The driver takes them out of the
    # config and writes them to the scope's io.max itself before the
    # container starts, as libvirt writes a VM's <iotune> into its
    # delegated machine scope (vircgroupv2.c, virCgroupV2SetBlkioDevice*).

    def prepare(self, bundle, spec, image, mounts=(), netns=None,
                blkio=None, id_map=None):
        config = super().prepare(bundle, spec, image, mounts=mounts,
                                 netns=netns, blkio=blkio, id_map=id_map)
        if self.systemd and self.hierarchy.version == 2:
            lines = blockio.take_device_limits(config["linux"]["resources"])
            if lines:
                bundle.write_config(config)
                with open(self._io_max_file(bundle), "w") as f:
                    f.write("".join(line + "\n" for line in lines))
        return config

    def _io_max_file(self, bundle):
        return os.path.join(bundle.dir, "io.max")

    def _before_start(self, bundle):
        netns = runscnet.netns_path(bundle.config_path)
        if netns:
            runscnet.check_not_host(netns, bundle.vm_id)
        try:
            with open(self._io_max_file(bundle)) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return
        target = os.path.join(self.hierarchy.path(self.cgroup_path(bundle)),
                              "io.max")
        for line in lines:
            try:
                with open(target, "w") as f:
                    f.write(line)
            except OSError as e:
                raise errors.CannotCreateVM(
                    "runsc: cannot set the I/O limits %r in %s: %s"
                    % (line, target, e.strerror), vmId=bundle.vm_id) from e

    def _start_argv(self, bundle):
        """``--network=sandbox`` on ``start`` too: runsc 2022-12-19 copies
        the namespace's links into its netstack when it starts the root
        container (``Sandbox.StartRoot`` calls ``setupNetwork`` with the
        ``start`` command's flags), not at create; with ``none`` there the
        container saw only ``lo`` (runsc's debug log: "Network is disabled,
        create loopback interface only").  A runsc that would take every
        namespace for the host's starts without /proc/sys/net
        (``runscnet``)."""
        if not runscnet.netns_path(bundle.config_path):
            return super()._start_argv(bundle)
        argv = [self._path, "--root", self.root] + \
            self.global_flags(network="sandbox") + ["start", bundle.vm_id]
        if runscnet.old_root_check(self.version()):
            argv = runscnet.without_sysctl_net(argv)
        return argv

    def version(self):
        """``runsc --version``'s version, asked once per binary."""
        if self._path not in _versions:
            _versions[self._path] = oci._version(self._path)[0]
        return _versions[self._path]

    def cleanup(self, bundle):
        """The shared cleanup, then the end of the bundle's sandbox and
        gofer awaited (SIGKILL until gone, ``oci.KILL_WAIT`` at most):
        ``runsc delete`` can return while the gofer still holds the rootfs
        and volume mounts in its mount namespace, and a read-only volume's
        loop device then outlived destroy (1 run in 5, found by the volume
        tests' leak check)."""
        super().cleanup(bundle)
        deadline = time.monotonic() + oci.KILL_WAIT
        left = _processes_of(bundle.dir)
        while left and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
            left = _processes_of(bundle.dir)
        if left:
            oci.log.warning("runsc processes of %s still there: %s",
                            bundle.vm_id, sorted(left))

    # Its records: runsc keeps ``<id>_sandbox:<id>.state`` (and a
    # ``.lock``) in ``--root``, files, not runc's directory per container.

    @staticmethod
    def record_ids(root):
        found = {}
        try:
            names = os.listdir(root)
        except OSError:
            return found
        for name in names:
            m = _STATE.match(name)
            if m and m.group(1) == m.group(2):
                found[m.group(1)] = os.path.join(root, name)
        return found

    def _created(self, bundle):
        """runsc has no exec.fifo (ocistate's look): its state file, the
        container as JSON (runsc/container/container.go, Container.Status),
        says "created" until ``start``."""
        try:
            with open(_state_file(self.root, bundle.vm_id)) as f:
                return json.load(f).get("status") == base.CREATED
        except (OSError, ValueError, AttributeError):
            return False

    def records(self, vm_id):
        state = _state_file(self.root, vm_id)
        return [os.path.join(self.root, vm_id), state,
                state[:-len(".state")] + ".lock"]

    # Pause: runsc stops the sandbox's tasks itself (its Sentry), the
    # cgroup freezer stays THAWED, so the driver keeps the state it set.

    def _paused_file(self, bundle):
        return os.path.join(bundle.dir, "paused")

    def pause(self, bundle):
        super().pause(bundle)
        with open(self._paused_file(bundle), "w"):
            pass

    def resume(self, bundle):
        super().resume(bundle)
        try:
            os.unlink(self._paused_file(bundle))
        except FileNotFoundError:
            pass

    def _frozen(self, bundle):
        return os.path.exists(self._paused_file(bundle))

    def gofer_pid(self, bundle):
        """The gofer's pid (conmon's other child): the one process on the
        host whose root is the container's root filesystem (the sandbox's
        is not), or None."""
        conmon_pid = files.read_pid(bundle.conmon_pid_file)
        if not conmon_pid:
            return None
        try:
            children = files.read_text("/proc/%d/task/%d/children" % (
                conmon_pid, conmon_pid)).split()
        except OSError:
            return None
        for child in children:
            try:
                cmd = files.read_text("/proc/%s/cmdline" % child)
            except OSError:
                continue
            if cmd.startswith("runsc-gofer"):
                return int(child)
        return None

    @classmethod
    def probe(cls, paths):
        path = shutil.which(cls.binary)
        if path is None:
            return base.Availability(cls.name, False,
                                     "runsc not found in PATH")
        if shutil.which("conmon") is None:
            return base.Availability(cls.name, False,
                                     "conmon not found in PATH")
        version, err = oci._version(path)
        if version is None:
            return base.Availability(cls.name, False,
                                     "runsc --version failed: %s" % err)
        reasons = []
        for platform in PLATFORMS:
            why = _kvm_reason() if platform == "kvm" else None
            if why is None and platform == "kvm":
                if "kvm" not in _kvm_verdict:
                    # A /dev/kvm that opens but can't run the sandbox (a
                    # nested or PVM one) hangs it rather than failing.
                    driver = cls(paths, platform=platform)
                    driver.selfcheck_timeout = KVM_TIMEOUT
                    _kvm_verdict["kvm"] = driver.self_check()
                why = _kvm_verdict["kvm"]
            elif why is None:
                why = cls(paths, platform=platform).self_check()
            if why is None:
                _platform_file_write(paths, platform)
                note = "; ".join(reasons)
                return base.Availability(
                    cls.name, True,
                    "platform %s%s" % (platform,
                                       " (%s)" % note if note else ""),
                    version)
            reasons.append("%s: %s" % (platform, why))
        return base.Availability(cls.name, False, "; ".join(reasons),
                                 version)


def recorded(root, vm_id):
    """True if runsc's ``--root`` records container ``vm_id``."""
    return os.path.exists(_state_file(root, vm_id))


def _state_file(root, vm_id):
    """runsc's record of root container ``vm_id`` (its sandbox's id is
    the container's)."""
    return os.path.join(root, "%s_sandbox:%s.state" % (vm_id, vm_id))


def _platform_file(paths):
    return os.path.join(paths.run_dir, "runsc-platform")


def _platform_file_read(paths):
    try:
        with open(_platform_file(paths)) as f:
            value = f.read().strip()
    except OSError:
        return None
    return value if value in PLATFORMS else None


def recorded_platform(paths):
    """The platform the last probe kept (``probecache`` stores it)."""
    return _platform_file_read(paths)


def restore_platform(paths, platform):
    """Put back the platform a cached probe found, when the run dir lost
    it (``probecache``: the verdict outlives the tmpfs)."""
    if platform in PLATFORMS and _platform_file_read(paths) is None:
        _platform_file_write(paths, platform)


def _platform_file_write(paths, platform):
    os.makedirs(paths.run_dir, mode=0o700, exist_ok=True)
    tmp = _platform_file(paths) + ".tmp"
    with open(tmp, "w") as f:
        f.write(platform + "\n")
    os.replace(tmp, _platform_file(paths))


def _processes_of(bundle_dir):
    """Pids of the runsc sandbox and gofer serving the bundle at
    ``bundle_dir`` (their command lines name it)."""
    needle = bundle_dir.encode()
    return {pid for pid, argv in pidinfo.argvs()
            if argv[0] in (b"runsc-gofer", b"runsc-sandbox") and any(
                a == needle or a.endswith(b"=" + needle) for a in argv)}

"""The baseline timer: the bare runtime starting the plugin's own bundle.

Every create->Up figure the benches report (``bench.py``, ``scale.py``)
stands beside what the bare runtime takes for the same work on the same
host in the same run: ``runc run -d``, and conmon + ``runc start`` (the
supervised start the plugin does), of one busybox bundle with the
config.json the plugin would write.  One timer for both benches, so that
their baselines are the same measurement.  Numbers, never assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from vdsm_container.bundle import ocispec
from vdsm_container.bundle.layout import Bundle
from vdsm_container.image.cache import Cache
from vdsm_container.runtimes import runc
from vdsm_container.spec import domxml


class Bare:
    """One overlay bundle of ``image`` below ``paths``, reused by every
    run (a fresh config.json each: the cgroup path names the container)."""

    def __init__(self, paths, image, command):
        self.paths = paths
        self.command = list(command)
        self.image = Cache(paths.image_cache).get(image)
        self.bundle = Bundle(paths, "bare-" + uuid.uuid4().hex[:8])
        self.bundle.create_dirs()
        self.bundle.mount_rootfs(self.image.rootfs)
        self.driver = runc.Driver(paths)

    def _config(self, cid):
        spec = domxml.parse(domxml.build(
            "00000000-0000-4000-8000-000000000000", "bare", "runc", "/x",
            command=self.command))
        self.bundle.write_config(ocispec.build(
            spec, self.image, self.bundle.rootfs,
            self.driver.cgroups_path_spec(cid)))

    def _root(self, name):
        return os.path.join(self.paths.run_dir, name)

    def runc_run(self, runs):
        """Seconds of ``runc run -d``, one per run."""
        root = self._root("bare-runc")
        times = []
        for i in range(runs):
            cid = "bare-%d-%s" % (i, uuid.uuid4().hex[:6])
            self._config(cid)
            t0 = time.perf_counter()
            subprocess.run(["runc", "--root", root, "run", "-d", "--bundle",
                            self.bundle.dir, cid], check=True,
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
            subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                           check=True)
        return times

    def conmon_runc(self, runs):
        """Seconds of conmon creating the container and ``runc start``,
        one per run: the plugin's own start, without the plugin."""
        root = self._root("bare-conmon")
        times = []
        for i in range(runs):
            cid = "bare-%d-%s" % (i, uuid.uuid4().hex[:6])
            self._config(cid)
            exits = tempfile.mkdtemp(dir=self.paths.run_dir)
            r, w = os.pipe()
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                ["conmon", "--api-version", "1", "-c", cid, "-u", cid,
                 "-n", cid, "-r", shutil.which("runc"),
                 "-b", self.bundle.dir, "-p", os.path.join(exits, "pid"),
                 "-l", "k8s-file:" + os.path.join(exits, "log"),
                 "--exit-dir", exits, "--socket-dir-path", exits,
                 "--runtime-arg", "--root", "--runtime-arg", root],
                pass_fds=(w,), env=dict(os.environ, _OCI_SYNCPIPE=str(w)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            os.close(w)
            with os.fdopen(r) as f:
                json.loads(f.readline())
            proc.wait()
            subprocess.run(["runc", "--root", root, "start", cid],
                           check=True)
            times.append(time.perf_counter() - t0)
            subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                           check=True)
            shutil.rmtree(exits, ignore_errors=True)
        return times

    def close(self):
        self.bundle.teardown()

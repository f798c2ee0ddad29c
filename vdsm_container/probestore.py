"""The runtimes' kept verdicts: their file and their key.

``runtimes.probecache`` probes and keeps what it found here; ``markhost``
(the drop-in's ExecStartPre, before vdsmd starts) only reads, so this
module imports no driver: a vdsmd restart pays Python's start and this,
not the drivers' imports.  See ``probecache`` for what the key is for.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import vdsm_container

log = logging.getLogger("vdsm_container.runtimes.probecache")

#: ``runtimes.names()``, in its order (tests/test_probe.py checks).
NAMES = ("runc", "crun", "rkt", "runsc")

CACHE_NAME = "probes.json"
FORMAT = 1

#: What each runtime's probe runs besides the runtime itself.
HELPERS = {"runc": ("conmon",), "crun": ("conmon",), "runsc": ("conmon",),
           "rkt": ("systemd-nspawn",)}

BOOT_ID = "/proc/sys/kernel/random/boot_id"


def cache_path(paths):
    return os.path.join(paths.storage_dir, CACHE_NAME)


def _stat(path):
    """[path, size, mtime_ns, inode] of ``path``, or None if absent."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [path, st.st_size, st.st_mtime_ns, st.st_ino]


def boot_id(path=BOOT_ID):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def kernel_release():
    return os.uname().release


def key(name, paths):
    """What runtime ``name``'s verdict depends on, as JSON-able values."""
    return {
        "plugin": vdsm_container.__version__,
        "kernel": kernel_release(),
        "bootId": boot_id(),
        "binary": _stat(program(name)),
        "helpers": {h: _stat(shutil.which(h)) for h in HELPERS.get(name, ())},
        "paths": [paths.run_dir, paths.cgroup_parent],
    }


def load(paths):
    """``{name: entry}`` from the cache file; {} if absent or unreadable."""
    try:
        with open(cache_path(paths)) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("Ignoring the probe cache %s: %s", cache_path(paths), e)
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    entries = data.get("runtimes")
    return entries if isinstance(entries, dict) else {}


def save(paths, entries):
    path = cache_path(paths)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".probes-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "runtimes": entries}, f,
                      indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def program(name):
    """``runtimes.program``: the path of runtime ``name``'s program, None
    if it has none here; rkt's is VDSM_CONTAINER_RKT when set (rkt.py
    ``_binary``), the others' are on PATH by their name."""
    if name == "rkt":
        return os.environ.get("VDSM_CONTAINER_RKT") or shutil.which("rkt")
    return shutil.which(name)

"""What rkt says of a pod: ``rkt status``'s lines, read into the
driver's ``RuntimeState``, and why a ``rkt run`` failed."""

from __future__ import annotations

from vdsm_container.runtimes import base, proc

EXITED_STATES = ("exited", "exited-garbage", "garbage", "deleting")


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


def runtime_state(st):
    """``parse_status``'s dict -> ``base.RuntimeState``: an exited pod
    carries its app's status (the highest, for a pod of several apps)."""
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


def why_failed(path):
    """The last useful line of the pod's log, where rkt says why its run
    failed."""
    try:
        with open(path, errors="replace") as f:
            return proc.last_line(f.read())
    except OSError:
        return proc.last_line("")

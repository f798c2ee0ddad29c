"""Engine's own classes, run from the tests: one JVM per test session.

tests/engine/java/build compiles Engine's classes from the ovirt-engine
source snapshot (../shared/vendor/ovirt-engine, master 0111fc63) with the
harness tests/engine/java/harness (vdsmc.Harness), cached outside the
checkout; this module starts that JVM once per process (a pytest session,
in-process or live) and sends it JSON-lines requests.  Stdlib only: the
live suite runs it under Debian's /usr/bin/python3, outside the venv.

Without a JDK or the jars the build says what is missing; the tests then
fail with that message (``make system-deps`` installs them), never skip.
"""

import json
import os
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "java", "build")

_lock = threading.Lock()
_jvm = None


class EngineJavaMissing(RuntimeError):
    """No JDK, jars or Engine snapshot: what the build printed."""


class EngineError(RuntimeError):
    """Engine's code threw on what it was given (the Java exception)."""

    def __init__(self, error, trace, log):
        super().__init__(error)
        self.error = error
        self.trace = trace
        self.log = log


class Jvm:
    """The harness's JVM: requests in, answers out, in order."""

    def __init__(self):
        build = subprocess.run([BUILD, "--classpath"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               universal_newlines=True)
        if build.returncode != 0:
            raise EngineJavaMissing(
                "Engine's classes cannot be built (tests/engine/java/build"
                " exit %d): %s" % (build.returncode, build.stderr.strip()))
        classpath = build.stdout.strip().splitlines()[-1]
        # C1 only and a small heap: each request is short, the JVM's
        # start is what costs (about 0.5 s).
        self.proc = subprocess.Popen(
            ["java", "-XX:TieredStopAtLevel=1", "-Xss4m", "-Xmx256m",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
             "-cp", classpath, "vdsmc.Harness"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            universal_newlines=True, bufsize=1)

    def call(self, cmd, **args):
        """Send one request; the answer's (result, Engine's log lines).
        Raises EngineError if Engine's code threw."""
        args["cmd"] = cmd
        with _lock:
            self.proc.stdin.write(json.dumps(args) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Engine harness JVM died (exit %s)"
                               % self.proc.poll())
        answer = json.loads(line)
        if not answer["ok"]:
            raise EngineError(answer["error"], answer["trace"], answer["log"])
        return answer["result"], answer["log"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def jvm():
    """The process's harness JVM, started on first use."""
    global _jvm
    with _lock:
        if _jvm is None:
            _jvm = Jvm()
        return _jvm


def shutdown():
    global _jvm
    with _lock:
        if _jvm is not None:
            _jvm.close()
            _jvm = None

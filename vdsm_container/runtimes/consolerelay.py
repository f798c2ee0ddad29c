"""The relay behind one container's serial console (a process of its own).

Engine's ovirt-vmconsole-host-shell connects an AF_UNIX SOCK_STREAM socket
and copies raw bytes (its socketproxy.py); conmon offers a container's
terminal on its attach socket, SOCK_SEQPACKET, each message prefixed with
one byte naming the stream.  This process listens on the path Engine named
and turns one into the other.  One small process per console, out of vdsmd
and supervdsmd (it joins conmon's cgroup, the scope of its own that outlives
a vdsmd or supervdsmd restart), ending when conmon ends: no thread in vdsmd,
nothing to tell when vdsmd goes away.

A serial line, not a session:

- the container's output never waits for a reader: conmon writes each
  attached client with a blocking write, so this relay always reads it at
  once and drops what its client can't take now (an overrun, as on a real
  line); conmon writes all of it to the container's log anyway;
- one client at a time: a second one gets a line saying the console is in
  use, and is closed; the first one keeps the line;
- a client that goes away leaves the terminal as it was, for the next one
  (the attach connection stays open: conmon closes the container's input
  only when it was run with ``--stdin`` and its last holder leaves).

Only the standard library (its C modules where it can), run as ``python3
-I -S`` on this file: it loads nothing of the package, which keeps its
memory small (docs/admin-guide.rst, "Serial console").
"""

import os
import select
import sys

# The C modules: ``socket`` and ``signal`` wrap them in enums, which cost
# each relay about a megabyte (docs/admin-guide.rst, "Serial console").
import _signal as signal
import _socket as socket

BUSY = b"\r\nvdsm-container: the console of VM %s is in use by another " \
    b"client\r\n"
# conmon's attach messages: one byte naming the stream, then the data.
OUTPUT_STREAMS = (2, 3)
CHUNK = 4096


def _listen(path, gid, mode):
    """Listen on ``path`` with its owner, group and mode set before anyone
    can connect: bound under a temporary name, then renamed into place
    (replacing a socket a dead relay left)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not (st.st_mode & 0o170000 == 0o140000):
        raise RuntimeError("%s exists and is not a socket" % path)
    tmp = os.path.join(os.path.dirname(path),
                       ".%s.%d" % (os.path.basename(path), os.getpid()))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(tmp)
        os.chown(tmp, 0, gid if gid >= 0 else 0)
        os.chmod(tmp, mode)
        sock.listen(4)
        os.rename(tmp, path)
    except BaseException:
        sock.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sock.setblocking(False)
    return sock, os.stat(path).st_ino


def _join_cgroup(pid):
    """Move this process into ``pid``'s cgroup (conmon's scope): out of
    the caller's (supervdsmd's unit, whose restart kills what is in it)."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    for line in lines:
        hid, controllers, rel = line.split(":", 2)
        if hid == "0" and unified:
            base = "/sys/fs/cgroup"
        elif hid == "0":
            base = "/sys/fs/cgroup/unified"
        elif controllers == "name=systemd":
            base = "/sys/fs/cgroup/systemd"
        else:
            continue
        try:
            with open(os.path.join(base + rel, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass


class Relay:

    def __init__(self, listener, bundle, vm_id):
        self.listener = listener
        self.bundle = bundle
        self.vm_id = vm_id
        self.client = None
        self.attach = None
        self.pending = b""      # client input conmon has not taken yet

    def _connect_attach(self):
        """conmon's attach socket, through the bundle directory's fd (its
        path may be longer than a socket address takes)."""
        fd = os.open(self.bundle, os.O_PATH | os.O_DIRECTORY)
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                s.connect("/proc/self/fd/%d/attach" % fd)
            except OSError:
                s.close()
                raise
        finally:
            os.close(fd)
        s.setblocking(False)
        return s

    def accept(self):
        try:
            fd, _ = self.listener._accept()
        except BlockingIOError:
            return
        conn = socket.socket(fileno=fd)
        self.settle()
        if self.client is not None:
            try:
                conn.send(BUSY % self.vm_id.encode())
            except OSError:
                pass
            conn.close()
            return
        if self.attach is None:
            try:
                self.attach = self._connect_attach()
            except OSError as e:
                try:
                    conn.send(b"\r\nvdsm-container: console unavailable: "
                              b"%s\r\n" % str(e).encode())
                except OSError:
                    pass
                conn.close()
                return
        conn.setblocking(False)
        self.client = conn
        self.pending = b""

    def settle(self):
        """Take in what the client sent before a new one came, its end of
        file included: a client that just left must not hold the line
        against the next."""
        for _ in range(64):
            if self.client is None or self.pending:
                return
            poll = select.poll()
            poll.register(self.client, select.POLLIN)
            if not poll.poll(0):
                return
            self.from_client()

    def drop_client(self):
        if self.client is not None:
            self.client.close()
            self.client = None
        self.pending = b""

    def from_conmon(self):
        try:
            msg = self.attach.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            msg = b""
        if not msg:
            # conmon closed it (the container ended): conmon's exit ends us.
            self.attach.close()
            self.attach = None
            self.drop_client()
            return
        if self.client is None or msg[0] not in OUTPUT_STREAMS:
            return
        try:
            self.client.send(msg[1:])
        except BlockingIOError:
            pass    # an overrun: the client reads slower than the line
        except OSError:
            self.drop_client()

    def from_client(self):
        try:
            data = self.client.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_client()
            return
        self.pending += data
        self.to_conmon()

    def to_conmon(self):
        while self.pending:
            try:
                sent = self.attach.send(self.pending[:CHUNK])
            except BlockingIOError:
                return
            except OSError:
                self.pending = b""
                return
            self.pending = self.pending[sent:]

    def run(self, pidfd):
        while True:
            poll = select.poll()
            poll.register(pidfd, select.POLLIN)
            poll.register(self.listener, select.POLLIN)
            if self.attach is not None:
                poll.register(self.attach, select.POLLIN |
                              (select.POLLOUT if self.pending else 0))
            if self.client is not None and not self.pending:
                poll.register(self.client, select.POLLIN)
            for fd, ev in poll.poll():
                if fd == pidfd:
                    return
                if fd == self.listener.fileno():
                    self.accept()
                elif self.attach is not None and \
                        fd == self.attach.fileno():
                    if ev & select.POLLOUT:
                        self.to_conmon()
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        self.from_conmon()
                elif self.client is not None and \
                        fd == self.client.fileno():
                    self.from_client()


def _remove(path, ino):
    """Remove the socket if it is still ours (a newer relay may have
    replaced it)."""
    try:
        if os.lstat(path).st_ino == ino:
            os.unlink(path)
    except OSError:
        pass


class Args:
    """``--name value`` pairs, as ``runtimes.console`` passes them (no
    argparse: it would add most of a megabyte to every relay)."""

    def __init__(self, argv):
        given = dict(zip(argv[::2], argv[1::2]))
        self.socket = given["--socket"]
        self.bundle = given["--bundle"]
        self.vm_id = given["--vm-id"]
        self.conmon_pid = int(given["--conmon-pid"])
        self.pid_file = given["--pid-file"]
        self.gid = int(given.get("--gid", -1))
        self.mode = int(given.get("--mode", "660"), 8)


def main(argv=None):
    out = sys.stdout
    try:
        args = Args(sys.argv[1:] if argv is None else argv)
        pidfd = os.pidfd_open(args.conmon_pid)
        listener, ino = _listen(args.socket, args.gid, args.mode)
    except Exception as e:
        out.write("error: %s\n" % (e if not isinstance(e, KeyError)
                                    else "missing %s" % e))
        return 1
    if os.fork():
        os._exit(0)     # the caller waits for this one; the relay lives on
    os.setsid()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    _join_cgroup(args.conmon_pid)
    try:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pid_file + ".tmp", args.pid_file)
        out.write("ready %d\n" % os.getpid())
        out.flush()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        Relay(listener, args.bundle, args.vm_id).run(pidfd)
    finally:
        _remove(args.socket, ino)
        try:
            os.unlink(args.pid_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

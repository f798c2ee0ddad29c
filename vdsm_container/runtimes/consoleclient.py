"""``vdsm-container console VMID``: the serial console from the host's shell.

For admins without Engine: the same socket ovirt-vmconsole-host-shell
connects to (``runtimes.console``), the same raw bytes both ways (its
socketproxy.py), with the terminal in raw mode; ``^]`` detaches, as in
``virsh console``, and leaves the container running.  The console takes
one client at a time: while Engine's user holds it this gets the line
saying it is in use, and ends.
"""

from __future__ import annotations

import os
import select
import socket
import termios
import tty

ESCAPE = b"\x1d"        # ^]
BANNER = "Connected to the console of VM %s.  Escape character is ^]\r\n"


def attach(path, vm_id, stdin=0, stdout=1, stderr=2):
    """Copy ``stdin`` to the console at ``path`` and its output to
    ``stdout`` until ^] is typed, the console closes, or stdin ends.
    Returns "detached", "closed" or "eof"."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    try:
        saved = termios.tcgetattr(stdin)
    except termios.error:
        saved = None        # not a terminal: bytes as they come
    try:
        if saved is not None:
            tty.setraw(stdin)
        os.write(stderr, (BANNER % vm_id).encode())
        return _copy(sock, stdin, stdout)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)
        sock.close()
        os.write(stderr, b"\r\n")


def _copy(sock, stdin, stdout):
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    poll.register(sock, select.POLLIN)
    while True:
        for fd, _ in poll.poll():
            if fd == stdin:
                data = os.read(stdin, 4096)
                if not data:
                    return "eof"
                head, escape, _ = data.partition(ESCAPE)
                if head:
                    sock.sendall(head)
                if escape:
                    return "detached"
            else:
                data = sock.recv(4096)
                if not data:
                    return "closed"
                while data:
                    data = data[os.write(stdout, data):]

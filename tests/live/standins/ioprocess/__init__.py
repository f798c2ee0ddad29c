"""Stand-in for ioprocess (no Debian package): vdsm's out-of-process file
I/O, used only by storage domains (lib/vdsm/storage/outOfProcess.py).  The
live tests run with ``irs_enable = false``; any use raises."""


class Timeout(Exception):
    pass


class IOProcess:

    def __init__(self, *args, **kwargs):
        raise RuntimeError("ioprocess stand-in: storage is not set up on "
                           "the live test host")

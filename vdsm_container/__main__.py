"""The ``vdsm-container`` command's entry point (and ``python -m
vdsm_container``).

``mark-host`` runs before every vdsmd start (the drop-in's ExecStartPre):
it goes to ``vdsm.markhost``, which imports no runtime driver and no
container code; every other command to ``cli``, which imports them all.
"""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mark-host"]:
        from vdsm_container.vdsm import markhost
        return markhost.main(argv[1:])
    from vdsm_container import cli
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

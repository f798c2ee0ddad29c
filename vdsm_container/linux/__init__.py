"""The host's primitives, below everything that orchestrates them.

Files replaced atomically and small reads (``files``), what /proc says of a
process (``pidinfo``), mounts (``mounts``) and loop devices (``loop``):
``bundle/``, ``runtimes/``, ``stats/`` and ``host/`` use them, and they
use nothing of the package but ``errors``.
"""

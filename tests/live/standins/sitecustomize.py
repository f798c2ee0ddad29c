"""Stand-in for the kernel's bonding driver, which this kernel lacks.

vdsm lists bonds by reading /sys/class/net/bonding_masters
(lib/vdsm/network/link/bond/sysfs_driver.py ``BondSysFS.bonds``), a file
the bonding module creates; Host.getCapabilities fails without it.  As
sysfs can't be written to, vdsm's daemons (whose PYTHONPATH starts here,
so Python imports this module at start-up) read an empty stand-in file
instead: a host with no bonds.  Nothing else is changed.
"""

import importlib.abc
import importlib.machinery
import os
import sys

_MODULE = "vdsm.network.link.bond.sysfs_driver"
_REAL = "/sys/class/net/bonding_masters"
STANDIN = "/var/run/vdsm/bonding_masters.standin"


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, name, path, target=None):
        if name != _MODULE or os.path.exists(_REAL):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            module.BONDING_MASTERS = STANDIN
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())

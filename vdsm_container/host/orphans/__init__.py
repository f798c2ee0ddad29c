"""What containers left on the host with no record: found by name, reaped.

A VM's record is its run directory (``records.py``).  When it is gone while
the container's parts live on (``rm -rf`` of it, a crash of the tooling), or
when the host rebooted (the run directory is tmpfs; the writable layers on
disk stay), the parts are still findable, because every one is named after
the vmId below this tree's own roots (``naming``):

- runtime containers: ``<run_dir>/runtime/<runtime>/<vmId>`` (runc's and
  crun's ``--root``); rkt's pods in ``<run_dir>/runtime/rkt``, by the vmId
  the driver annotates each with;
- processes whose command line names ``<run_dir>/vms/<vmId>`` or
  ``<storage_dir>/vms/<vmId>`` (conmon, udhcpc);
- cgroups ``<cgroup_parent>/vdsm-container[-conmon]-<vmId>.scope``;
- mounts below ``<storage_dir>/vms/<vmId>/`` (overlay, the writable
  layer's filesystem, volumes) and loop devices backed by files there;
- network namespaces named ``host.network.netns_prefix(paths)`` + ... that
  no record's network.json names (their veths go with them);
- storage directories ``<storage_dir>/vms/<vmId>``.

An orphan is such a part whose vmId has no run directory.  ``find`` lists
the parts first (``scan``) and reads the records after (``classify``): a
create claims its run directory before it makes anything, so a part of a
create under way is never taken for an orphan.  ``reap`` (``removal``) claims
the vmId itself (its run directory) while it removes the vmId's parts, so
no create of that vmId runs meanwhile.  Nothing outside this tree is looked
at: another tree (another run directory, a test) has other roots and
another netns prefix.

The modules, one job each: ``naming`` (how a part's name gives its vmId),
``scan`` (listing the parts of each kind), ``classify`` (which parts are
orphans, which still run), ``removal`` (removing them).  Callers use this
package's names only.
"""

from vdsm_container.host.orphans.classify import (  # noqa: F401
    by_vm, find, leftovers_possible, live)
from vdsm_container.host.orphans.naming import (  # noqa: F401
    KINDS, known_vm_ids)
from vdsm_container.host.orphans.removal import reap  # noqa: F401

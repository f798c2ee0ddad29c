"""The container verbs supervdsmd exposes to vdsmd (root side).

supervdsmd imports every module of the ``vdsm.supervdsm_api`` package and
exposes the functions marked with ``@expose`` (lib/vdsm/supervdsm_server.py,
``main``; lib/vdsm/supervdsm_api/__init__.py ``expose``).  The package
installs contrib/vdsm/supervdsm_api_vdsm_container.py there as
``vdsm_container.py``; it imports this module, so these two functions
become ``supervdsm.getProxy().vdsm_container_create`` and
``vdsm_container_call``.
"""

from vdsm.supervdsm_api import expose

from vdsm_container.vdsm import privileged


@expose
def vdsm_container_create(xml, paths_dict=None):
    return privileged.create(xml, paths_dict)


@expose
def vdsm_container_call(vm_id, verb, args=(), kwargs=None, paths_dict=None):
    return privileged.call(vm_id, verb, args, kwargs, paths_dict)

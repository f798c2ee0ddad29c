"""Where container VMs run: the hosts that can run containers.

Engine's API does not show vdsm's capabilities and no
scheduling filter reads ``additionalFeatures``.  vdsm-container puts the
marker ``container_capable/50_vdsm_container`` in vdsm's hooks directory on
hosts that can run containers (vdsm_container/vdsm/hostmark.py); vdsm
reports it with the host's hooks and Engine lists it under
``/hosts/{id}/hooks``.  ``sync-hosts`` keeps the affinity label
``container-capable`` on exactly those hosts.  A label alone steers
nothing on cluster levels >= 4.4: Engine made implicit label groups
(FeatureSupported.isImplicitAffinityGroupSupported, true below 4.4 only)
give way to affinity groups.  So ``sync-hosts`` and ``create`` keep, in
each cluster, the affinity group ``container-capable``: an enforcing,
positive hosts rule whose hosts are the label's (the group's host labels)
and whose VMs are the cluster's container VMs (AffinityGroupService's
host_labels_service and vms_service).
"""

from ovirtsdk4 import types

# vdsm_container/vdsm/hostmark.py: a directory vdsm's hooks.installed()
# lists but no vdsm event runs.
HOOK_EVENT = "container_capable"
HOOK_NAME = "50_vdsm_container"
LABEL = "container-capable"
GROUP = "container-capable"


def container_hosts(system):
    """Hosts whose hooks include vdsm-container's marker."""
    hosts_service = system.hosts_service()
    capable = []
    for host in hosts_service.list():
        hooks = hosts_service.host_service(host.id).hooks_service().list()
        if any(h.event_name == HOOK_EVENT and h.name == HOOK_NAME
               for h in hooks):
            capable.append(host)
    return capable


def label_service(system):
    """(id, service) of the affinity label, created when missing."""
    labels = system.affinity_labels_service()
    label = next((lb for lb in labels.list() if lb.name == LABEL), None)
    if label is None:
        label = labels.add(types.AffinityLabel(name=LABEL))
    return label.id, labels.label_service(label.id)


HOSTS_RULE = dict(enabled=True, enforcing=True, positive=True)


def _rule_holds(rule):
    return rule is not None and all(getattr(rule, k) is v
                                    for k, v in HOSTS_RULE.items())


def group_service(system, cluster_id, label_id):
    """The cluster's ``container-capable`` affinity group, kept right.

    Its hosts rule is enabled, enforcing and positive: a member VM runs
    only on a host of the group (Engine's VmToHostAffinityFilterPolicyUnit);
    the hosts are those carrying the label (host_labels); the VMs rule is
    off: container VMs need not run together.
    """
    groups = system.clusters_service().cluster_service(
        cluster_id).affinity_groups_service()
    group = next((g for g in groups.list() if g.name == GROUP), None)
    if group is None:
        group = groups.add(types.AffinityGroup(
            name=GROUP,
            description="vdsm-container: container VMs run only on hosts "
            "labelled %s (ovirt-container sync-hosts)" % LABEL,
            hosts_rule=types.AffinityRule(**HOSTS_RULE),
            vms_rule=types.AffinityRule(enabled=False)))
    service = groups.group_service(group.id)
    if not _rule_holds(group.hosts_rule):
        service.update(types.AffinityGroup(
            hosts_rule=types.AffinityRule(**HOSTS_RULE)))
    host_labels = service.host_labels_service()
    if label_id not in {lb.id for lb in host_labels.list()}:
        host_labels.add(types.AffinityLabel(id=label_id))
    return service


def is_container(vm):
    return any(p.name == "containerType"
               for p in (vm.custom_properties or ()))


def sync_groups(system, label_id, clusters=()):
    """Each cluster with container VMs (or in ``clusters``): its group
    holds the label's hosts and exactly the cluster's container VMs."""
    by_cluster = {c: set() for c in clusters}
    for vm in system.vms_service().list():
        if is_container(vm) and vm.cluster is not None:
            by_cluster.setdefault(vm.cluster.id, set()).add(vm.id)
    for cluster_id, vm_ids in sorted(by_cluster.items()):
        vms = group_service(system, cluster_id, label_id).vms_service()
        members = {v.id for v in vms.list()}
        for vm_id in sorted(vm_ids - members):
            vms.add(types.Vm(id=vm_id))
        for vm_id in sorted(members - vm_ids):
            vms.vm_service(vm_id).remove()


def sync_hosts(system):
    """The label on exactly the container-capable hosts; every cluster's
    affinity group in step."""
    capable = {h.id: h for h in container_hosts(system)}
    label_id, service = label_service(system)
    labelled = {h.id for h in service.hosts_service().list()}
    for host_id in sorted(set(capable) - labelled):
        service.hosts_service().add(types.Host(id=host_id))
    for host_id in sorted(labelled - set(capable)):
        service.hosts_service().host_service(host_id).remove()
    clusters = {h.cluster.id for h in capable.values() if h.cluster}
    sync_groups(system, label_id, clusters)
    return sorted(h.name for h in capable.values())

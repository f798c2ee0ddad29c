"""Run Once's "start paused": ``<ovirt-vm:launchPaused>`` in the XML's
``<metadata><ovirt-vm:vm>``.

Engine writes it for every VM (ovirt-engine vdsbroker
LibvirtVmXmlBuilder.writeRunAndPauseMetadata: ``String.valueOf(
vm.isRunAndPause())``); vdsm reads it as ``conv.tobool(md.get(
'launchPaused', False))`` (lib/vdsm/virt/vm.py ``Vm.__init__``) and starts
the domain with VIR_DOMAIN_START_PAUSED.  A container started so is frozen
(the cgroup freezer VM.pause uses) before it is reported, and reported
Paused until Engine's Resume (VM.cont).
"""

from __future__ import annotations

from vdsm_container import constants

_TAG = "./metadata/{%s}vm/{%s}launchPaused" % ((constants.METADATA_VM_NS,)
                                               * 2)


def launch_paused(root):
    """Whether the domain ``root`` asks to start paused, read as vdsm's
    lib/vdsm/common/conv.py ``tobool`` reads it: "true" in any case, else
    a non-zero integer; anything else is False."""
    text = (root.findtext(_TAG) or "").strip()
    if text.lower() == "true":
        return True
    try:
        return bool(int(text))
    except ValueError:
        return False

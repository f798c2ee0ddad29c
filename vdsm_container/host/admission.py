"""What a create is refused for before anything touches the host.

The one place where a runtime driver's declared ``capabilities`` and the
host's bounds turn into refusals: vdsm's VM.create calls it before it
answers (``vdsm.vmcontainer``), the root side again before it starts
(``host.backend.HostBackend.start``), as Nova's scheduler reads a driver's
capabilities instead of scattered checks.
"""

from __future__ import annotations

from vdsm_container import errors
from vdsm_container import runtimes
from vdsm_container.spec import hostbounds

# Why a feature is refused, where the name alone does not say it.
_WHY = {
    "console": " (Engine's serial console): its containers get no "
               "terminal the host can hold (rkt run has no console socket); "
               "turn the VM's serial console off or use runc or crun",
    "rootfs": " of a qcow2 image disk (the image cache reads it through "
              "qemu-storage-daemon; rkt reads the image disk itself): use "
              "runc or crun, or a raw image disk",
}


def check_supported(spec):
    """Refuse, before anything touches the host, what the runtime can't do
    and sizes the host can't give (``spec.hostbounds``).

    The one place where a driver's ``capabilities`` turn into refusals of
    a create (vdsm's VM.create calls it before it answers, the root side
    again before it starts).
    """
    hostbounds.check(spec)
    capabilities = runtimes.capabilities(spec.runtime)
    runtime = spec.runtime
    for feature, wanted in (("nics", spec.nics), ("volumes", spec.volumes),
                            ("userns", spec.userns),
                            ("console", spec.console),
                            ("pause", spec.launch_paused),
                            ("rootfs", spec.image_disk.fmt == "qcow2")):
        if wanted and not capabilities.get(feature):
            raise errors.UnsupportedOperation(
                "the %s runtime does not support %s%s"
                % (runtime, feature, runtimes.why_not(runtime).get(
                    feature) or _WHY.get(feature, "")),
                vmId=spec.vm_id)

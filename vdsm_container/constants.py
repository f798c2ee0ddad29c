"""Names and numbers that must match vdsm's exactly.

Each group names the vdsm file it mirrors (oVirt/vdsm master fd4b0df20).
They are copied as facts, not imported, so that the standalone command works
on hosts without vdsm.
"""

# lib/vdsm/virt/vmstatus.py
UP = "Up"
DOWN = "Down"
PAUSED = "Paused"
POWERING_DOWN = "Powering down"
WAIT_FOR_LAUNCH = "WaitForLaunch"

# lib/vdsm/common/define.py: exit codes of a Down VM
NORMAL = 0
ERROR = 1

# lib/vdsm/virt/vmexitreason.py
SUCCESS = 0
GENERIC_ERROR = 1
LIBVIRT_START_FAILED = 3
ADMIN_SHUTDOWN = 6
USER_SHUTDOWN = 7
LIBVIRT_DOMAIN_MISSING = 9
DESTROYED_ON_STARTUP = 10
HOST_SHUTDOWN = 11

EXIT_REASONS = {
    SUCCESS: "VM terminated succesfully",  # sic, as vdsm spells it
    GENERIC_ERROR: "VM terminated with error",
    LIBVIRT_START_FAILED: "failed to start libvirt vm",
    ADMIN_SHUTDOWN: "Admin shut down from the engine",
    USER_SHUTDOWN: "User shut down from within the guest",
    LIBVIRT_DOMAIN_MISSING: "Failed to find the libvirt domain",
    DESTROYED_ON_STARTUP: "VM destroyed during the startup",
    HOST_SHUTDOWN: "VM has been terminated on the host",
}

# lib/vdsm/virt/metadata.py, lib/vdsm/virt/xmlconstants.py
METADATA_VM_NS = "http://ovirt.org/vm/1.0"
METADATA_VM_NS_PREFIX = "ovirt-vm"

# The custom properties this plugin reads (engine-config
# UserDefinedVMProperties, see contrib/engine-config).
PROP_TYPE = "containerType"
PROP_IMAGE = "containerImage"
PROP_COMMAND = "containerCommand"
PROP_ENV = "containerEnv"
PROP_VOLUMES = "containerVolumes"
PROP_NETWORK = "containerNetwork"
PROP_USERNS = "containerUserns"
PROP_DISK_SIZE = "containerDiskSize"

# Features advertised in Host.getCapabilities()['additionalFeatures'].
FEATURE = "containers"
FEATURE_RUNTIME_PREFIX = "containers_"

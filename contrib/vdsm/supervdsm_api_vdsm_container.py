# Installed as vdsm/supervdsm_api/vdsm_container.py: supervdsmd loads every
# module there and exposes its @expose functions (the container verbs that
# need root).  With vdsm-container absent this module is not installed.
from vdsm_container.vdsm.supervdsm_api import (  # noqa: F401
    vdsm_container_call,
    vdsm_container_create,
)

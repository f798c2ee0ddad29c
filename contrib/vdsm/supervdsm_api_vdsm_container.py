# Installed as vdsm/supervdsm_api/vdsm_container.py: supervdsmd loads every
# module there and exposes its @expose functions (the container verbs that
# need root).  With vdsm-container absent this module is not installed.
from vdsm_container.vdsm.supervdsm_api import vdsm_container  # noqa: F401

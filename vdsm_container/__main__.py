"""``python -m vdsm_container``: the vdsm-container command."""

import sys

from vdsm_container.command import main

sys.exit(main())

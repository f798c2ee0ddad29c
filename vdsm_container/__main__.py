"""``python -m vdsm_container``: the vdsm-container command."""

import sys

from .cli import main

sys.exit(main())

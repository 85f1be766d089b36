"""Where the data directories (conf/, templates/, triggers/) live.

They sit at the top of the checkout beside the package; EVT_HOME points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME = Path(os.environ.get("EVT_HOME") or Path(__file__).resolve().parent.parent)
CONF_DIR = HOME / "conf"
TEMPLATES_DIR = HOME / "templates"
TRIGGERS_DIR = HOME / "triggers"

"""Where the data directories (conf/, templates/, triggers/) live.

A checkout keeps them at its top level, beside the package; an installed wheel carries
them inside the package (pyproject.toml maps them there). EVT_HOME points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# The checkout this evt runs from (None when installed from a wheel): the image build needs it.
CHECKOUT = (
    PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() and (PACKAGE.parent / "triggers").is_dir() else None
)
HOME = Path(os.environ.get("EVT_HOME") or CHECKOUT or PACKAGE)
CONF_DIR = HOME / "conf"
TEMPLATES_DIR = HOME / "templates"
TRIGGERS_DIR = HOME / "triggers"


def cache_root() -> Path:
    """evt's cache: $EVT_CACHE_DIR, else $XDG_CACHE_HOME/evt, else ~/.cache/evt."""
    if os.environ.get("EVT_CACHE_DIR"):
        return Path(os.environ["EVT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evt"

"""Shared fixtures (helpers live in tests/helpers.py)."""

from __future__ import annotations

import pytest
from helpers import compose_cfg


@pytest.fixture
def cfg():
    """The default composed config, as a tracer sees it."""
    return compose_cfg()

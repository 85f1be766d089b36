"""Shared fixtures (helpers live in tests/support/helpers.py) and the Hypothesis profiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# tests/support holds the helpers, stand-ins and fixtures every test directory imports
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))  # ray_cluster.py, shared with benchmarks/

import pytest
from hypothesis import HealthCheck, settings

from helpers import compose_cfg

# Property tests (marked `property`): a bounded example count in `make test`, fewer in
# `make test-fast` (HYPOTHESIS_PROFILE=fast), many more in `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
# No deadline: the host is shared and loaded.
settings.register_profile("test", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fast", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "test"))


@pytest.fixture
def cfg():
    """The default composed config, as a tracer sees it."""
    return compose_cfg()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first: pytest-xdist hands out the files in this order, and a file
    that takes minutes (the VM, Ray clusters) started last would leave the other workers idle
    at the end of `make test`."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order

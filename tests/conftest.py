"""Shared fixtures: the evt console script, a composed-config stand-in, and skips for
integration tests on hosts that cannot run them (they run for real where they can)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from evt import host
from evt.config import EvtConfig

ROOT = Path(__file__).resolve().parent.parent
EVT = Path(sys.executable).parent / "evt"  # the venv's console script


def run_evt(*args: str, timeout: float = 60, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run `evt ARGS...` as a user would, capturing its output."""
    return subprocess.run(
        [str(EVT), *args], capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, **(env or {})), **kwargs,
    )


@pytest.fixture
def evt_bin() -> Path:
    assert EVT.exists(), f"{EVT} missing: install the package into the venv (make setup)"
    return EVT


@pytest.fixture
def cfg():
    """The whole config as a tracer sees it (structured defaults, no Hydra run needed)."""
    return OmegaConf.structured(EvtConfig)


def bpftrace_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpftrace)"
    if not shutil.which("bpftrace"):
        return "bpftrace not installed (make setup)"
    if not host.tracefs_mounted():
        return "tracefs not mounted at /sys/kernel/tracing"
    return None


needs_bpftrace = pytest.mark.skipif(bpftrace_skip_reason() is not None, reason=bpftrace_skip_reason() or "")

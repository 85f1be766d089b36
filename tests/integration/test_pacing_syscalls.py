"""What a paced worker asks of the kernel, counted by strace around `evt trigger`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from helpers import EVT

pytestmark = pytest.mark.integration


def sleep_syscalls(log_path, *trigger_args: str) -> int:
    """How many sleep syscalls `evt trigger ARGS` makes, every process counted (strace)."""
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=clock_nanosleep,nanosleep",
            "-o",
            str(log_path),
            str(EVT),
            "trigger",
            "-e",
            "security_file_open",
            *trigger_args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return sum("nanosleep(" in line for line in log_path.read_text().splitlines())


@pytest.mark.skipif(not shutil.which("strace"), reason="strace not installed (make setup)")
def test_the_default_sleep_costs_no_sleep_syscall_per_op(tmp_path):
    """The original's default `10ns` sleep is spun, not slept: 20,000 ops make a handful of
    sleep syscalls (timing what a sleep costs), not one per op; a 50us sleep, which a
    sleep syscall can serve, still sleeps once between every two ops (also under strace,
    which makes every sleep slow: gaps of SLEEP_ALWAYS_NS or more are always slept)."""
    assert sleep_syscalls(tmp_path / "default.log", "--ops", "20000") < 50
    assert sleep_syscalls(tmp_path / "50us.log", "--ops", "2000", "--sleep", "50us") >= 1999

"""Runs bigger than the host can hold are refused before anything starts, naming the limit
(evt/stress/limits.py). Figures are read from this host, so the tests hold on any machine."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from evt.errors import UsageError
from evt.stress import limits
from helpers import run_evt


def task_room() -> tuple[str, int]:
    values = {
        name: int(Path(f"/proc/sys/kernel/{name[7:]}").read_text()) for name in ("kernel.pid_max", "kernel.threads-max")
    }
    name = min(values, key=values.get)
    return name, values[name] - limits.tasks_in_use()


def test_a_small_run_fits():
    limits.check_host_fits(workers=8, units=8)


def test_more_tasks_than_the_kernel_allows_are_refused_naming_the_limit():
    name, room = task_room()
    with pytest.raises(UsageError) as err:
        limits.check_host_fits(workers=room + 1000, units=1)
    message = str(err.value)
    assert "the host has room for" in message and f"{name}=" in message and f"sysctl -w {name}=N" in message


def test_more_memory_than_available_is_refused_naming_it(monkeypatch):
    # pid room made ample, so that the memory bound is the one reached
    monkeypatch.setattr(limits, "tasks_in_use", lambda: 0)
    monkeypatch.setattr(limits, "_read_int", lambda path: 2**40)
    workers = psutil.virtual_memory().available // (1 << 20) // limits.WORKER_MIB + 100
    with pytest.raises(UsageError, match=r"MiB of memory .*\(MemAvailable in /proc/meminfo\).*free memory"):
        limits.check_host_fits(workers=workers, units=2)


def test_tasks_in_use_counts_threads_not_only_processes():
    threads = sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["num_threads"]))
    assert limits.tasks_in_use() >= 0.8 * threads > len(psutil.pids())


@pytest.mark.parametrize(
    "args",
    [
        ["stress", "-e", "ptrace:instances=100000", "tracer=none", "--dry-run"],
        ["trigger", "-e", "ptrace", "--parallel", "100000"],
    ],
)
def test_a_hundred_thousand_workers_are_refused_before_any_starts(args):
    result = run_evt(*args, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: this run needs about") and "Traceback" not in result.stderr
    assert "Starting triggering" not in result.stdout


def test_memory_available_is_what_psutil_reports():
    # read from /proc/meminfo without psutil (a unit checks it at its start); 64 MiB of slack
    # for what the host allocates or frees between the two readings
    assert abs(limits.memory_available() - psutil.virtual_memory().available) < 64 << 20

"""Detection accounting end to end: real containers, a real bpftrace counting them."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evt.workload.marker import Marker
from helpers import run_containers, run_evt, unique_run_id

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # the loss limit; kernel.bpf_stats_enabled
BASE = ["tracer=bpftrace", "stress.stress_end_cooldown=0s"]


def events_by_unit(run_dir: Path) -> dict[str, dict]:
    with open(run_dir / "events.csv") as f:
        return {row["unit"]: row for row in csv.DictReader(f)}


def test_native_triggers_are_counted_exactly(tmp_path):
    bpf_stats_before = Path("/proc/sys/kernel/bpf_stats_enabled").read_text()
    run_id = unique_run_id("exact")
    result = run_evt(
        "stress",
        *BASE,
        "stress.max_loss_pct=0",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
        "-e",
        "security_file_open:instances=2:ops=5000:sleep=0",
        "-e",
        "ptrace:ops=2000:sleep=0",
        "-e",
        "security_socket_connect:ops=2000:sleep=0",
        "-e",
        "sched_process_exec:ops=200",
        "-e",
        "sched_process_fork:ops=200",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = events_by_unit(tmp_path)
    expected = {
        "security_file_open": 10000,
        "ptrace": 2000,
        "security_socket_connect": 2000,
        "sched_process_exec": 200,
        "sched_process_fork": 200,
    }
    assert {u: int(r["expected"]) for u, r in rows.items()} == expected
    assert {u: int(r["observed"]) for u, r in rows.items()} == expected
    assert all(r["count"] == "exact" and r["lost"] == "0" and float(r["loss_pct"]) == 0 for r in rows.values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["detection"] == {
        "expected": 14400,
        "observed": 14400,
        "lost": 0,
        "extra": 0,
        "loss_pct": 0.0,
        "exact": True,
        "why_not_exact": None,
    }
    assert all(r["extra"] == "0" and r["check"] == "ok" for r in rows.values())
    assert summary["max_loss_pct"] == {"limit": 0.0, "passed": True}
    cost = summary["tracer_cost"]
    assert cost["cpu_s"] > 0 and cost["peak_rss_bytes"] > 10 * 2**20 and cost["crashed"] is None
    # the probes' in-kernel cost: every target event ran a program; the sysctl is put back
    assert cost["metrics"]["bpf_programs"] >= 5  # one per unit probe (BEGIN/END may add theirs)
    assert cost["metrics"]["bpf_run_cnt"] >= 14400 and cost["metrics"]["bpf_run_time_s"] > 0
    assert Path("/proc/sys/kernel/bpf_stats_enabled").read_text() == bpf_stats_before
    with open(tmp_path / "tracer.csv") as f:
        tracer_row = next(csv.DictReader(f))
    assert tracer_row["tracer"] == "bpftrace" and float(tracer_row["cpu_s"]) > 0
    assert "detection: observed 14,400 of 14,400 expected (0.00% lost)" in result.stdout
    assert run_containers(run_id) == []


def test_script_triggers_are_counted_as_lower_bounds(tmp_path):
    result = run_evt(
        "stress",
        *BASE,
        f"hydra.run.dir={tmp_path}",
        "stress.mode=script",
        "-e",
        "security_file_open:ops=5",
        "-e",
        "ptrace:ops=3",
        "-e",
        "security_socket_create:ops=3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for unit, row in events_by_unit(tmp_path).items():
        assert row["count"] == "lower_bound"
        assert int(row["observed"]) >= int(row["expected"]) > 0, (unit, row)


NOISE = r"""
import ctypes, os, signal, sys, time
path, comm, seconds = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
os.makedirs(os.path.dirname(path), exist_ok=True)
open(path, "a").close()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ctypes.CDLL(None).prctl(15, comm, 0, 0, 0)  # the unit's own marker comm
opens, end = 0, time.monotonic() + seconds
try:
    while time.monotonic() < end:
        os.close(os.open(path, os.O_RDONLY)); opens += 1
finally:
    print(opens, flush=True)
"""


@pytest.mark.parametrize("runner", ["docker", "local"])
def test_events_outside_the_units_are_not_counted(tmp_path, runner):
    """A host process makes the unit's exact target event — same path, same comm —
    all through the run; only the unit's own events may be counted."""
    run_id = unique_run_id(f"noise-{runner}")
    marker = Marker.for_run(f"{run_id}-security_file_open", "security_file_open")
    noise = subprocess.Popen(
        [sys.executable, "-c", NOISE, marker.file, marker.comm, "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        result = run_evt(
            "stress",
            *BASE,
            f"runner={runner}",
            f"run_id={run_id}",
            f"hydra.run.dir={tmp_path}",
            "-e",
            "security_file_open:ops=3000:sleep=100us",
        )
    finally:
        noise.terminate()
        noise_out, _ = noise.communicate(timeout=30)
        shutil.rmtree(marker.dir, ignore_errors=True)  # the noise made it on the host
    assert result.returncode == 0, result.stdout + result.stderr
    row = events_by_unit(tmp_path)["security_file_open"]
    assert int(row["observed"]) == int(row["expected"]) == 3000
    assert int(noise_out) > 10000  # the noise really was there, matching the filter


def test_a_run_over_the_loss_limit_fails_when_counts_exist(tmp_path):
    # A tracer that counts nothing cannot gate: the run passes and says why.
    result = run_evt(
        "stress",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "stress.max_loss_pct=0",
        f"hydra.run.dir={tmp_path}",
        "-e",
        "ptrace:ops=10",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["max_loss_pct"]["passed"] is None and summary["detection"] is None


def test_loss_limit_must_be_a_percentage(tmp_path):
    result = run_evt("stress", *BASE, "stress.max_loss_pct=150", f"hydra.run.dir={tmp_path}", "-e", "ptrace")
    assert result.returncode == 2 and "stress.max_loss_pct=150.0 is not a percentage" in result.stderr


def test_a_real_run_over_the_loss_limit_exits_1_with_status_loss_exceeded(tmp_path):
    # evt's own data, with a ground truth that claims two target events per ptrace op where
    # the op makes one: the real bpftrace then really observes half of what is expected.
    home = tmp_path / "home"
    for folder in ("conf", "templates", "triggers"):
        shutil.copytree(Path(__file__).resolve().parents[2] / folder, home / folder)
    entry = home / "triggers" / "ptrace.yaml"
    entry.write_text(entry.read_text().replace("per_op: 1", "per_op: 2", 1))
    run_dir = tmp_path / "run"
    result = run_evt(
        "stress",
        *BASE,
        "runner=local",
        "stress.max_loss_pct=10",
        f"hydra.run.dir={run_dir}",
        "-e",
        "ptrace:ops=300:sleep=0",
        env={"EVT_HOME": str(home)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "loss 50.00% exceeds stress.max_loss_pct=10" in result.stderr + result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "loss_exceeded" and summary["exit_code"] == 1
    assert summary["detection"] == {
        "expected": 600,
        "observed": 300,
        "lost": 300,
        "extra": 0,
        "loss_pct": 50.0,
        "exact": True,
        "why_not_exact": None,
    }
    assert summary["max_loss_pct"] == {"limit": 10.0, "passed": False}


def test_an_exact_unit_that_over_counts_is_miscounted(tmp_path):
    """evt's own data, with a ground truth whose probe fires on every syscall of the unit
    (raw_syscalls) where it claims one event per ptrace op: the real bpftrace observes more
    than was made. The extra events are not hidden as 0 lost: events.csv shows them and
    `miscounted`, the table prints them, and detection is not exact, saying why."""
    home = tmp_path / "home"
    for folder in ("conf", "templates", "triggers"):
        shutil.copytree(Path(__file__).resolve().parents[2] / folder, home / folder)
    entry = home / "triggers" / "ptrace.yaml"
    entry.write_text(
        entry.read_text().replace("tracepoint:syscalls:sys_enter_ptrace", "tracepoint:raw_syscalls:sys_enter", 1)
    )
    run_dir = tmp_path / "run"
    result = run_evt(
        "stress",
        *BASE,
        "runner=local",
        f"hydra.run.dir={run_dir}",
        "-e",
        "ptrace:ops=300:sleep=0",
        env={"EVT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    row = events_by_unit(run_dir)["ptrace"]
    observed, expected = int(row["observed"]), int(row["expected"])
    assert expected == 300 and observed > expected
    assert (int(row["lost"]), int(row["extra"]), row["check"]) == (0, observed - expected, "miscounted")
    table_row = next(line for line in result.stdout.splitlines() if line.startswith("│ ptrace"))
    assert "miscounted" in table_row and f"{observed - expected:,}" in table_row
    detection = json.loads((run_dir / "summary.json").read_text())["detection"]
    assert detection["exact"] is False and detection["extra"] == observed - expected
    assert detection["why_not_exact"] == (
        f"ptrace: observed {observed:,} events where exactly 300 were made ({observed - expected:,} extra: miscounted)"
    )
    assert "detection is not exact: ptrace: observed" in result.stdout + result.stderr

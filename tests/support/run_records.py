"""Constructed result directories (summary.json, events.csv, .hydra/overrides.yaml,
timeseries.csv) in the layout `evt stress` writes, for the statistics and threshold edge
cases of `evt compare`/`evt report` and for benchmarks/bench_compare.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

EVENT_HEADER = [
    "run_id",
    "scenario",
    "tracer",
    "runner",
    "event",
    "unit",
    "mode",
    "sleep",
    "instances",
    "total_ops",
    "ops_ok",
    "expected",
    "observed",
    "lost",
    "loss_pct",
    "events_per_s",
    "count",
]


def write_run(
    run_dir: Path,
    events: dict[str, tuple[float, float]],
    *,
    scenario: str | None = "smoke",
    cpu_s: float | None = -1.0,
    peak_rss: int | None = 100 * 2**20,
    status: str = "ok",
    overrides: list[str] | None = None,
    duration_s: float = 1.0,
    timeseries: bool = False,
    gate: dict[str, float] | None = None,
    arch: str | None = None,
    tracer: str = "bpftrace",
    counted: bool = True,
    bpf_s: float | None = None,
    failure: str | None = None,
    partial: bool = False,
) -> Path:
    """A run whose events (name -> (events/s, loss %)) all ran `duration_s` seconds; the
    tracer's CPU is 1 ms per event unless `cpu_s` is given (None: not measured); `gate`: the
    perf gate's figures of the tracer's resource series (peak_rss_kb, avg_cpu_pct, ...);
    `arch`: the host's `uname -m`; `counted=False`: the tracer counted no event (observed
    empty, no detection: Tracee's default tracee.output=none); `bpf_s`: the in-kernel run
    time of the tracer's BPF programs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows, expected_total, lost_total = [], 0, 0
    for name, (rate, loss_pct) in events.items():
        expected = round(rate * duration_s)
        lost = round(expected * loss_pct / 100)
        expected_total, lost_total = expected_total + expected, lost_total + lost
        counts = [expected - lost, lost, loss_pct] if counted else ["", "", ""]
        rows.append(
            [
                "r",
                scenario or "custom",
                tracer,
                "docker",
                name,
                name,
                "native",
                "0",
                1,
                expected,
                expected,
                expected,
                *counts,
                rate,
                "exact",
            ]
        )
    with open(run_dir / "events.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_HEADER)
        writer.writerows(rows)
    cpu_s = expected_total / 1000 if cpu_s == -1.0 else cpu_s
    summary = {
        "run_id": run_dir.name,
        "runner": "docker",
        "tracer": {"name": tracer, "version": f"{tracer} v0.0"},
        "schema_version": 2,
        "scenario": [scenario] if scenario else [],
        "overrides": overrides or [],
        "status": status,
        "partial": partial,
        "failure": failure,
        "total_ops_per_s": expected_total / duration_s,
        "start_skew_ms": 0.5,
        "detection": {
            "expected": expected_total,
            "observed": expected_total - lost_total,
            "lost": lost_total,
            "loss_pct": 100.0 * lost_total / expected_total if expected_total else 0.0,
            "exact": True,
        }
        if counted
        else None,
        "tracer_cost": {"cpu_s": cpu_s, "peak_rss_bytes": peak_rss, "wall_s": duration_s},
    }
    if bpf_s is not None:
        summary["tracer_cost"]["metrics"] = {"bpf_programs": 1, "bpf_run_time_s": bpf_s}
    summary["tracer_cost"].update(gate or {})
    if arch:
        summary["host"] = {"arch": arch}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides or []))
    if timeseries:
        write_timeseries(run_dir, list(events), duration_s)
    return run_dir


def write_failed_job(
    job_dir: Path, status: str, failure: str, overrides: list[str] | None = None, scenario: str = "smoke"
) -> Path:
    """A job that ended before it had results: only a summary.json with its status and failure
    (as a sweep's job that failed at start-up leaves it)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "run_id": job_dir.name,
        "schema_version": 2,
        "scenario": [scenario],
        "overrides": overrides or [],
        "tracer": {"name": "bpftrace", "version": None},
        "status": status,
        "partial": True,
        "failure": failure,
        "exit_code": 1,
    }
    (job_dir / "summary.json").write_text(json.dumps(summary))
    return job_dir


def write_timeseries(run_dir: Path, units: list[str], duration_s: float, samples: int = 10) -> None:
    with open(run_dir / "timeseries.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t_s", "tracer_cpu_pct", "tracer_rss_bytes", "tracer_lost", *[f"done.{u}" for u in units]])
        for i in range(samples + 1):
            t = duration_s * i / samples
            writer.writerow([t, 20 + i, (90 + i) * 2**20, 0, *[1000 * i for _ in units]])


def write_sweep(sweep_dir: Path, key: str, values: list[object], events_for, **run_kwargs) -> Path:
    """A multirun directory: multirun.yaml naming the sweep, one job per value;
    `events_for(value)` gives that job's events."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    task = [f"{key}={','.join(str(v) for v in values)}", "tracer=bpftrace"]
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))
    for job, value in enumerate(values):
        write_run(
            sweep_dir / str(job), events_for(value), overrides=[f"{key}={value}", "tracer=bpftrace"], **run_kwargs
        )
    return sweep_dir

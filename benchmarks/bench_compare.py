#!/usr/bin/env python3
"""Benchmarks of `evt compare` and `evt report` on two sweeps of 50 jobs each, measured
side by side in one run (the commands as a user runs them, interpreter start included).

The sweeps are constructed in the layout `evt stress -m` writes (multirun.yaml, and per job
summary.json, events.csv, .hydra/overrides.yaml, timeseries.csv): 50 jobs swept over
stress.instances, 4 events per job.
Targets: each command under 5 s on the 2-core machine. Also shows that `evt trigger`'s
start-up imports none of pandas, scipy, matplotlib (they load only in compare/report).

Usage: benchmarks/bench_compare.py [--jobs N] [--rounds N] [--strict]
Writes benchmarks/results/bench_compare.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import EVT, Record, size

EVENTS = ["security_file_open", "ptrace", "security_socket_connect", "sched_process_exec"]
TARGET_S = 5.0


def timed(argv: list[str], ok_codes: tuple[int, ...] = (0, 1)) -> tuple[float, float]:
    """(wall s, CPU s) of one command; the CPU figure holds when others load the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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


def write_job(job_dir: Path, overrides: list[str], events: dict[str, tuple[float, float]]) -> None:
    """One job's run directory: each event (name -> (events/s, loss %)) ran 1 s; the
    tracer used 1 ms of CPU per event; a timeseries of 10 samples."""
    (job_dir / ".hydra").mkdir(parents=True)
    rows, expected_total, lost_total = [], 0, 0
    for name, (rate, loss_pct) in events.items():
        expected, lost = int(rate), int(rate * loss_pct / 100)
        expected_total, lost_total = expected_total + expected, lost_total + lost
        rows.append(
            [
                "r",
                "smoke",
                "bpftrace",
                "docker",
                name,
                name,
                "native",
                "0",
                1,
                expected,
                expected,
                expected,
                expected - lost,
                lost,
                loss_pct,
                rate,
                "exact",
            ]
        )
    with open(job_dir / "events.csv", "w", newline="") as f:
        csv.writer(f).writerows([EVENT_HEADER, *rows])
    summary = {
        "schema_version": 2,
        "run_id": job_dir.name,
        "runner": "docker",
        "status": "ok",
        "tracer": {"name": "bpftrace", "version": None},
        "scenario": ["smoke"],
        "overrides": overrides,
        "total_ops_per_s": expected_total,
        "start_skew_ms": 0.5,
        "detection": {
            "expected": expected_total,
            "observed": expected_total - lost_total,
            "lost": lost_total,
            "loss_pct": 100.0 * lost_total / expected_total,
            "exact": True,
        },
        "tracer_cost": {"cpu_s": expected_total / 1000, "peak_rss_bytes": 100 * 2**20, "wall_s": 1.0},
    }
    (job_dir / "summary.json").write_text(json.dumps(summary))
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    with open(job_dir / "timeseries.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t_s", "tracer_cpu_pct", "tracer_rss_bytes", *[f"done.{e}" for e in events]])
        writer.writerows([i / 10, 20 + i, (90 + i) * 2**20, *[1000 * i for _ in events]] for i in range(11))


def write_sweep(sweep_dir: Path, key: str, values: list[int], events_for) -> Path:
    """A multirun directory naming the sweep in multirun.yaml, one job per value."""
    sweep_dir.mkdir(parents=True)
    task = [f"{key}={','.join(str(v) for v in values)}", "tracer=bpftrace"]
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))
    for job, value in enumerate(values):
        write_job(sweep_dir / str(job), [f"{key}={value}", "tracer=bpftrace"], events_for(value))
    return sweep_dir


def build(root: Path, jobs: int) -> tuple[Path, Path]:
    def events(scale: float, tenth: float):  # `tenth`: the factor for every tenth job
        return lambda n: {
            e: (1000.0 * n * scale * (tenth if n % 10 == 0 else 1), 0.1 * i) for i, e in enumerate(EVENTS)
        }

    values = list(range(1, jobs + 1))
    base = write_sweep(root / "baseline", "stress.instances", values, events(1.0, 1.0))
    cand = write_sweep(root / "candidate", "stress.instances", values, events(0.97, 0.8))
    return base, cand


def trigger_imports() -> list[str]:
    code = (
        "import sys; sys.argv = ['evt', 'trigger', '--help']; import evt.cli.commands; "
        "print(' '.join(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=size(50, 3))
    parser.add_argument("--rounds", type=int, default=size(3, 1))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    record = Record(
        "bench_compare",
        f"`evt compare` and `evt report` as a user runs them (interpreter start "
        f"included), on two constructed sweeps of {args.jobs} jobs × {len(EVENTS)} events, "
        f"{args.rounds} rounds, beside `evt --help`",
        {"jobs": args.jobs, "rounds": args.rounds},
    )
    with tempfile.TemporaryDirectory(prefix="evt-bench-compare-") as tmp:
        root = Path(tmp)
        base, cand = build(root, args.jobs)
        start_up = [timed([EVT, "--help"], (0,)) for _ in range(args.rounds)]
        compare_s = [
            timed([EVT, "compare", str(base), str(cand), "--out", str(root / f"cmp{i}")]) for i in range(args.rounds)
        ]
        report_s = [timed([EVT, "report", str(base), "--out", str(root / f"rep{i}")], (0,)) for i in range(args.rounds)]
        compare_report_s = [
            timed([EVT, "report", str(root / "cmp0"), "--out", str(root / f"crep{i}")], (0,))
            for i in range(args.rounds)
        ]
    rows = [
        ("evt --help (interpreter + CLI start-up)", start_up),
        (f"evt compare: two sweeps of {args.jobs} jobs", compare_s),
        (f"evt report: a sweep of {args.jobs} jobs", report_s),
        ("evt report: their comparison", compare_report_s),
    ]
    base_s = statistics.median(w for w, _ in start_up)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.rounds} rounds")
    print(f"{'command':<46} {'median s':>9} {'max s':>7} {'CPU s':>6} {'x start-up':>11}")
    for name, values in rows:
        wall = [w for w, _ in values]
        print(
            f"{name:<46} {statistics.median(wall):>9.2f} {max(wall):>7.2f} "
            f"{statistics.median(c for _, c in values):>6.2f} {statistics.median(wall) / base_s:>11.1f}"
        )
    for (name, values), target in zip(rows, [None, TARGET_S, TARGET_S, TARGET_S], strict=True):
        wall = [w for w, _ in values]
        record.figure(
            f"{name}: median wall",
            statistics.median(wall),
            "s",
            baseline=base_s if target else None,
            baseline_label="`evt --help`, same run" if target else None,
        )
        record.figure(f"{name}: max wall", max(wall), "s", op="<" if target else None, target=target, target_unit="s")
        record.figure(f"{name}: CPU", statistics.median(c for _, c in values), "s")
    heavy = trigger_imports()
    record.note(f"evt trigger start-up imports: {', '.join(heavy) if heavy else 'none of pandas, scipy, matplotlib'}")
    print(f"evt trigger start-up imports: {', '.join(heavy) if heavy else 'none of pandas, scipy, matplotlib'}")
    missed = [name for name, values in rows[1:] if max(w for w, _ in values) >= TARGET_S] + (
        ["trigger imports"] if heavy else []
    )
    print("targets (< 5 s each, nothing heavy in evt trigger):", "missed: " + ", ".join(missed) if missed else "met")
    record.write()
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())

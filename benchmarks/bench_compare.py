#!/usr/bin/env python3
"""Benchmarks of `evt compare` and `evt report` on two sweeps of 50 jobs each, measured
side by side in one run (the commands as a user runs them, interpreter start included).

The sweeps are constructed in the layout `evt stress -m` writes (tests/support/run_records.py):
50 jobs swept over stress.instances, 4 events per job, each job with a timeseries.csv.
Targets: each command under 5 s on the 2-core machine. Also shows that `evt trigger`'s
start-up imports none of pandas, scipy, matplotlib (they load only in compare/report).

Usage: benchmarks/bench_compare.py [--jobs N] [--rounds N] [--strict]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from run_records import write_sweep

EVT = str(Path(sys.executable).parent / "evt")
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


def build(root: Path, jobs: int) -> tuple[Path, Path]:
    def events(scale: float, tenth: float):  # `tenth`: the factor for every tenth job
        return lambda n: {e: (1000.0 * n * scale * (tenth if n % 10 == 0 else 1), 0.1 * i) for i, e in enumerate(EVENTS)}

    values = list(range(1, jobs + 1))
    base = write_sweep(root / "baseline", "stress.instances", values, events(1.0, 1.0), timeseries=True)
    cand = write_sweep(root / "candidate", "stress.instances", values, events(0.97, 0.8), timeseries=True)
    return base, cand


def trigger_imports() -> list[str]:
    code = ("import sys; sys.argv = ['evt', 'trigger', '--help']; import evt.cli.commands; "
            "print(' '.join(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evt-bench-compare-") as tmp:
        root = Path(tmp)
        base, cand = build(root, args.jobs)
        start_up = [timed([EVT, "--help"], (0,)) for _ in range(args.rounds)]
        compare_s = [timed([EVT, "compare", str(base), str(cand), "--out", str(root / f"cmp{i}")])
                     for i in range(args.rounds)]
        report_s = [timed([EVT, "report", str(base), "--out", str(root / f"rep{i}")], (0,)) for i in range(args.rounds)]
        compare_report_s = [timed([EVT, "report", str(root / "cmp0"), "--out", str(root / f"crep{i}")], (0,))
                            for i in range(args.rounds)]
    rows = [("evt --help (interpreter + CLI start-up)", start_up),
            (f"evt compare: two sweeps of {args.jobs} jobs", compare_s),
            (f"evt report: a sweep of {args.jobs} jobs", report_s),
            ("evt report: their comparison", compare_report_s)]
    base_s = statistics.median(w for w, _ in start_up)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.rounds} rounds")
    print(f"{'command':<46} {'median s':>9} {'max s':>7} {'CPU s':>6} {'x start-up':>11}")
    for name, values in rows:
        wall = [w for w, _ in values]
        print(f"{name:<46} {statistics.median(wall):>9.2f} {max(wall):>7.2f} "
              f"{statistics.median(c for _, c in values):>6.2f} {statistics.median(wall) / base_s:>11.1f}")
    heavy = trigger_imports()
    print(f"evt trigger start-up imports: {', '.join(heavy) if heavy else 'none of pandas, scipy, matplotlib'}")
    missed = [name for name, values in rows[1:] if max(w for w, _ in values) >= TARGET_S] + (["trigger imports"] if heavy else [])
    print("targets (< 5 s each, nothing heavy in evt trigger):", "missed: " + ", ".join(missed) if missed else "met")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())

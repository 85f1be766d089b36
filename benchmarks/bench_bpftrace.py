#!/usr/bin/env python3
"""bpftrace as the tracer: the highest native security_file_open rate (2 workers, this
machine) at which it still counts every event, and its CPU cost per million events.

Raises the rate step by step (the per-op sleep shrinks from 1 ms to none, as Falco's
event-generator `bench` halves its sleep), each step one `evt stress` run of about
--seconds seconds in containers with tracer=bpftrace, and reports every step.
Usage: benchmarks/bench_bpftrace.py [--seconds S] [--runner docker|local]
Writes benchmarks/results/bench_bpftrace.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import Record, size, stress

STEPS = [("1ms", 900), ("100us", 8000), ("10us", 30000), ("0", 60000)]  # sleep, ops/s guess per worker


def step(tmp: Path, sleep: str, ops: int, runner: str) -> dict:
    summary, row = stress(
        tmp / f"sleep-{sleep}",
        [
            "tracer=bpftrace",
            f"runner={runner}",
            "stress.stress_end_cooldown=0s",
            "-e",
            f"security_file_open:instances=2:ops={ops}:sleep={sleep}",
        ],
        f"sleep={sleep}",
    )
    detection, cost = summary["detection"], summary["tracer_cost"]
    rate = int(row["expected"]) / float(summary["duration_s"])
    kernel_s = cost["metrics"].get("bpf_run_time_s", 0.0)  # the probes, run in the traced processes
    millions = detection["observed"] / 1e6
    return {
        "sleep": sleep,
        "events": detection["expected"],
        "observed": detection["observed"],
        "loss_pct": detection["loss_pct"],
        "rate": rate,
        "cpu_s": cost["cpu_s"],
        "kernel_s": kernel_s,
        "cpu_s_per_million": (cost["cpu_s"] + kernel_s) / millions if millions else None,
        "lost_reported": sum(cost["lost"].values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=size(5.0, 0.02), help="target length of each step")
    parser.add_argument("--runner", default="docker")
    args = parser.parse_args()
    steps = size(STEPS, STEPS[-1:])
    record = Record(
        "bench_bpftrace",
        "native security_file_open, 2 workers, tracer=bpftrace, the per-op sleep shrinking step by step",
        {"seconds": args.seconds, "runner": args.runner, "steps": [s for s, _ in steps]},
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="evt-bench-bpftrace-") as tmp:
        for sleep, per_worker_rate in steps:
            rows.append(step(Path(tmp), sleep, max(10, int(per_worker_rate * args.seconds)), args.runner))
    print("native security_file_open, 2 workers, tracer=bpftrace:")
    print("  (cpu: bpftrace's own process; in-kernel: its BPF programs, from kernel.bpf_stats_enabled)")
    print(
        f"  {'sleep':>6} {'events/s':>10} {'events':>9} {'observed':>9} {'loss %':>7} {'cpu s':>7} "
        f"{'in-kernel s':>11} {'total s / 1M ev':>15}"
    )
    for r in rows:
        print(
            f"  {r['sleep']:>6} {r['rate']:>10,.0f} {r['events']:>9,} {r['observed']:>9,} {r['loss_pct']:>7.2f} "
            f"{r['cpu_s']:>7.2f} {r['kernel_s']:>11.3f} {r['cpu_s_per_million'] or 0:>15.3f}"
        )
    record.table(
        "each step: one `evt stress` run (cpu: bpftrace's own process; in the kernel: its BPF programs, "
        "from kernel.bpf_stats_enabled; CPU s per million events: both)",
        [
            "sleep",
            "events/s",
            "expected",
            "observed",
            "loss %",
            "bpftrace process CPU s",
            "BPF programs in the kernel s",
            "CPU s per million events",
        ],
        [
            [
                r["sleep"],
                round(r["rate"]),
                r["events"],
                r["observed"],
                r["loss_pct"],
                round(r["cpu_s"], 3),
                round(r["kernel_s"], 4),
                round(r["cpu_s_per_million"], 3) if r["cpu_s_per_million"] else None,
            ]
            for r in rows
        ],
    )
    complete = [r for r in rows if r["loss_pct"] == 0 and r["lost_reported"] == 0]
    if complete:
        best = max(complete, key=lambda r: r["rate"])
        print(
            f"highest rate counted completely: {best['rate']:,.0f} events/s "
            f"(bpftrace {best['cpu_s_per_million']:.3f} CPU s per million events, its process and its BPF programs)"
        )
        record.figure("highest rate counted completely", best["rate"], "events/s")
        record.figure(
            "bpftrace CPU s per million events at that rate (process + BPF in the kernel)",
            best["cpu_s_per_million"],
            "s",
        )
    else:
        print("no step was counted completely")
        record.note("no step was counted completely")
    record.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

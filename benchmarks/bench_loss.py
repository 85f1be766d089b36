#!/usr/bin/env python3
"""Tracers that can lose events, side by side on this machine: bpftrace counting in the
kernel (the reference), bpftrace streaming one printf per event with 1, 8 and 64 (its
default) pages of output buffer per CPU, and opensnoop; tracer=none as the workload's own
rate. Native security_file_open in containers, the rate raised step by step (fewer sleeps,
more workers), each step one `evt stress` run of about --seconds seconds per tracer.

For every tracer and step: the events/s the units reached, expected and observed events,
loss %, the lost events the tracer itself reported, its CPU seconds (its process; for
bpftrace also its BPF programs in the kernel) and CPU seconds per million events.
Usage: benchmarks/bench_loss.py [--seconds S] [--runner docker|local] [--tracers a,b]
Writes benchmarks/results/bench_loss.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import Record, size, stress

TRACERS = {
    "none": ["tracer=none"],
    "bpftrace": ["tracer=bpftrace"],
    "stream-1p": ["tracer=bpftrace", "bpftrace.mode=stream", "bpftrace.buffer_pages=1"],
    "stream-8p": ["tracer=bpftrace", "bpftrace.mode=stream", "bpftrace.buffer_pages=8"],
    "stream-64p": ["tracer=bpftrace", "bpftrace.mode=stream"],
    "opensnoop": ["tracer=opensnoop"],
}
# sleep, workers, ops/s guess per worker: a sleep of any length costs a sleep syscall (~45k ops/s
# at most per worker), so the rate between that and no sleep at all comes from more workers
STEPS = [
    ("100us", 2, 7000),
    ("10ns", 1, 40000),
    ("10ns", 2, 35000),
    ("10ns", 4, 25000),
    ("0", 1, 170000),
    ("0", 2, 160000),
]
PAGES = [1, 4, 16, 64, 256]  # the buffer sweep, at the last step's rate


def step(tmp: Path, tracer: str, sleep: str, workers: int, ops: int, runner: str, more: tuple[str, ...] = ()) -> dict:
    run_dir = tmp / "-".join([tracer, sleep, str(workers), *more]).replace("=", "_")  # "=" breaks hydra.run.dir
    summary, row = stress(
        run_dir,
        [
            *TRACERS[tracer],
            *more,
            f"runner={runner}",
            "stress.stress_end_cooldown=0s",
            "-e",
            f"security_file_open:instances={workers}:ops={ops}:sleep={sleep}",
        ],
        f"{tracer}, sleep={sleep}, {workers} workers",
    )
    cost = summary.get("tracer_cost") or {}
    expected = int(row["expected"])
    observed = int(float(row["observed"])) if row["observed"] else None
    kernel_s = (cost.get("metrics") or {}).get("bpf_run_time_s", 0.0)
    cpu_s = (cost.get("cpu_s") or 0.0) + kernel_s
    return {
        "tracer": tracer,
        "sleep": sleep,
        "workers": workers,
        "rate": float(row["events_per_s"]),
        "expected": expected,
        "observed": observed,
        "loss_pct": float(row["loss_pct"]) if row["loss_pct"] else None,
        "lost_reported": sum((cost.get("lost") or {}).values()),
        "cpu_s": cpu_s,
        "cpu_s_per_million": cpu_s / (expected / 1e6) if tracer != "none" else None,
    }


def print_row(r: dict) -> None:
    observed = f"{r['observed']:,}" if r["observed"] is not None else "-"
    loss = f"{r['loss_pct']:.2f}" if r["loss_pct"] is not None else "-"
    per_million = f"{r['cpu_s_per_million']:.2f}" if r["cpu_s_per_million"] is not None else "-"
    print(
        f"  {r['tracer']:<11} {r['sleep']:>6} {r['workers']:>7} {r['rate']:>9,.0f} {r['expected']:>9,} "
        f"{observed:>9} {loss:>7} {r['lost_reported']:>13,} {r['cpu_s']:>6.2f} {per_million:>8}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=size(2.0, 0.01), help="target length of each run")
    parser.add_argument("--runner", default="docker")
    parser.add_argument(
        "--tracers",
        default=size(",".join(TRACERS), "none,stream-1p"),
        help=f"a subset of {','.join(TRACERS)} ('' for none)",
    )
    parser.add_argument(
        "--pages",
        default=size(",".join(map(str, PAGES)), "8"),
        help="bpftrace stream mode's buffer sweep at the last step ('' to skip)",
    )
    args = parser.parse_args()
    tracers = [t for t in args.tracers.split(",") if t]
    pages = [int(n) for n in args.pages.split(",") if n]
    steps = size(STEPS, STEPS[-1:])
    record = Record(
        "bench_loss",
        "tracers that can lose events, side by side: native security_file_open in "
        "containers, each step one `evt stress` run per tracer",
        {
            "seconds": args.seconds,
            "runner": args.runner,
            "tracers": tracers,
            "pages": pages,
            "steps": [f"{s}, {w} workers" for s, w, _ in steps],
        },
    )
    rows = []
    print("native security_file_open in containers; cpu: the tracer's process + its BPF programs in the kernel")
    print(
        f"  {'tracer':<11} {'sleep':>6} {'workers':>7} {'events/s':>9} {'expected':>9} {'observed':>9} "
        f"{'loss %':>7} {'reported lost':>13} {'cpu s':>6} {'cpu s/1M':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="evt-bench-loss-") as tmp:
        for sleep, workers, per_worker_rate in steps:
            for tracer in tracers:
                rows.append(step(Path(tmp), tracer, sleep, workers, int(per_worker_rate * args.seconds), args.runner))
                print_row(rows[-1])
        sleep, workers, per_worker_rate = STEPS[-1]
        sweep = []
        for n in pages:
            row = step(
                Path(tmp),
                "stream-64p",
                sleep,
                workers,
                int(per_worker_rate * args.seconds),
                args.runner,
                (f"bpftrace.buffer_pages={n}",),
            )
            sweep.append(dict(row, tracer=f"stream-{n}p"))
            print_row(sweep[-1])
    columns = [
        "tracer",
        "sleep",
        "workers",
        "events/s",
        "expected",
        "observed",
        "loss %",
        "reported lost",
        "cpu s",
        "cpu s per million events",
    ]

    def cells(r: dict) -> list:
        return [
            r["tracer"],
            r["sleep"],
            r["workers"],
            round(r["rate"]),
            r["expected"],
            r["observed"],
            r["loss_pct"],
            r["lost_reported"],
            round(r["cpu_s"], 3),
            round(r["cpu_s_per_million"], 3) if r["cpu_s_per_million"] is not None else None,
        ]

    record.table(
        "each tracer at each step (cpu: the tracer's process + its BPF programs in the kernel; "
        "stream-Np: bpftrace.mode=stream with N pages of buffer per CPU)",
        columns,
        [cells(r) for r in rows],
    )
    if sweep:
        record.table(
            f"bpftrace stream mode's buffer sweep at sleep={sleep}, {workers} workers",
            columns,
            [cells(r) for r in sweep],
        )
    for tracer in tracers:
        if tracer == "none":
            continue
        lossy = [r for r in rows if r["tracer"] == tracer and (r["loss_pct"] or 0) > 0]
        first = min(lossy, key=lambda r: r["rate"]) if lossy else None
        verdict = (
            f"first loss at {first['rate']:,.0f} events/s ({first['loss_pct']:.2f}%)"
            if first
            else "no loss at any step"
        )
        print(f"{tracer}: {verdict}")
        record.note(f"{tracer}: {verdict}")
    record.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

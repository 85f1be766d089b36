#!/usr/bin/env python3
"""Benchmarks of `evt trigger`'s per-op path, each measured side by side in one run.

(a) native security_file_open, one worker, --sleep 0: ops/s vs a bare Python
    os.open/os.close loop on the same kind of file, also in a forked process
    (target: ratio >= 0.75).
(b) script mode: evt's wall time per op vs a bare `sh` loop running the same rendered
    script the same number of times (target: ratio <= 1.15).
(c) native security_file_open --parallel 2 vs one worker, total ops/s (target >= 1.7x).
    This needs two idle cores; the same comparison of bare loops in forked processes is
    printed beside it: the ceiling the machine allowed at the time.

Beside each wall-clock figure: CPU seconds per op (user+sys of the processes doing the
ops, from getrusage), which load from elsewhere on the machine does not change.
Each figure is the median of --rounds rounds; the sides of a comparison alternate within
a round so that load from elsewhere hits both alike.
Usage: benchmarks/bench_trigger.py [--rounds N] [--native-ops N] [--script-ops N] [--strict]
(--strict: exit 1 when a target is missed.) Writes benchmarks/results/bench_trigger.json.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import Record, bare_processes, measured, size

from evt.workload import ops, trigger
from evt.workload.catalog import get_trigger
from evt.workload.marker import Marker
from evt.workload.pacing import Pacing

EVENT = "security_file_open"


def quiet() -> trigger.Output:
    return trigger.Output(EVENT, prefixed=False, stream=io.StringIO())


def evt_native(ops: int, parallel: int) -> float:
    """Total ops/s of an evt native run (first op of any worker to last op of any)."""
    marker = Marker.for_run(uuid.uuid4().hex, EVENT)
    result = trigger.run(get_trigger(EVENT), "native", ops, parallel, Pacing(), marker, None, quiet())
    assert result.errors == 0, result.per_worker
    return result.ops_per_s


def evt_script(ops: int) -> float:
    """Seconds per op of an evt script-mode run."""
    marker = Marker.for_run(uuid.uuid4().hex, EVENT)
    result = trigger.run(get_trigger(EVENT), "script", ops, 1, Pacing(), marker, None, quiet())
    assert result.errors == 0, result.per_worker
    return result.duration_s / ops


def bare_sh_loop(ops: int, script: str) -> float:
    """Seconds per op of `sh` running the same rendered script ops times."""
    loop = 'i=0; while [ "$i" -lt "$1" ]; do "$0" || exit 1; i=$((i+1)); done'
    start = time.perf_counter()
    subprocess.run(["sh", "-c", loop, script, str(ops)], check=True)
    return (time.perf_counter() - start) / ops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=size(5, 1))
    parser.add_argument("--native-ops", type=int, default=size(200_000, 2_000))
    parser.add_argument("--script-ops", type=int, default=size(300, 5))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    n, s = args.native_ops, args.script_ops
    record = Record(
        "bench_trigger",
        f"`evt trigger`, {EVENT}, --sleep 0: median of {args.rounds} rounds",
        {"rounds": args.rounds, "native_ops": n, "script_ops": s},
    )

    # a rendered copy of the script for the bare loop, made the way evt makes its own
    marker = Marker.for_run(uuid.uuid4().hex, EVENT)
    bare_dir = Path(f"/tmp/evt-bench-sh-{uuid.uuid4().hex[:8]}")
    bare_dir.mkdir()
    rendered = ops.prepare_script(get_trigger(EVENT), "script", marker)
    bare_script = str(bare_dir / os.path.basename(rendered))
    shutil.copy(rendered, bare_script)
    shutil.rmtree(marker.dir, ignore_errors=True)

    figures: dict[str, list[tuple[float, float]]] = {}
    plan = {
        "a_bare": (lambda: bare_processes(n, 1), n),
        "a_evt": (lambda: evt_native(n, 1), n),
        "b_sh": (lambda: bare_sh_loop(s, bare_script), s),
        "b_evt": (lambda: evt_script(s), s),
        "c_one": (lambda: evt_native(n, 1), n),
        "c_two": (lambda: evt_native(n, 2), 2 * n),
        "d_one": (lambda: bare_processes(n, 1), n),
        "d_two": (lambda: bare_processes(n, 2), 2 * n),
    }
    try:
        for _ in range(args.rounds):
            for key, (fn, total) in plan.items():
                figures.setdefault(key, []).append(measured(fn, total))
    finally:
        shutil.rmtree(bare_dir, ignore_errors=True)

    def med(key: str) -> tuple[float, float]:
        return (statistics.median(f for f, _ in figures[key]), statistics.median(c for _, c in figures[key]))

    def rate(key: str) -> str:
        figure, cpu = med(key)
        return f"{figure:>9,.0f} ops/s  {cpu * 1e6:5.2f} us CPU/op"

    def per_op(key: str) -> str:
        figure, cpu = med(key)
        return f"{figure * 1e6:>6,.0f} us/op    {cpu * 1e6:5.0f} us CPU/op"

    rows = [
        (
            "(a) native, 1 worker",
            rate("a_evt"),
            "bare os.open/os.close loop",
            rate("a_bare"),
            med("a_evt")[0] / med("a_bare")[0],
            ">=",
            0.75,
        ),
        (
            "(b) script mode",
            per_op("b_evt"),
            "bare sh loop, same script",
            per_op("b_sh"),
            med("b_evt")[0] / med("b_sh")[0],
            "<=",
            1.15,
        ),
        (
            "(c) native, --parallel 2",
            rate("c_two"),
            "native, 1 worker",
            rate("c_one"),
            med("c_two")[0] / med("c_one")[0],
            ">=",
            1.7,
        ),
    ]
    record.figure(
        "native security_file_open, 1 worker",
        med("a_evt")[0],
        "ops/s",
        baseline=med("a_bare")[0],
        baseline_label="bare Python os.open/os.close loop, same run",
        op=">=",
        target=0.75,
    )
    record.figure(
        "script mode, per op",
        med("b_evt")[0] * 1e6,
        "µs",
        baseline=med("b_sh")[0] * 1e6,
        baseline_label="bare sh loop running the same script",
        op="<=",
        target=1.15,
    )
    record.figure(
        "native, --parallel 2",
        med("c_two")[0],
        "ops/s",
        baseline=med("c_one")[0],
        baseline_label="1 worker",
        op=">=",
        target=1.7,
    )
    record.figure(
        "bare forked loops, 2 processes (the machine's ceiling for (c))",
        med("d_two")[0],
        "ops/s",
        baseline=med("d_one")[0],
        baseline_label="1 process",
    )
    record.table(
        "CPU per op (user+sys of the processes doing the ops; load elsewhere does not change it)",
        ["side", "µs CPU per op"],
        [
            [label, round(med(key)[1] * 1e6, 3)]
            for label, key in (
                ("(a) evt native, 1 worker", "a_evt"),
                ("(a) bare loop", "a_bare"),
                ("(b) evt script", "b_evt"),
                ("(b) bare sh loop", "b_sh"),
                ("(c) evt --parallel 2", "c_two"),
                ("(c) evt 1 worker", "c_one"),
            )
        ],
    )
    print(
        f"evt trigger benchmarks ({EVENT}, --sleep 0): median of {args.rounds} rounds, {n:,} native ops "
        f"and {s} script ops per run; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    )
    missed = 0
    for label, ours, other_label, other, ratio, op, target in rows:
        ok = ratio >= target if op == ">=" else ratio <= target
        missed += not ok
        print(
            f"{label:26} {ours}   vs {other_label:27} {other}   "
            f"ratio {ratio:4.2f} (target {op} {target}) {'ok' if ok else 'MISSED'}"
        )
    ceiling = med("d_two")[0] / med("d_one")[0]
    print(
        f"{'    bare loops, 2 procs':26} {rate('d_two')}   vs {'1 process':27} {rate('d_one')}   "
        f"ratio {ceiling:4.2f}: what the machine allowed; "
        f"evt reached {med('c_two')[0] / med('c_one')[0] / ceiling:.0%} of it"
    )
    record.write()
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

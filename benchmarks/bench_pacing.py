#!/usr/bin/env python3
"""Benchmarks of pacing (`--sleep`, `--rate`), measured side by side in one run.

(a) native security_file_open, one worker, the default `10ns` sleep: ops/s vs a bare
    Python os.open/os.close loop in a forked process (target: ratio >= 0.75). The
    default sleep is spun on the clock, not slept: no sleep syscall per op.
(b) `evt trigger -e security_file_open --rate 10000 --ops 30000` as a user runs it:
    the trigger's own duration (first op to last) and the whole command's wall time
    against the 3 s the rate asks for (target: 3 s +-10%); beside it the achieved rate
    at other rates, as achieved/target, and at 50,000 ops/s the worker's CPU (its ops'
    `cpu_s` plus its pacing's `pace_cpu_s`) per second of run (target: <= 0.5 s/s: the
    rate is kept in batches of ops with one sleep each, never spun).

Each figure is the median of --rounds rounds; the sides of a comparison alternate within
a round so that load from elsewhere hits both alike.
Usage: benchmarks/bench_pacing.py [--rounds N] [--ops N] [--strict]
Writes benchmarks/results/bench_pacing.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from common import EVT, Record, bare_processes, measured, size

from evt.config.spec import DEFAULT_SLEEP, parse_duration
from evt.workload import trigger
from evt.workload.catalog import get_trigger
from evt.workload.marker import Marker
from evt.workload.pacing import Pacing

EVENT = "security_file_open"
SECONDS = size(3, 0.2)  # how long each --rate run is asked to last
RATES = [(rate, int(rate * SECONDS)) for rate in (1_000, 10_000, 50_000)]  # (ops/s, ops)


def evt_default_sleep(ops: int) -> float:
    marker = Marker.for_run(uuid.uuid4().hex, EVENT)
    out = trigger.Output(EVENT, prefixed=False, stream=io.StringIO())
    pacing = Pacing(sleep_ns=parse_duration(DEFAULT_SLEEP))
    result = trigger.run(get_trigger(EVENT), "native", ops, 1, pacing, marker, None, out)
    assert result.errors == 0, result.per_worker
    return result.ops_per_s


def evt_rate(rate: int, ops: int) -> tuple[float, float, float]:
    """(trigger duration s, command wall time s, the worker's CPU s per s of run) of
    `evt trigger --rate RATE --ops OPS`."""
    start = time.perf_counter()
    proc = subprocess.run(
        [EVT, "trigger", "-e", EVENT, "--rate", str(rate), "--ops", str(ops), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    result = json.loads(proc.stdout.splitlines()[-1])
    worker = result["per_worker"][0]
    return result["duration_s"], wall, (worker["cpu_s"] + worker["pace_cpu_s"]) / result["duration_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=size(5, 1))
    parser.add_argument("--ops", type=int, default=size(200_000, 2_000), help="ops per run of (a)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    n = args.ops
    record = Record(
        "bench_pacing",
        f"pacing ({EVENT}): median of {args.rounds} rounds",
        {"rounds": args.rounds, "ops": n, "rates": RATES},
    )

    default: dict[str, list[tuple[float, float]]] = {"bare": [], "evt": []}
    rates: dict[int, list[tuple[float, float, float]]] = {rate: [] for rate, _ in RATES}
    for _ in range(args.rounds):
        default["bare"].append(measured(lambda: bare_processes(n, 1), n))
        default["evt"].append(measured(lambda: evt_default_sleep(n), n))
        for rate, ops in RATES:
            rates[rate].append(evt_rate(rate, ops))

    def med(values) -> float:
        return statistics.median(values)

    bare, ours = med(f for f, _ in default["bare"]), med(f for f, _ in default["evt"])
    bare_cpu, ours_cpu = med(c for _, c in default["bare"]), med(c for _, c in default["evt"])
    ratio = ours / bare
    print(
        f"evt pacing benchmarks ({EVENT}): median of {args.rounds} rounds; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    missed = ratio < 0.75
    print(
        f"(a) native, default {DEFAULT_SLEEP} sleep {ours:>9,.0f} ops/s {ours_cpu * 1e6:5.2f} us CPU/op   vs bare "
        f"os.open/os.close loop {bare:>9,.0f} ops/s {bare_cpu * 1e6:5.2f} us CPU/op   ratio {ratio:4.2f} "
        f"(target >= 0.75) {'ok' if not missed else 'MISSED'}"
    )
    record.figure(
        f"native, default {DEFAULT_SLEEP} sleep, 1 worker",
        ours,
        "ops/s",
        baseline=bare,
        baseline_label="bare Python os.open/os.close loop in a forked process",
        op=">=",
        target=0.75,
    )
    rate_rows = []
    for rate, ops in RATES:
        duration, wall = med(d for d, _, _ in rates[rate]), med(w for _, w, _ in rates[rate])
        asked = ops / rate
        line = (
            f"(b) --rate {rate:<6} --ops {ops:<7} trigger {duration:6.3f} s, command {wall:6.3f} s, asked {asked:g} s: "
            f"achieved {(ops - 1) / duration / rate:6.1%} of the rate"
        )
        if rate == 10_000:
            ok = abs(duration - asked) <= 0.1 * asked
            missed = missed or not ok
            line += f" (target {asked:g} s +-10%) {'ok' if ok else 'MISSED'}"
            record.figure(
                f"`evt trigger --rate {rate} --ops {ops}`: the trigger's duration",
                duration,
                "s",
                baseline=asked,
                baseline_label="the duration the rate asks for",
                op="±",
                target=0.1,
            )
            record.figure(
                f"`evt trigger --rate {rate} --ops {ops}`: the command's wall time",
                wall,
                "s",
                baseline=asked,
                baseline_label="the duration the rate asks for",
            )
        if rate == 50_000:
            cpu = med(c for _, _, c in rates[rate])
            ok = cpu <= 0.5
            missed = missed or not ok
            line += f"; worker CPU {cpu:.2f} s per s of run (target <= 0.5) {'ok' if ok else 'MISSED'}"
            record.figure(
                f"`evt trigger --rate {rate} --ops {ops}`: the worker's CPU (ops + pacing) per second of run",
                cpu,
                "s/s",
                op="<=",
                target=0.5,
                target_unit="s/s",
            )
        print(line)
        rate_rows.append(
            [rate, ops, round(asked, 3), round(duration, 3), round(wall, 3), round((ops - 1) / duration / rate, 4)]
        )
    record.table(
        "`evt trigger --rate R --ops N`: the trigger's duration (first op to last), the command's wall "
        "time, and the rate achieved as a fraction of R",
        ["rate ops/s", "ops", "asked s", "trigger s", "command s", "achieved / asked"],
        rate_rows,
    )
    record.write()
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

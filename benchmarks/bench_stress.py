#!/usr/bin/env python3
"""Benchmarks of `evt stress` orchestration, measured side by side in one run.

1. Start skew over 8 units: evt's shared FIFO barrier vs Tracee's Go evt's release, one
   `docker exec <id> pkill -USR1 evt` per container (sequential, and 8 in parallel),
   on the same image, the same 8 events and the same machine. Skew = spread of the
   units' first-op times (from each unit's JSON result).
2. Time from the command to all 8 units waiting at the barrier (image already built).
3. Orchestration overhead of a ~30 s run: `evt stress` wall time vs the unit's own run time.

Needs dockerd and the trigger-runner image (`make evt-trigger-runner`).
Usage: benchmarks/bench_stress.py [--rounds N] [--long-seconds S] [--strict]
Writes benchmarks/results/bench_stress.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
from common import EVT, Record, size

IMAGE = os.environ.get("EVT_TRIGGER_RUNNER_IMAGE", "evt-trigger-runner:latest")
EIGHT = [
    "security_file_open",
    "security_socket_connect",
    "ptrace",
    "magic_write",
    "do_truncate",
    "security_socket_create",
    "switch_task_ns",
    "security_path_notify",
]
UNITS = size(EIGHT, EIGHT[:2])
OPS = size(20000, 200)
# what a trigger started with --wait-signal prints once it waits (evt/workload/trigger.py)
WAITING_LINE = b"Waiting for start signal SIGUSR1"


def evt_barrier_skew(tmp: Path, label: str) -> tuple[float, float]:
    """(start skew ms, seconds from command to all units waiting) of one evt stress run."""
    run_dir = tmp / label
    args = [EVT, "stress", "tracer=none", "stress.stress_end_cooldown=0s", f"hydra.run.dir={run_dir}"]
    for event in UNITS:
        args += ["-e", f"{event}:ops={OPS}:sleep=0"]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    waiting_after = None
    for line in proc.stdout:
        if "units waiting at the start barrier" in line and waiting_after is None:
            waiting_after = time.monotonic() - t0
    proc.wait()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok", summary
    return summary["start_skew_ms"], waiting_after


def original_skew(client, parallel: bool) -> float:
    """Tracee's Go evt's release: containers wait for SIGUSR1; `docker exec pkill -USR1 evt` each."""
    containers = []
    try:
        for event in UNITS:
            containers.append(
                client.containers.run(
                    IMAGE,
                    [
                        "trigger",
                        "--event",
                        event,
                        "--ops",
                        str(OPS),
                        "--sleep",
                        "0",
                        "--json",
                        "--wait-signal",
                        "--signal-timeout",
                        "2m",
                    ],
                    detach=True,
                    network_mode="none",
                    cap_add=["SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN"],
                    security_opt=["seccomp=unconfined"],
                    labels={"evt.run_id": "bench-original"},
                )
            )
        deadline = time.monotonic() + 60
        while not all(WAITING_LINE in c.logs() for c in containers):
            if time.monotonic() > deadline:
                raise RuntimeError("containers never waited")
            time.sleep(0.05)

        def signal(container):
            container.exec_run(["pkill", "-USR1", "evt"])

        if parallel:
            with ThreadPoolExecutor(max_workers=len(containers)) as pool:
                list(pool.map(signal, containers))
        else:
            for container in containers:
                signal(container)
        firsts = []
        for container in containers:
            container.wait(timeout=120)
            last = container.logs().decode().strip().splitlines()[-1]
            result = json.loads(last.split("] ", 1)[1])
            firsts.append(min(w["t_start_ns"] for w in result["per_worker"]))
        return (max(firsts) - min(firsts)) / 1e6
    finally:
        for container in containers:
            container.remove(force=True)


def overhead(tmp: Path, seconds: float) -> tuple[float, float, float]:
    """(evt stress wall s, unit run s, overhead %) for one unit running ~`seconds`."""
    ops = int(seconds * 1000)  # 1 ms sleep per op, plus the op
    run_dir = tmp / "long"
    t0 = time.monotonic()
    subprocess.run(
        [
            EVT,
            "stress",
            "tracer=none",
            "stress.stress_end_cooldown=0s",
            f"hydra.run.dir={run_dir}",
            "-e",
            f"security_file_open:ops={ops}:sleep=1ms",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.monotonic() - t0
    unit = json.loads((run_dir / "summary.json").read_text())["duration_s"]
    return wall, unit, 100 * (wall - unit) / unit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=size(3, 1))
    parser.add_argument("--long-seconds", type=float, default=size(30.0, 1.0))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    n = len(UNITS)
    record = Record(
        "bench_stress",
        f"`evt stress` orchestration: {n} units of {OPS:,} native ops each, {args.rounds} rounds",
        {"rounds": args.rounds, "units": UNITS, "ops": OPS, "long_seconds": args.long_seconds},
    )
    client = docker.from_env()
    client.images.get(IMAGE)
    missed = []
    with tempfile.TemporaryDirectory(prefix="evt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ours, waits, seq, par = [], [], [], []
        for i in range(args.rounds):  # interleaved, so drift hits every variant alike
            skew, waited = evt_barrier_skew(tmp, f"barrier-{i}")
            ours.append(skew)
            waits.append(waited)
            seq.append(original_skew(client, parallel=False))
            par.append(original_skew(client, parallel=True))
        med = statistics.median
        print(f"start skew over {n} units, median of {args.rounds} rounds (max):")
        print(f"  evt FIFO barrier:                    {med(ours):8.2f} ms ({max(ours):.2f})   target <= 10 ms")
        print(f"  original, sequential docker exec:    {med(seq):8.2f} ms ({max(seq):.2f})")
        print(f"  original, {n} parallel docker exec:    {med(par):8.2f} ms ({max(par):.2f})")
        print(
            f"  ratio sequential/evt: {med(seq) / max(med(ours), 1e-3):.0f}x, "
            f"parallel/evt: {med(par) / max(med(ours), 1e-3):.0f}x"
        )
        print(f"command to all {n} units waiting: median {med(waits):.2f} s (max {max(waits):.2f})   target <= 4 s")
        record.figure(
            f"start skew over {n} units, median",
            med(ours),
            "ms",
            baseline=med(seq),
            baseline_label="Tracee's Go evt: sequential `docker exec pkill -USR1`, same image and events",
            op="<=",
            target=10,
            target_unit="ms",
        )
        record.figure(
            f"start skew over {n} units, max",
            max(ours),
            "ms",
            baseline=max(seq),
            baseline_label="sequential `docker exec pkill -USR1`, max",
        )
        record.figure(f"start skew, {n} parallel `docker exec` (Go evt's release, parallel)", med(par), "ms")
        record.figure(
            f"command to all {n} units waiting at the barrier, median",
            med(waits),
            "s",
            op="<=",
            target=4,
            target_unit="s",
        )
        if med(ours) > 10:
            missed.append("start skew")
        if med(waits) > 4:
            missed.append("time to waiting")
        wall, unit, pct = overhead(tmp, args.long_seconds)
        print(
            f"orchestration overhead: evt stress wall {wall:.2f} s for a unit running {unit:.2f} s: +{pct:.1f}%   "
            f"target <= 5%"
        )
        record.figure(
            f"orchestration overhead of a {args.long_seconds:g} s run (wall / unit duration - 1)",
            pct,
            "%",
            op="<=",
            target=5,
            target_unit="%",
        )
        record.figure("evt stress wall time", wall, "s", baseline=unit, baseline_label="the unit's own run time")
        if pct > 5:
            missed.append("overhead")
    if missed:
        print("missed: " + ", ".join(missed))
    record.write()
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())

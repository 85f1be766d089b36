#!/usr/bin/env python3
"""A 4-job sweep on a 2-node Ray cluster against the same sweep with Hydra's default
launcher (jobs one after another), side by side in one run.

The two nodes are on this one machine and share its cores, so the jobs are tracer=none
and their units are paced by sleep (a job takes --seconds whatever the load): what is
measured is the launcher — placement, start-up, results coming home — not the CPU.
Target: the Ray sweep takes <= 0.6x the default launcher's time.
Usage: benchmarks/bench_remote.py [--seconds S]
Writes benchmarks/results/bench_remote.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import EVT, ROOT, Record, size

sys.path.insert(0, str(ROOT / "scripts"))
from ray_cluster import DRIVER_ENV, start_cluster  # a Ray cluster on loopback

SLEEP_MS = 10
INSTANCES = size([1, 2, 3, 4], [1, 2])  # one job per value


def timed_sweep(sweep_dir: Path, seconds: float, launcher: list[str]) -> float:
    ops = int(seconds * 1000 / SLEEP_MS)
    started = time.monotonic()
    out = subprocess.run(
        [
            EVT,
            "stress",
            "-m",
            *launcher,
            "tracer=none",
            "runner=docker",
            "stress.stress_end_cooldown=0s",
            "-e",
            f"security_file_open:ops={ops}:sleep={SLEEP_MS}ms",
            f"stress.instances={','.join(map(str, INSTANCES))}",
            f"hydra.sweep.dir={sweep_dir}",
            f"remote.staging_dir={sweep_dir.parent / 'staging'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **DRIVER_ENV),
    )
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(launcher)}): {out.stderr[-2000:]}")
    with open(sweep_dir / "sweep.csv") as f:
        statuses = [row["status"] for row in csv.DictReader(f)]
    assert statuses == ["ok"] * len(INSTANCES), statuses
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=size(15, 0.5), help="length of each job's units")
    args = parser.parse_args()
    jobs = len(INSTANCES)
    swept = ",".join(map(str, INSTANCES))
    record = Record(
        "bench_remote",
        f"a {jobs}-job sweep (stress.instances={swept}, tracer=none, "
        f"docker units paced by sleep={SLEEP_MS}ms for ~{args.seconds:g} s each) on a two-node Ray cluster "
        "on loopback against Hydra's default launcher",
        {"seconds": args.seconds, "jobs": jobs},
    )
    with tempfile.TemporaryDirectory(prefix="evt-bench-remote-") as tmp:
        tmp = Path(tmp)
        cluster = start_cluster(tmp / "cluster", nodes=2)
        try:
            ray_s = timed_sweep(
                tmp / "ray", args.seconds, ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={cluster.address}"]
            )
        finally:
            cluster.stop()
        basic_s = timed_sweep(tmp / "basic", args.seconds, [])
    print(f"{jobs} jobs of ~{args.seconds:.0f}s units each (tracer=none, sleep-paced, docker units)")
    print(f"  default launcher (one after another): {basic_s:6.1f} s")
    print(f"  Ray launcher, 2 nodes:                 {ray_s:6.1f} s")
    print(f"  ratio Ray / default: {ray_s / basic_s:.2f} (target <= 0.6)")
    record.figure(
        "sweep wall time, Ray launcher, 2 nodes (one job per node at a time)",
        ray_s,
        "s",
        baseline=basic_s,
        baseline_label="Hydra's default launcher (jobs one after another)",
        op="<=",
        target=0.6,
    )
    record.write()


if __name__ == "__main__":
    main()

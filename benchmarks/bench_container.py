#!/usr/bin/env python3
"""A unit in a container against the same trigger on the host, side by side in one run.

(a) `evt stress tracer=none -e security_file_open:ops=N:sleep=0`, one worker, with
    runner=local (the host) and runner=docker (a container, as evt runs it: /tmp on a
    tmpfs): the container's speed over the host's (target >= 0.9), as ops per CPU second
    of the worker (its speed whenever it has a core; on a machine shared with other work
    the wall-clock ops/s, printed beside it, also depends on the scheduler). Beside it the same
    container run with the marker files on the container's overlay filesystem
    (runner.tmpfs=[], how evt ran before) and with Docker's default seccomp profile
    (runner.security_opt=[]), to show which of the two costs what.
(b) Why: a bare Python os.open/os.close loop (no evt) on a file in /tmp on the host, in a
    container on its overlay /tmp, and in a container on a tmpfs /tmp.

Each figure is the median of --rounds rounds; the variants alternate within a round so
that load from elsewhere hits them alike.
Usage: benchmarks/bench_container.py [--rounds N] [--ops N] [--strict]
(EVT_TRIGGER_RUNNER_IMAGE names the image, as for evt stress.)
Writes benchmarks/results/bench_container.json.
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
from pathlib import Path

from common import EVT, Record, size

from evt.runners.docker import TMPFS_OPTIONS, docker_client

EVENT = "security_file_open"
UNITS = {  # label: overrides of `evt stress`
    "host (runner=local)": ["runner=local"],
    "container (runner=docker)": ["runner=docker"],
    "container, marker on overlayfs": ["runner=docker", "runner.tmpfs=[]"],
    "container, default seccomp": ["runner=docker", "runner.security_opt=[]"],
}
BARE_LOOP = """
import os, sys, time
path = '/tmp/evt-bench-bare'
open(path, 'ab').close()
n = int(sys.argv[1])
start, cpu = time.perf_counter(), time.process_time()
for _ in range(n):
    os.close(os.open(path, os.O_RDONLY))
print(n / (time.perf_counter() - start), (time.process_time() - cpu) / n)
os.unlink(path)
"""


def stress_ops_per_s(overrides: list[str], ops: int) -> tuple[float, float]:
    """(ops/s, CPU s per op) of the one worker of an `evt stress` run with these overrides."""
    with tempfile.TemporaryDirectory(prefix="evt-bench-container-") as run_dir:
        subprocess.run(
            [
                EVT,
                "stress",
                "tracer=none",
                "-e",
                f"{EVENT}:ops={ops}:sleep=0",
                "--stress-end-cooldown",
                "0s",
                f"hydra.run.dir={run_dir}",
                *overrides,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["errors"] == 0, summary
    return summary["total_ops_per_s"], summary["workers_cpu_s"] / summary["ok"]


def bare_host(ops: int) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", BARE_LOOP, str(ops)], check=True, capture_output=True, text=True)
    rate, cpu = out.stdout.split()
    return float(rate), float(cpu)


def bare_container(client, image: str, ops: int, tmpfs: bool) -> tuple[float, float]:
    out = client.containers.run(
        image,
        entrypoint=["python3", "-c", BARE_LOOP, str(ops)],
        network_mode="none",
        tmpfs={"/tmp": TMPFS_OPTIONS} if tmpfs else None,
        remove=True,
        labels={"evt.run_id": f"bench-container-{os.getpid()}"},
    )
    rate, cpu = out.decode().split()
    return float(rate), float(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=size(5, 1))
    parser.add_argument("--ops", type=int, default=size(300_000, 1_000))
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    record = Record(
        "bench_container",
        f"a unit in a container against the host ({EVENT}, {args.ops:,} ops, "
        f"1 worker, --sleep 0): median of {args.rounds} rounds",
        {"rounds": args.rounds, "ops": args.ops},
    )
    client = docker_client()
    image = os.environ.get("EVT_TRIGGER_RUNNER_IMAGE", "evt-trigger-runner:latest")
    bare = {
        "host, ext4 /tmp": lambda: bare_host(args.ops),
        "container, overlay /tmp": lambda: bare_container(client, image, args.ops, tmpfs=False),
        "container, tmpfs /tmp": lambda: bare_container(client, image, args.ops, tmpfs=True),
    }
    figures: dict[str, list[tuple[float, float]]] = {}
    started = time.monotonic()
    for _ in range(args.rounds):
        for label, overrides in UNITS.items():
            figures.setdefault(label, []).append(stress_ops_per_s(overrides, args.ops))
        for label, fn in bare.items():
            figures.setdefault(label, []).append(fn())
    rate = {label: statistics.median(r for r, _ in values) for label, values in figures.items()}
    cpu = {label: statistics.median(c for _, c in values) for label, values in figures.items()}
    print(
        f"container vs host ({EVENT}, {args.ops:,} ops, 1 worker, --sleep 0): median of {args.rounds} rounds "
        f"in {time.monotonic() - started:.0f} s; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    )

    def row(label: str, host: str) -> str:
        return (
            f"{1 / cpu[label]:>9,.0f} ops/CPU-s ({cpu[label] * 1e6:4.2f} us CPU/op) "
            f"{cpu[host] / cpu[label]:4.2f}x the host;"
            f" wall {rate[label]:>9,.0f} ops/s {rate[label] / rate[host]:4.2f}x"
        )

    host = "host (runner=local)"
    ratio = cpu[host] / cpu["container (runner=docker)"]
    for label in UNITS:
        line = f"(a) {label:32} {row(label, host)}"
        if label == "container (runner=docker)":
            line += f" (target >= 0.9) {'ok' if ratio >= 0.9 else 'MISSED'}"
        print(line)
    for label in bare:
        print(f"(b) bare loop, {label:27} {row(label, 'host, ext4 /tmp')}")
    record.figure(
        "unit in a container (runner=docker): ops per CPU second",
        1 / cpu["container (runner=docker)"],
        "ops/CPU-s",
        baseline=1 / cpu[host],
        baseline_label="the same unit on the host (runner=local)",
        op=">=",
        target=0.9,
    )
    record.table(
        "(a) `evt stress` units (CPU: the worker's; wall: ops/s)",
        ["unit", "ops per CPU second", "µs CPU per op", "× the host (CPU)", "ops/s (wall)", "× the host (wall)"],
        [
            [
                label,
                round(1 / cpu[label]),
                round(cpu[label] * 1e6, 3),
                round(cpu[host] / cpu[label], 3),
                round(rate[label]),
                round(rate[label] / rate[host], 3),
            ]
            for label in UNITS
        ],
    )
    bare_host_label = "host, ext4 /tmp"
    record.table(
        "(b) a bare Python os.open/os.close loop (no evt)",
        ["where", "ops per CPU second", "µs CPU per op", "× the host (CPU)", "ops/s (wall)", "× the host (wall)"],
        [
            [
                label,
                round(1 / cpu[label]),
                round(cpu[label] * 1e6, 3),
                round(cpu[bare_host_label] / cpu[label], 3),
                round(rate[label]),
                round(rate[label] / rate[bare_host_label], 3),
            ]
            for label in bare
        ],
    )
    record.write()
    return 1 if ratio < 0.9 and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

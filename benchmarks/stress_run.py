"""One `evt stress` run as the benchmarks make it: evt as a user runs it, its summary.json
and its first events.csv row (the benchmarks' runs have one event)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

EVT = str(Path(sys.executable).parent / "evt")


def stress(run_dir: Path, args: list[str], what: str) -> tuple[dict, dict]:
    """(summary, events row) of `evt stress ARGS hydra.run.dir=RUN_DIR`; exits naming `what` if it fails."""
    result = subprocess.run([EVT, "stress", *args, f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise SystemExit(f"evt stress failed ({what}): {result.stdout[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "events.csv") as f:
        return summary, next(csv.DictReader(f))

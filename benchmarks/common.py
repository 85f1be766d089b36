"""What every benchmark shares: evt run as a user runs it, the tiny size `make test` runs,
and the results file each benchmark writes (benchmarks/results/<name>.json), from which
`make bench-docs` generates the figure tables of docs/benchmarks.md.

A results file records what was measured and under which conditions: the figures (each
with its baseline, their ratio and the target), the load average when the benchmark
started, the host (kernel, CPUs, memory, Docker) and the evt commit that was measured.

EVT_BENCH_TINY=1 runs a benchmark at a tiny size (seconds: a check that it still runs to
the end, not a measurement); its record says `"size": "tiny"`. EVT_BENCH_RESULTS_DIR
writes the results file elsewhere (the tests write tiny records into a temporary
directory, never over benchmarks/results/).
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from evt.results.provenance import evt_version, host

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
EVT = str(Path(sys.executable).parent / "evt")
SCHEMA_VERSION = 1


def tiny() -> bool:
    """True when the benchmark runs at the tiny size of `make test` (EVT_BENCH_TINY=1)."""
    return os.environ.get("EVT_BENCH_TINY", "") not in ("", "0")


def size(full, tiny_value):
    """`full` for a measurement, `tiny_value` at the tiny size."""
    return tiny_value if tiny() else full


def results_dir() -> Path:
    return Path(os.environ.get("EVT_BENCH_RESULTS_DIR") or RESULTS_DIR)


def target_met(value: float | None, op: str, target: float | None) -> bool | None:
    """Whether `value op target` holds; op "±" means within target of 1 (a ratio)."""
    if value is None or target is None:
        return None
    checks = {">=": value >= target, "<=": value <= target, "<": value < target, "±": abs(value - 1) <= target}
    return checks.get(op)


def target_text(op: str | None, target: float | None, unit: str | None) -> str | None:
    if not op or target is None:
        return None
    return f"1 ± {target:g}" if op == "±" else f"{op} {target:g}" + (f" {unit}" if unit else "")


class Record:
    """One benchmark run's results file: started when the benchmark starts (the load
    average is taken then, before the benchmark loads the machine itself)."""

    def __init__(self, name: str, title: str, settings: dict | None = None):
        self.name, self.title = name, title
        self.settings = dict(settings or {})
        self.started = time.monotonic()
        self.data: dict = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": name,
            "title": title,
            "size": "tiny" if tiny() else "full",
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "host": {"hostname": socket.gethostname(), **host()},
            "evt": evt_version(),
            "settings": self.settings,
            "figures": [],
            "tables": [],
            "notes": [],
        }

    def figure(
        self,
        measure: str,
        value: float | None,
        unit: str,
        *,
        baseline: float | None = None,
        baseline_label: str | None = None,
        ratio: float | None = None,
        op: str | None = None,
        target: float | None = None,
        target_unit: str | None = None,
    ) -> dict:
        """A figure beside its baseline, with their ratio (value / baseline unless given).
        `op target` judges the ratio; a target with a unit (`<= 10 ms`) judges the value."""
        if ratio is None and value is not None and baseline:
            ratio = value / baseline
        judged = value if target_unit or ratio is None else ratio
        row = {
            "measure": measure,
            "value": value,
            "unit": unit,
            "baseline": baseline,
            "baseline_label": baseline_label,
            "ratio": ratio,
            "target": target_text(op, target, target_unit),
            "met": target_met(judged, op or "", target),
        }
        self.data["figures"].append(row)
        return row

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        """A table of figures (a step per row) for benchmarks that measure a series."""
        self.data["tables"].append({"title": title, "columns": columns, "rows": rows})

    def note(self, text: str) -> None:
        self.data["notes"].append(text)

    def missed(self) -> list[str]:
        return [f["measure"] for f in self.data["figures"] if f["met"] is False]

    def write(self) -> Path:
        self.data["duration_s"] = round(time.monotonic() - self.started, 1)
        self.data["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        directory = results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=2, ensure_ascii=False) + "\n")
        print(f"results: {path}")
        return path


def stress(run_dir: Path, args: list[str], what: str) -> tuple[dict, dict]:
    """(summary, first events.csv row) of `evt stress ARGS hydra.run.dir=RUN_DIR` (the
    benchmarks' runs have one event); exits naming `what` if the run fails."""
    result = subprocess.run(
        [EVT, "stress", *args, f"hydra.run.dir={run_dir}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"evt stress failed ({what}): {result.stdout[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "events.csv") as f:
        return summary, next(csv.DictReader(f))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(fn, total_ops: int):
    """fn()'s figure and the CPU seconds per op its child processes used."""
    before = children_cpu()
    figure = fn()
    return figure, (children_cpu() - before) / total_ops


def bare_processes(ops: int, processes: int) -> float:
    """Total ops/s of `processes` forked plain loops of os.open/os.close on one file,
    released together."""
    directory = f"/tmp/evt-bench-{uuid.uuid4().hex[:8]}"
    os.makedirs(directory)
    path = f"{directory}/marker"
    open(path, "ab").close()
    go_r, go_w = os.pipe()
    pids = []
    try:
        for _ in range(processes):
            pid = os.fork()
            if pid == 0:
                os.close(go_w)
                os.read(go_r, 1)
                for _ in range(ops):
                    os.close(os.open(path, os.O_RDONLY))
                os._exit(0)
            pids.append(pid)
        os.close(go_r)
        start = time.perf_counter()
        os.close(go_w)
        for pid in pids:
            os.waitpid(pid, 0)
        return ops * processes / (time.perf_counter() - start)
    finally:
        shutil.rmtree(directory)

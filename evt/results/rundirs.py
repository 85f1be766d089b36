"""Reading results back: a run directory, a sweep directory or a directory of repeated
runs, as pandas tables (one row per run, one row per run and event).

`locate()` only looks at names on disk (cheap, done for every path before anything is
read in bulk) and says what a directory is missing; `load()` reads the
records. Only `evt compare` and `evt report` import this (pandas stays out of
`evt trigger`'s start-up).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from evt.errors import UsageError

RUN_FILES = ("summary.json", "events.csv")
SWEEP_FILES = ("sweep.csv", "multirun.yaml")
# Runs whose figures are whole; failed/interrupted/crashed runs are listed, not compared
USABLE_STATUSES = ("ok", "loss_exceeded")
UNSET = "(unset)"  # a swept key a run did not set (it ran with the config's default)
# CPU times are counted in clock ticks (10 ms) for user and system time each: under 0.2 s
# the rounding alone can reach 10%, so tracer CPU figures built on less are not compared
MIN_CPU_S = 0.2


@dataclass
class ResultSet:
    """What one path given on the command line holds."""

    path: Path
    kind: str  # run | sweep | repeats | perfgate
    run_dirs: list[Path]
    sweep_keys: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "perfgate":  # a file of Tracee's perf gate (evt.analysis.perfgate), no runs
            return "Tracee perf-gate baseline"
        noun = {"run": "run", "sweep": "sweep", "repeats": "repeat set"}[self.kind]
        return f"{noun}, {len(self.run_dirs)} run{'s' if len(self.run_dirs) != 1 else ''}"


def is_run(path: Path) -> bool:
    return (path / "summary.json").is_file()


def _job_order(path: Path) -> tuple[int, str]:
    return (len(path.name), path.name)  # Hydra's job numbers: 0, 1, ..., 10 in numeric order


def locate(path_text: str) -> ResultSet:
    """What kind of result directory `path_text` is; UsageError naming what is missing."""
    path = Path(path_text)
    if not path.exists():
        raise UsageError(f"{path_text} does not exist: give a run directory (outputs/DATE/RUN_ID), "
                         "a sweep directory (multirun/DATE/ID) or a directory of runs.")
    if not path.is_dir():
        raise UsageError(f"{path_text} is a file, not a directory: give the run, sweep or repeat-set directory.")
    if is_run(path):
        if not (path / "events.csv").is_file():
            raise UsageError(f"{path_text} has a summary.json but no events.csv: the run did not finish "
                             "writing its results; rerun it.")
        return ResultSet(path, "run", [path])
    children = sorted((p for p in path.iterdir() if p.is_dir() and is_run(p)), key=_job_order)
    if any((path / name).is_file() for name in SWEEP_FILES):
        if not children:
            raise UsageError(f"{path_text} is a sweep directory without any finished job "
                             "(no <job>/summary.json): nothing to read.")
        return ResultSet(path, "sweep", children, sweep_keys(path, children))
    if children:
        return ResultSet(path, "repeats", children)
    raise UsageError(
        f"{path_text} is not an evt result: it has no summary.json (a run), no sweep.csv or "
        "multirun.yaml (a sweep) and no subdirectories with a summary.json (repeated runs). "
        "Give the directory `evt stress` printed after `results:`, or its multirun directory."
    )


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """`key=value` overrides as a mapping (group choices such as tracer=bpftrace included)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = {}
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq:
            continue
        try:  # Hydra's own reading: `a\:b` is the value a:b, as the job saw it
            override = parser.parse_override(item)
            raw = override.value()
            value = raw if isinstance(raw, str) else override.get_value_element_as_str()
        except (HydraException, ValueError):
            pass
        parsed[key.lstrip("+~")] = value
    return parsed


def run_overrides(run_dir: Path, summary: dict | None = None) -> list[str]:
    """The Hydra overrides a run was started with (summary.json, else .hydra/overrides.yaml)."""
    if summary and isinstance(summary.get("overrides"), list):
        return [str(o) for o in summary["overrides"]]
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    return []


def sweep_keys(sweep_dir: Path, job_dirs: list[Path]) -> list[str]:
    """The keys a sweep varied: its sweep overrides (multirun.yaml), else those whose values
    differ between jobs."""
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        task = ((yaml.safe_load(multirun.read_text()) or {}).get("hydra") or {}).get("overrides", {}).get("task")
        if task is not None:
            return swept_keys_of(list(task))
    values: dict[str, set[str]] = {}
    per_job = [parse_overrides(run_overrides(job)) for job in job_dirs]
    for overrides in per_job:
        for key in overrides:
            values.setdefault(key, set())
    for overrides in per_job:
        for key in values:
            values[key].add(overrides.get(key, UNSET))
    return [key for key, seen in values.items() if len(seen) > 1]


def swept_keys_of(task_overrides: list[str]) -> list[str]:
    """The keys of the sweep overrides (`a=1,2`, `range(...)`, `choice(...)`) in a multirun's task overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(task_overrides)
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def read_summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except ValueError as exc:
        raise UsageError(f"{run_dir / 'summary.json'} is not valid JSON ({exc}): the run's record is damaged.") from exc


def scenario_label(summary: dict) -> str:
    scenario = summary.get("scenario")
    if isinstance(scenario, list):
        return "+".join(scenario) if scenario else "custom"
    return str(scenario) if scenario else "unknown"


def _cost(summary: dict) -> dict:
    """The tracer's cost over the measured window where recorded, else over its whole run."""
    cost = summary.get("tracer_cost") or {}
    window = cost.get("window") or {}
    return {**cost, **{k: v for k, v in window.items() if v is not None}}


def run_metrics(summary: dict) -> dict[str, float | None]:
    """The per-run figures `evt compare` compares (None where the run did not record them)."""
    cost = _cost(summary)
    detection = summary.get("detection") or {}
    expected = detection.get("expected")
    cpu_s, wall_s = cost.get("cpu_s"), cost.get("wall_s")
    if cpu_s is not None and cpu_s < MIN_CPU_S:
        cpu_s = None
    return {
        "tracer_cpu_per_mevents": (cpu_s / expected * 1e6) if cpu_s is not None and expected else None,
        "tracer_cpu_avg_pct": (100.0 * cpu_s / wall_s) if cpu_s is not None and wall_s else None,
        "tracer_cpu_p95_pct": cost.get("cpu_p95_pct") if cpu_s is not None else None,
        "peak_rss_bytes": cost.get("peak_rss_bytes"),
        "total_ops_per_s": summary.get("total_ops_per_s"),
        "start_skew_ms": summary.get("start_skew_ms"),
    }


def run_identity(run_dir: Path, summary: dict, keys: list[str]) -> dict[str, object]:
    overrides = parse_overrides(run_overrides(run_dir, summary))
    row: dict[str, object] = {"run_dir": str(run_dir), "run_id": summary.get("run_id"),
                              "status": summary.get("status"), "scenario": scenario_label(summary)}
    row.update({key: overrides.get(key, UNSET) for key in keys})
    return row


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def event_rows(run_dir: Path, identity: dict[str, object]) -> list[dict[str, object]]:
    """events.csv of one run as compare rows (the csv module: 100 small files read with
    pandas would cost more than everything else `evt compare` does)."""
    rows = []
    with open(run_dir / "events.csv", newline="") as f:
        for row in csv.DictReader(f):
            observed, expected = _number(row.get("observed")), _number(row.get("expected"))
            rows.append({**identity, "event": row["unit"], "events_per_s": _number(row.get("events_per_s")),
                         "loss_pct": _number(row.get("loss_pct")), "observed": observed, "expected": expected,
                         "observed_ratio": observed / expected if observed is not None and expected else None})
    return rows


def load(result: ResultSet, keys: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run: identity, status, per-run figures; one row per run and event:
    identity, events/s, loss %, observed/expected), each run read once."""
    keys = result.sweep_keys if keys is None else keys
    runs, events = [], []
    for run_dir in result.run_dirs:
        summary = read_summary(run_dir)
        identity = run_identity(run_dir, summary, keys)
        runs.append({**identity, **run_metrics(summary)})
        events += event_rows(run_dir, identity)
    return pd.DataFrame(runs), pd.DataFrame(events)

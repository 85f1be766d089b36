"""Reading results back: a run directory, a sweep directory or a directory of repeated
runs, as pandas tables (one row per run, one row per run and event).

`locate()` only looks at names on disk (cheap, done for every path before anything is
read in bulk) and says what a directory is missing; `load()` reads the
records. Only `evt compare` and `evt report` import this (pandas stays out of
`evt trigger`'s start-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evt.errors import UsageError, brief
from evt.results import records
from evt.results.summary import Summary, TracerCost

RUN_FILES = ("summary.json", "events.csv")
SWEEP_FILES = ("sweep.csv", "multirun.yaml")
# Runs whose figures are whole (when not partial); failed/interrupted/crashed runs are
# named, not compared
USABLE_STATUSES = ("ok", "loss_exceeded")
UNSET = "(unset)"  # a swept key a run did not set (it ran with the config's default)
# CPU times are counted in clock ticks (10 ms) for user and system time each: under 0.2 s
# the rounding alone can reach 10%, so tracer CPU figures built on less are not compared
MIN_CPU_S = 0.2
CPU_FIGURES = ("tracer_cpu_per_mevents", "tracer_cpu_avg_pct", "tracer_cpu_p95_pct")
WHY = "why."  # prefix of the column saying why the figure of that name is empty


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
        raise UsageError(
            f"{path_text} does not exist: give a run directory (outputs/DATE/RUN_ID), "
            "a sweep directory (multirun/DATE/ID) or a directory of runs."
        )
    if not path.is_dir():
        raise UsageError(f"{path_text} is a file, not a directory: give the run, sweep or repeat-set directory.")
    if is_run(path):
        # a run that ended before it had results (failed at start-up) has only its summary.json
        if not (path / "events.csv").is_file() and is_whole(read_summary(path)):
            raise UsageError(
                f"{path_text} has a summary.json but no events.csv: the run did not finish "
                "writing its results; rerun it."
            )
        return ResultSet(path, "run", [path])
    children = sorted((p for p in path.iterdir() if p.is_dir() and is_run(p)), key=_job_order)
    if any((path / name).is_file() for name in SWEEP_FILES):
        if not children:
            raise UsageError(
                f"{path_text} is a sweep directory without any finished job (no <job>/summary.json): nothing to read."
            )
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


def run_overrides(run_dir: Path, summary: Summary | None = None) -> list[str]:
    """The Hydra overrides a run was started with (summary.json, else .hydra/overrides.yaml)."""
    if summary is not None and summary.overrides is not None:
        return list(summary.overrides)
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        data = records.read_yaml(path) or []
        if not isinstance(data, list):
            raise UsageError(f"{path} holds {brief(data)}, not a list of overrides: {records.DAMAGED}.")
        return [str(o) for o in data]
    return []


def sweep_keys(sweep_dir: Path, job_dirs: list[Path]) -> list[str]:
    """The keys a sweep varied: its sweep overrides (multirun.yaml), else those whose values
    differ between jobs."""
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        data = records.read_yaml(multirun)
        hydra = data.get("hydra") if isinstance(data, dict) else None
        task = ((hydra.get("overrides") or {}) if isinstance(hydra, dict) else {}).get("task")
        if task is not None:
            if not isinstance(task, list):
                raise UsageError(
                    f"{multirun}: hydra.overrides.task is {brief(task)}, not a list of overrides: the "
                    "sweep's record is damaged."
                )
            return swept_keys_of([str(t) for t in task], multirun)
    values: dict[str, set[str]] = {}
    per_job = [parse_overrides(run_overrides(job)) for job in job_dirs]
    for overrides in per_job:
        for key in overrides:
            values.setdefault(key, set())
    for overrides in per_job:
        for key in values:
            values[key].add(overrides.get(key, UNSET))
    return [key for key, seen in values.items() if len(seen) > 1]


def swept_keys_of(task_overrides: list[str], source: Path | None = None) -> list[str]:
    """The keys of the sweep overrides (`a=1,2`, `range(...)`, `choice(...)`) in a multirun's task overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(task_overrides)
    except HydraException as exc:
        if source is None:
            raise
        raise UsageError(
            f"{source}: its sweep overrides cannot be read ({' '.join(str(exc).split())}): the sweep's "
            "record is damaged."
        ) from None
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def read_summary(run_dir: Path) -> Summary:
    """A run's summary.json, which must have a status; UsageError naming the file otherwise."""
    path = run_dir / "summary.json"
    summary = Summary.read(path)
    if summary.status is None:
        raise UsageError(f"{path} has no status (got None): {records.DAMAGED}.")
    return summary


def scenario_label(summary: Summary) -> str:
    if summary.scenario is None:
        return "unknown"
    return "+".join(summary.scenario) if summary.scenario else "custom"


def run_failure(summary: Summary) -> str | None:
    """Why a run's figures are not whole (None for a run that ended `ok`): its status, and
    its failure's first line."""
    status, partial = summary.status, summary.partial is True
    if status == "ok" and not partial:
        return None
    crashed = summary.tracer_cost.crashed if summary.tracer_cost is not None else None  # a tracer's crash
    failure = str(summary.failure or crashed or "").strip().splitlines()
    what = f"status {status}" + (", partial" if partial and status == "ok" else "")
    if partial and status == "ok":
        what += " (units still running at the timeout were stopped: their figures are missing)"
    return what + (f": {failure[0][:300]}" if failure else "")


def is_whole(summary: Summary) -> bool:
    """A run whose figures are complete: it ended ok, or ok but over its loss limit."""
    return summary.status in USABLE_STATUSES and summary.partial is not True


def tracer_cpu(cost: TracerCost, run_dir: Path) -> tuple[float | None, float, float | None]:
    """(the tracer process's CPU s, its BPF programs' in-kernel run time s, wall s): over
    the measured window where recorded, else over the tracer's whole run. The BPF programs
    run in the traced processes' context, so their time is not in the process's CPU time;
    the kernel accounts it over the programs' lifetime (kernel.bpf_stats_enabled)."""
    window = cost.window if cost.window is not None and cost.window.cpu_s is not None else None
    cpu_s = window.cpu_s if window is not None else cost.cpu_s
    wall_s = window.wall_s if window is not None else None
    if wall_s is None:
        wall_s = cost.wall_s
    return cpu_s, bpf_run_time_s(cost, run_dir) or 0.0, wall_s


def bpf_run_time_s(cost: TracerCost, run_dir: Path) -> float | None:
    """The in-kernel run time of the tracer's BPF programs (a metric: checked here, as a
    metric may be any number)."""
    value = (cost.metrics or {}).get("bpf_run_time_s")
    if value is not None and not math.isfinite(value):
        raise UsageError(
            f"{run_dir / 'summary.json'}: tracer_cost.metrics.bpf_run_time_s is {brief(value)}, "
            f"not a number: {records.DAMAGED}."
        )
    return value


def cpu_floor_reason(cpu_s: float, bpf_s: float) -> str | None:
    """Why a tracer's CPU is too small to compare (None when it is not)."""
    total = cpu_s + bpf_s
    if total >= MIN_CPU_S:
        return None
    parts = f" ({_secs(cpu_s)} s in its process, {_secs(bpf_s)} s in its BPF programs in the kernel)" if bpf_s else ""
    return f"tracer used {_secs(total)} s of CPU{parts}, under the {MIN_CPU_S} s floor"


def _secs(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.1g}"


def run_metrics(summary: Summary, run_dir: Path = Path("."), expected_total: float | None = None) -> dict[str, object]:
    """The per-run figures `evt compare` compares, each None where the run did not record it
    with `why.<figure>` saying why; tracer CPU includes its BPF programs' in-kernel run time.
    `cpu_floor` says when that CPU is under MIN_CPU_S (apply_cpu_floor drops such figures).
    CPU per million events is per event the run generated (events.csv's expected totals)."""
    cost = summary.tracer_cost
    cpu_s, bpf_s, wall_s = tracer_cpu(cost, run_dir) if cost is not None else (None, 0.0, None)
    tracer = summary.tracer_name
    if tracer == "none":
        no_cpu = no_tracer = "run had no tracer (tracer=none)"
    elif cost is None:
        no_cpu = no_tracer = f"run recorded no cost of its tracer {tracer} (summary.json has no tracer_cost)"
    else:
        no_tracer, no_cpu = "", f"tracer {tracer}'s CPU time was not recorded (tracer_cost.cpu_s is empty)"
    total = None if cpu_s is None else cpu_s + bpf_s
    p95 = cost.window.cpu_p95_pct if cost is not None and cost.window is not None else None
    values: dict[str, tuple[float | None, str]] = {
        "tracer_cpu_per_mevents": (
            total / expected_total * 1e6 if total is not None and expected_total else None,
            no_cpu
            if total is None
            else "run generated no events (events.csv's expected totals 0)"
            if expected_total is not None
            else "run has no events.csv",
        ),
        "tracer_cpu_avg_pct": (
            100.0 * total / wall_s if total is not None and wall_s else None,
            no_cpu if total is None else f"tracer {tracer}'s wall time was not recorded",
        ),
        "tracer_cpu_p95_pct": (
            p95 if total is not None else None,
            no_cpu if total is None else f"tracer {tracer}'s CPU was not sampled (no cpu_p95_pct)",
        ),
        "peak_rss_bytes": (
            cost.peak_rss_bytes if cost is not None else None,
            no_tracer or f"tracer {tracer}'s peak RSS was not recorded",
        ),
        "total_ops_per_s": (summary.total_ops_per_s, "summary.json has no total_ops_per_s"),
        "start_skew_ms": (summary.start_skew_ms, "summary.json has no start_skew_ms"),
    }
    row: dict[str, object] = {name: value for name, (value, _) in values.items()}
    row.update({WHY + name: (why if value is None else None) for name, (value, why) in values.items()})
    row.update(
        tracer_cpu_s=total,
        tracer_bpf_s=bpf_s if cost is not None else None,
        cpu_floor=cpu_floor_reason(cpu_s, bpf_s) if cpu_s is not None else None,
    )
    return row


def apply_cpu_floor(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with their tracer CPU figures emptied where that CPU is under MIN_CPU_S
    (CPU time is counted in 10 ms clock ticks for user and system time each: under 0.2 s
    the rounding alone can reach 10%), each with that reason."""
    if runs.empty or "cpu_floor" not in runs.columns:
        return runs
    runs = runs.copy()
    under = runs["cpu_floor"].notna()
    for name in CPU_FIGURES:
        runs[WHY + name] = runs[WHY + name].astype(object)
        runs.loc[under & runs[name].notna(), WHY + name] = runs.loc[under & runs[name].notna(), "cpu_floor"]
        runs.loc[under, name] = None
    return runs


def run_identity(run_dir: Path, summary: Summary, keys: list[str]) -> dict[str, object]:
    overrides = parse_overrides(run_overrides(run_dir, summary))
    row: dict[str, object] = {
        "run_dir": str(run_dir),
        "run_id": summary.run_id,
        "status": summary.status,
        "scenario": scenario_label(summary),
        "whole": is_whole(summary),
        "failure": run_failure(summary),
    }
    row.update({key: overrides.get(key, UNSET) for key in keys})
    return row


def event_rows(
    run_dir: Path, identity: dict[str, object], summary: Summary, events: list[dict[str, object]] | None = None
) -> list[dict[str, object]]:
    """events.csv of one run as compare rows, each empty figure with `why.<figure>`."""
    tracer = summary.tracer_name
    rows = []
    for row in records.read_events(run_dir) if events is None else events:
        observed, expected, unit = row["observed"], row["expected"], row["unit"]
        if tracer == "none":
            uncounted = "run had no tracer (tracer=none)"
        elif tracer == "tracee":
            uncounted = (
                f"tracer tracee did not count {unit} (observed is empty in events.csv: tracee.output=none, "
                "its default, gives no per-event counts)"
            )
        else:
            uncounted = f"tracer {tracer} did not count {unit} (observed is empty in events.csv)"
        ratio = observed / expected if observed is not None and expected else None  # type: ignore[operator]
        figures = {
            "events_per_s": (row["events_per_s"], f"events.csv has no events_per_s for {unit} (it ran no ops)"),
            "loss_pct": (row["loss_pct"], uncounted),
            "observed_ratio": (ratio, uncounted if observed is None else f"{unit} had no expected events"),
        }
        rows.append(
            {
                **identity,
                "event": unit,
                "observed": observed,
                "expected": expected,
                **{name: value for name, (value, _) in figures.items()},
                **{WHY + name: (why if value is None else None) for name, (value, why) in figures.items()},
            }
        )
    return rows


def load(result: ResultSet, keys: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run: identity, status, per-run figures; one row per run and event:
    identity, events/s, loss %, observed/expected), each run read once. A run that did not
    end whole may lack events.csv (a job that failed before it had results); one that did
    must have it."""
    keys = result.sweep_keys if keys is None else keys
    runs, events = [], []
    for run_dir in result.run_dirs:
        summary = read_summary(run_dir)
        identity = run_identity(run_dir, summary, keys)
        rows: list[dict[str, object]] = []
        if (run_dir / "events.csv").is_file():
            rows = records.read_events(run_dir)
        elif identity["whole"]:
            raise UsageError(
                f"{run_dir} has a summary.json of status {summary.status} but no events.csv: the "
                "run's record is damaged: rerun it, or leave it out of the set."
            )
        expected = sum(x for r in rows if isinstance(x := r["expected"], int | float)) if rows else None
        runs.append({**identity, **run_metrics(summary, run_dir, expected)})
        events += event_rows(run_dir, identity, summary, rows)
    return pd.DataFrame(runs), pd.DataFrame(events)

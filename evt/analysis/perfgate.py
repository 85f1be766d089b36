"""Tracee's perf gate as an `evt compare` baseline.

Tracee's perf-gate workflow (docs/tracee.md, "Perf-gate branch") keeps one baseline
per machine architecture and scenario, `<uname -m>-<scenario>.json` (e.g.
`x86_64-smoke.json`), holding `peak_rss_kb`, `avg_cpu_pct` and `p95_cpu_pct` (plus
`updated_at`, `commit_sha`, `notes`), and fails when the current run's figure exceeds the
baseline's by more than 20 % (RSS) or 25 % (average and p95 CPU). evt records the same
figures, computed the same way, in summary.json (`tracer_cost`, from
`tracer/resource_timeseries.csv`). Given such a file as the baseline, `evt compare` takes
the candidate's runs of that scenario (on that architecture) and judges those three
figures with the gate's thresholds (`--threshold NAME=VALUE` changes one).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evt.analysis.compare import COMPARE_COLUMNS, Comparison, matched_rows, split_runs
from evt.analysis.thresholds import Settings
from evt.errors import UsageError, brief
from evt.results import rundirs

KIND = "perf-gate baseline"
# the gate's figures and how much each may grow, in % (current > baseline x 1.20 / 1.25 fails)
GATE_THRESHOLDS = {"peak_rss_kb": 20.0, "avg_cpu_pct": 25.0, "p95_cpu_pct": 25.0}


@dataclass(frozen=True)
class Baseline:
    path: Path
    arch: str  # uname -m of the machine it was measured on
    scenario: str
    figures: dict[str, float]


def is_baseline_file(path_text: str) -> bool:
    """A JSON file (a run, sweep or repeat set is a directory)."""
    path = Path(path_text)
    return path.is_file() and path.suffix == ".json"


def load_baseline(path_text: str) -> Baseline:
    """The baseline file, checked: its name says arch and scenario, its figures are numbers."""
    path = Path(path_text)
    arch, dash, scenario = path.stem.partition("-")
    if not dash or not arch or not scenario:
        raise UsageError(
            f"{path_text}: a file given as the baseline is a Tracee perf-gate baseline, named "
            f"<arch>-<scenario>.json (e.g. x86_64-smoke.json), got {path.name!r}: rename it after the "
            "machine (uname -m) and the scenario it measured, or give a run directory."
        )
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise UsageError(
            f"{path_text}: not a perf-gate baseline ({' '.join(str(exc).split())}): give a JSON "
            f"object with {', '.join(GATE_THRESHOLDS)}."
        ) from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{path_text}: not a perf-gate baseline: a JSON object with {', '.join(GATE_THRESHOLDS)} "
            f"is expected, got {brief(data)}."
        )
    figures = {}
    for name in GATE_THRESHOLDS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise UsageError(
                f"{path_text}: {name} is {brief(value) if name in data else 'missing'}; a perf-gate "
                f"baseline holds {', '.join(GATE_THRESHOLDS)} as non-negative numbers."
            )
        figures[name] = float(value)
    return Baseline(path, arch, scenario, figures)


def gate_settings(settings: Settings) -> Settings:
    """The gate's thresholds; one given with --threshold (or a thresholds file) replaces the
    gate's, `off` included (the figure is then shown, not judged)."""
    return Settings(
        {
            name: settings.thresholds.get(name) if name in settings.explicit else gate
            for name, gate in GATE_THRESHOLDS.items()
        },
        settings.alpha,
        settings.loss_stat,
        settings.explicit,
    )


def _candidate_rows(candidate: rundirs.ResultSet, baseline: Baseline, skipped: list[str]) -> pd.DataFrame:
    """One row per candidate run: identity, status and the gate's figures (None if not
    recorded, with why); runs measured on another architecture than the baseline's are
    left out, with a note."""
    rows = []
    for run_dir in candidate.run_dirs:
        summary = rundirs.read_summary(run_dir)
        arch = summary.host.arch if summary.host is not None else None
        if arch and arch != baseline.arch:
            skipped.append(
                f"candidate run {run_dir} not compared: it ran on {arch}, the baseline is for {baseline.arch}"
            )
            continue
        tracer, cost = summary.tracer_name, summary.tracer_cost
        figures = {name: cost.figure(name) if cost is not None else None for name in GATE_THRESHOLDS}
        why = (
            "run had no tracer (tracer=none)"
            if tracer == "none"
            else f"tracer {tracer}'s resource series was not recorded (summary.json tracer_cost has no {{}})"
        )
        rows.append(
            {
                **rundirs.run_identity(run_dir, summary, candidate.sweep_keys),
                **figures,
                **{rundirs.WHY + name: why.format(name) if value is None else None for name, value in figures.items()},
            }
        )
    return pd.DataFrame(rows)


def compare(
    baseline_path: str, candidate: rundirs.ResultSet, settings: Settings, allow_failed: bool = False
) -> Comparison:
    """The candidate's runs of the baseline's scenario against the baseline's figures: one row
    per figure (and per combination of swept values); exit code 1 when one grew beyond its
    threshold, the candidate lacks one, or a candidate run did not end ok."""
    baseline = load_baseline(baseline_path)
    keys = candidate.sweep_keys
    skipped: list[str] = []
    every = _candidate_rows(candidate, baseline, skipped)
    if not every.empty:
        every = every[every["scenario"] == baseline.scenario]
    cand, failed = split_runs(every, "candidate")
    have = [] if cand.empty else [n for n in GATE_THRESHOLDS if cand[n].notna().any()]
    if not have and not (failed and not allow_failed):  # (a scenario that ran and failed: exit 1, named)
        raise UsageError(
            f"nothing to compare: {candidate.path} has no usable run of scenario {baseline.scenario!r} on "
            f"{baseline.arch} with the perf gate's figures ({', '.join(GATE_THRESHOLDS)}"
            f"{'; ' + '; '.join(skipped) if skipped else ''}). The baseline {baseline.path.name} is for that scenario "
            f"and machine; runs with a tracer process (tracer=tracee, bpftrace, ...) record the figures."
        )
    combos = cand[keys].drop_duplicates().to_dict("records") if keys and not cand.empty else [{}]
    base = pd.DataFrame([{"scenario": baseline.scenario, **combo, **baseline.figures} for combo in combos])
    gate = gate_settings(settings)
    unmatched: list[str] = []
    rows = matched_rows("gate", ["scenario", *keys], base, cand, gate, unmatched, None) if not cand.empty else []
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=COMPARE_COLUMNS[:2] + keys + COMPARE_COLUMNS[2:])
    frame["event"] = ""  # the gate judges the run as a whole
    base_set = rundirs.ResultSet(baseline.path, "perfgate", [])
    return Comparison(base_set, candidate, gate, keys, frame, unmatched, skipped, failed, allow_failed)

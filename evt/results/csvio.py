"""CSV and JSON writing for run results: stable column order, one place."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from evt.results import summary

WORKER_COLUMNS = [
    "run_id",
    "event",
    "unit",
    "worker",
    "mode",
    "ops",
    "ok",
    "errors",
    "t_start_ns",
    "t_end_ns",
    "duration_s",
    "ops_per_s",
    "cpu_s",
    "pace_cpu_s",
    "late_s",
]
EVENT_COLUMNS = [
    "run_id",
    "scenario",
    "tracer",
    "runner",
    "event",
    "unit",
    "mode",
    "sleep",
    "instances",
    "total_ops",
    "ops_ok",
    "expected",
    "observed",
    "lost",
    "extra",
    "loss_pct",
    "events_per_s",
    "count",
    "relation",
    "check",
    "seen",
    "submit_attempts",
    "submit_failures",
]
# the perf gate's summary figures of the tracer's resource time series (resource_series.series_summary)
RESOURCE_FIGURES = list(summary.RESOURCE_FIGURES)
TRACER_COLUMNS = [
    "run_id",
    "tracer",
    "cpu_s",
    "cpu_share",
    "peak_rss_bytes",
    "wall_s",
    "lost_total",
    "crashed",
    "window_cpu_s",
    "window_wall_s",
    "window_cpu_avg_pct",
    "window_cpu_p95_pct",
    *RESOURCE_FIGURES,
]


def write_csv(frame: pd.DataFrame, path: Path, columns: list[str]) -> Path:
    """Write with the stable columns first (and any extra ones after, sorted)."""
    extra = sorted(c for c in frame.columns if c not in columns)
    frame = frame.reindex(columns=columns + extra)
    frame.to_csv(path, index=False)
    return path


def write_json(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path

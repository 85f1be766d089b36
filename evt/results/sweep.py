"""Sweep tables, written when a multirun ends (by evt.results.callbacks.SweepSummary).

sweep.csv: a row per job, failed ones included (status and error), with one column per
swept key (e.g. `stress.instances`) and the job's headline figures. sweep_events.csv: a
row per job and event, with the swept values in front of the job's events.csv columns.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pandas as pd

from evt.errors import UsageError
from evt.results import csvio, rundirs
from evt.results.summary import Detection, Summary, TracerCost

HEAD_COLUMNS = ["job", "host", "status", "error", "overrides"]
FIGURE_COLUMNS = [
    "total_ops",
    "ok",
    "errors",
    "total_ops_per_s",
    "start_skew_ms",
    "expected",
    "observed",
    "lost",
    "loss_pct",
    "tracer_cpu_s",
    "tracer_peak_rss_bytes",
    "run_dir",
]
INTEGER_COLUMNS = ["total_ops", "ok", "errors", "expected", "observed", "lost"]
NO_RECORD = "no_record"  # the job left no summary.json (killed before it could write one)


def job_summaries(sweep_dir: Path, name: str) -> list[tuple[Path, dict[str, Any], str]]:
    """Each job of a sweep that wrote the JSON record `name` (bench.json: evt bench's; a
    job's summary.json is read by job_summary): its directory, that JSON, and the Hydra
    overrides that made it (one string), in job order."""
    import yaml

    jobs = []
    for path in sorted(sweep_dir.glob(f"*/{name}"), key=lambda p: (len(p.parent.name), p.parent.name)):
        overrides_path = path.parent / ".hydra" / "overrides.yaml"
        overrides = " ".join(yaml.safe_load(overrides_path.read_text()) or []) if overrides_path.exists() else ""
        jobs.append((path.parent, json.loads(path.read_text()), overrides))
    return jobs


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job Hydra started: its directory has .hydra/ (or at least a summary)."""
    found = [p for p in sweep_dir.iterdir() if p.is_dir() and ((p / ".hydra").is_dir() or rundirs.is_run(p))]
    return sorted(found, key=lambda p: (len(p.name), p.name))


def sweep_columns(keys: list[str]) -> list[str]:
    return HEAD_COLUMNS + keys + FIGURE_COLUMNS


def job_host(job_dir: Path) -> str:
    """Where the job ran: the Ray node's host for a job brought home (remote.json), else here."""
    record = job_dir / "remote.json"
    node = (
        (json.loads(record.read_text()).get("node") or {}) if record.is_file() else {"hostname": socket.gethostname()}
    )
    return node.get("hostname") or "unknown (host lost)"


def job_summary(job_dir: Path) -> tuple[Summary, str]:
    """The job's summary.json and its status (NO_RECORD without one); a record that cannot
    be read gets a row too, its error saying why."""
    if not rundirs.is_run(job_dir):
        return Summary(), NO_RECORD
    try:
        summary = Summary.read(job_dir / "summary.json")
    except UsageError as exc:
        return Summary(failure=str(exc)), NO_RECORD
    return summary, summary.status if summary.status is not None else NO_RECORD


def job_row(job_dir: Path, keys: list[str]) -> dict[str, Any]:
    summary, status = job_summary(job_dir)
    given = rundirs.run_overrides(job_dir, summary)
    overrides = rundirs.parse_overrides(given)
    detection = summary.detection or Detection()
    cost = summary.tracer_cost or TracerCost()
    row: dict[str, Any] = {
        "job": job_dir.name,
        "host": job_host(job_dir),
        "status": status,
        "error": summary.failure or "",
        "overrides": " ".join(given),
    }
    row.update({key: overrides.get(key, rundirs.UNSET) for key in keys})
    row.update(
        {
            "total_ops": summary.total_ops,
            "ok": summary.ok,
            "errors": summary.errors,
            "total_ops_per_s": summary.total_ops_per_s,
            "start_skew_ms": summary.start_skew_ms,
            "expected": detection.expected,
            "observed": detection.observed,
            "lost": detection.lost,
            "loss_pct": detection.loss_pct,
            "tracer_cpu_s": cost.cpu_s,
            "tracer_peak_rss_bytes": cost.peak_rss_bytes,
            "run_dir": str(job_dir),
        }
    )
    return row


def sweep_frame(sweep_dir: Path, keys: list[str]) -> pd.DataFrame:
    rows = [job_row(job, keys) for job in job_dirs(sweep_dir)]
    frame = pd.DataFrame(rows, columns=sweep_columns(keys))
    return frame.astype(dict.fromkeys(INTEGER_COLUMNS, "Int64"))  # counts stay integers beside a failed job's blanks


def sweep_events_frame(sweep_dir: Path, keys: list[str]) -> pd.DataFrame:
    frames = []
    for row in sweep_frame(sweep_dir, keys).to_dict("records"):
        events_path = Path(row["run_dir"]) / "events.csv"
        if not events_path.is_file():
            continue
        events = pd.read_csv(events_path)
        front = pd.DataFrame({column: [row[column]] * len(events) for column in ["job", "host", *keys]})
        frames.append(pd.concat([front, events], axis=1))
    columns = ["job", "host", *keys, *csvio.EVENT_COLUMNS]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)


def write_tables(sweep_dir: Path, task_overrides: list[str]) -> pd.DataFrame:
    keys = rundirs.swept_keys_of(task_overrides)
    frame = sweep_frame(sweep_dir, keys)
    csvio.write_csv(frame, sweep_dir / "sweep.csv", sweep_columns(keys))
    events = sweep_events_frame(sweep_dir, keys)
    csvio.write_csv(events, sweep_dir / "sweep_events.csv", ["job", "host", *keys, *csvio.EVENT_COLUMNS])
    return frame

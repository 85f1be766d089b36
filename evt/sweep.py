"""Sweep aggregation as a Hydra callback: after a multirun, sweep.csv gets one row per
job, built from each job's summary.json and the overrides that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEP_COLUMNS = ["job", "overrides", "status", "total_ops", "ok", "errors", "total_ops_per_s",
                 "start_skew_ms", "expected", "observed", "lost", "loss_pct", "tracer_cpu_s",
                 "tracer_peak_rss_bytes", "run_dir"]


def job_summaries(sweep_dir: Path, name: str = "summary.json") -> list[tuple[Path, dict[str, Any], str]]:
    """Each job of a sweep that wrote `name`: its directory, that JSON, and the Hydra
    overrides that made it (one string), in job order."""
    import yaml

    jobs = []
    for path in sorted(sweep_dir.glob(f"*/{name}"), key=lambda p: (len(p.parent.name), p.parent.name)):
        overrides_path = path.parent / ".hydra" / "overrides.yaml"
        overrides = " ".join(yaml.safe_load(overrides_path.read_text()) or []) if overrides_path.exists() else ""
        jobs.append((path.parent, json.loads(path.read_text()), overrides))
    return jobs


def sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for job_dir, summary, overrides in job_summaries(sweep_dir):
        detection = summary.get("detection") or {}
        cost = summary.get("tracer_cost") or {}
        rows.append({
            "job": job_dir.name, "overrides": overrides, "status": summary.get("status"),
            "total_ops": summary.get("total_ops"), "ok": summary.get("ok"), "errors": summary.get("errors"),
            "total_ops_per_s": summary.get("total_ops_per_s"), "start_skew_ms": summary.get("start_skew_ms"),
            "expected": detection.get("expected"), "observed": detection.get("observed"),
            "lost": detection.get("lost"), "loss_pct": detection.get("loss_pct"),
            "tracer_cpu_s": cost.get("cpu_s"), "tracer_peak_rss_bytes": cost.get("peak_rss_bytes"),
            "run_dir": str(job_dir),
        })
    return rows


class SweepSummary(Callback):
    """Writes <sweep dir>/sweep.csv when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from evt import csvio

        sweep_dir = Path(config.hydra.sweep.dir)
        rows = sweep_rows(sweep_dir)
        csvio.write_csv(pd.DataFrame(rows, columns=SWEEP_COLUMNS), sweep_dir / "sweep.csv", SWEEP_COLUMNS)
        print(f"sweep: {len(rows)} jobs summarised in {sweep_dir / 'sweep.csv'}")

"""What a bench sweep (`evt bench -m tracer=a,b,c`, or any option swept) writes beside its
jobs: bench_sweep.csv (a row per bench), bench_sweep.md (the side-by-side table: max
sustainable events/s, what limits it, the CPU cost and workload slowdown at it) and
bench_sweep.png (every bench's loss and tracer CPU against the target rate on one figure,
each one's limit marked)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from evt.results import csvio
from evt.results.sweep import job_summaries

SWEEP_COLUMNS = [
    "job",
    "overrides",
    "label",
    "tracer",
    "status",
    "max_sustainable_eps",
    "target_eps_at_max",
    "limited_by",
    "first_bad_eps",
    "cpu_s_per_m_events_at_max",
    "slowdown_pct_at_max",
    "generator_max_eps",
    "precision_reached",
    "noisy",
    "rounds",
    "wall_s",
    "run_dir",
]
MARKDOWN_COLUMNS = [  # (title, bench_sweep.csv column, digits)
    ("tracer", "label", None),
    ("max sustainable events/s (achieved)", "max_sustainable_eps", 0),
    ("target events/s", "target_eps_at_max", 0),
    ("limited by", "limited_by", None),
    ("CPU s per million events at the limit", "cpu_s_per_m_events_at_max", 2),
    ("workload slowdown % at the limit", "slowdown_pct_at_max", 1),
    ("rounds", "rounds", 0),
    ("noisy", "noisy", None),
    ("status", "status", None),
]


def label(summary: dict[str, Any], overrides: str, common: set[str]) -> str:
    """The bench's name in the table and figure: its tracer, and what else its job set
    that not every job of the sweep set."""
    rest = [o for o in overrides.split() if not o.startswith("tracer=") and o not in common]
    return " ".join([str(summary.get("tracer")), *rest])


def sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    jobs = job_summaries(sweep_dir, "bench.json")
    common = set.intersection(*(set(overrides.split()) for _, _, overrides in jobs)) if len(jobs) > 1 else set()
    return [
        {column: summary.get(column) for column in SWEEP_COLUMNS}
        | {
            "job": job_dir.name,
            "overrides": overrides,
            "label": label(summary, overrides, common),
            "run_dir": str(job_dir),
        }
        for job_dir, summary, overrides in jobs
    ]


def _cell(value: object, digits: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if digits is not None and isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], load: tuple[float, float, float] | None) -> str:
    lines = [
        "| " + " | ".join(title for title, _, _ in MARKDOWN_COLUMNS) + " |",
        "|" + "|".join("---" if digits is None else "--:" for _, _, digits in MARKDOWN_COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column), digits) for _, column, digits in MARKDOWN_COLUMNS) + " |")
    notes = [
        "",
        "max sustainable: the rate the workload achieved with the tracer at the highest target within "
        "the limit (target: that target); limited by: the verdict at the first target over the limit; "
        "slowdown: the workload's rate with the tracer against without it; noisy: other work on the "
        "machine took more than the bench's threshold of cores during its rounds.",
    ]
    if load is not None:
        notes.append(
            f"Load average at the start of the sweep: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min)."
        )
    return "\n".join(lines + notes) + "\n"


def plot(sweep_dir: Path, rows: list[dict[str, Any]], path: Path) -> Path:
    """Each bench's rounds (bench.csv): loss % and tracer CPU % against the target rate."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (loss_ax, cpu_ax) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    limit = None
    for index, row in enumerate(rows):
        color = colors[index % len(colors)]
        try:
            frame = pd.read_csv(Path(row["run_dir"]) / "bench.csv").sort_values("target_eps")
        except (OSError, pd.errors.EmptyDataError):
            continue
        for ax, column in ((loss_ax, "loss_pct"), (cpu_ax, "tracer_cpu_pct")):
            values = pd.to_numeric(frame[column], errors="coerce")
            ax.plot(frame["target_eps"], values, marker="o", color=color, label=row["label"])
            if row.get("max_sustainable_eps"):
                ax.axvline(row["max_sustainable_eps"], color=color, linestyle="--", linewidth=1)
        limit = limit if limit is not None else _loss_limit(Path(row["run_dir"]))
    if limit is not None:
        loss_ax.axhline(limit, color="tab:red", linestyle=":", label=f"loss limit {limit:g}%")
    loss_ax.set_ylabel("loss %")
    cpu_ax.set_ylabel("tracer CPU % of a core")
    cpu_ax.set_xlabel("target events/s (dashed: each tracer's max sustainable rate)")
    if rows:
        cpu_ax.set_xscale("log")
        loss_ax.legend(loc="upper left", fontsize="small")
    fig.suptitle(f"evt bench sweep: {len(rows)} benches ({sweep_dir.name})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _loss_limit(job_dir: Path) -> float | None:
    import json

    try:
        return float(json.loads((job_dir / "bench.json").read_text())["settings"]["max_loss_pct"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(sweep_dir: Path, load: tuple[float, float, float] | None = None) -> list[dict[str, Any]]:
    """bench_sweep.csv, bench_sweep.md and bench_sweep.png in the sweep's directory."""
    rows = sweep_rows(sweep_dir)
    csvio.write_csv(pd.DataFrame(rows, columns=SWEEP_COLUMNS), sweep_dir / "bench_sweep.csv", SWEEP_COLUMNS)
    (sweep_dir / "bench_sweep.md").write_text(markdown(rows, load))
    plot(sweep_dir, rows, sweep_dir / "bench_sweep.png")
    return rows

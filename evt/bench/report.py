"""What `evt bench` shows and writes: the live table of rounds, bench.csv, bench.json (the
summary: max sustainable events/s and what limits it), bench.png, and bench_sweep.csv
after a multirun (`evt bench -m tracer=a,b`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.live import Live
from rich.table import Table

from evt.results import csvio
from evt.bench.search import OK, BenchSettings
from evt.results.sweep import job_summaries

BENCH_COLUMNS = ["round", "phase", "target_eps", "achieved_eps", "baseline_eps", "slowdown_pct", "expected",
                 "observed", "lost", "loss_pct", "tracer_cpu_s", "tracer_cpu_pct", "cpu_s_per_m_events",
                 "tracer_peak_rss_bytes", "kernel_s_per_m_events", "workload_cpu_us_per_event", "baseline_workload_cpu_us_per_event",
                 "verdict", "status", "run_dir", "baseline_run_dir"]
SWEEP_COLUMNS = ["job", "overrides", "tracer", "status", "max_sustainable_eps", "limited_by", "first_bad_eps",
                 "cpu_s_per_m_events_at_max", "slowdown_pct_at_max", "generator_max_eps", "rounds", "wall_s", "run_dir"]
TABLE_COLUMNS = [  # (title, bench.csv column, digits)
    ("#", "round", None), ("target ev/s", "target_eps", 0), ("with tracer", "achieved_eps", 0),
    ("without", "baseline_eps", 0), ("slowdown %", "slowdown_pct", 1), ("expected", "expected", None),
    ("observed", "observed", None), ("lost", "lost", None), ("loss %", "loss_pct", 2),
    ("tracer CPU %", "tracer_cpu_pct", 1), ("CPU s/M ev", "cpu_s_per_m_events", 2), ("verdict", "verdict", None),
]


def _fmt(value: object, digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and digits is not None:
        return f"{value:,.{digits}f}"
    if isinstance(value, (int, float)):
        return f"{value:,.0f}"
    return str(value)


class LiveTable:
    """The rounds so far as a rich table, refreshed while the bench runs."""

    def __init__(self, console: Console, tracer: str, settings: BenchSettings):
        self.console, self.tracer, self.settings = console, tracer, settings
        self.rows: list[dict[str, object]] = []
        self.caption = ""
        self.live = Live(self.table(), console=console, refresh_per_second=2, redirect_stdout=False,
                         redirect_stderr=False, transient=False)

    def table(self) -> Table:
        table = Table(title=f"evt bench: tracer {self.tracer}, rounds of {self.settings.round_duration_s:g} s, "
                            f"loss limit {self.settings.max_loss_pct:g}%", caption=self.caption)
        for title, _, _ in TABLE_COLUMNS:
            table.add_column(title, justify="left" if title == "verdict" else "right")
        for row in self.rows:
            table.add_row(*(_fmt(row[column], digits) for _, column, digits in TABLE_COLUMNS))
        return table

    def running(self, index: int, target: float, tracer: str) -> None:
        self.caption = f"round {index}: {target:,.0f} events/s with tracer {tracer} ..."
        self.live.update(self.table(), refresh=True)

    def add(self, row: dict[str, object]) -> None:
        self.rows.append(row)
        self.caption = ""
        self.live.update(self.table(), refresh=True)

    def __enter__(self) -> LiveTable:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.caption = ""
        self.live.update(self.table(), refresh=True)
        self.live.__exit__(*exc)


def summarize(tracer: str, settings: BenchSettings, workload: list[str], rows: list[dict[str, Any]],
              search_phase: str, status: str, failure: str | None, wall_s: float) -> dict[str, Any]:
    """bench.json: the limit, what sets it, the figures at it, and how it was searched."""
    good = [r for r in rows if r["verdict"] == OK]
    best = max(good, key=lambda r: r["target_eps"]) if good else None
    first_bad = min((r for r in rows if r["verdict"] != OK), key=lambda r: r["target_eps"], default=None)
    note = None
    if status == "ok" and first_bad is None:
        note = (f"no round went over the limit in {len(rows)} rounds (bench.max_rounds): "
                "the limit is above the last target")
    elif status == "ok" and best is None:
        note = "even the lowest target tried was over the limit: lower bench.start_rate"
    summary: dict[str, Any] = {
        "tracer": tracer, "status": status, "failure": failure,
        "max_sustainable_eps": best["target_eps"] if best else None,
        "limited_by": first_bad["verdict"] if first_bad else None,
        "first_bad_eps": first_bad["target_eps"] if first_bad else None,
    }
    for column in ("achieved_eps", "loss_pct", "tracer_cpu_pct", "cpu_s_per_m_events", "kernel_s_per_m_events",
                   "slowdown_pct", "tracer_peak_rss_bytes", "workload_cpu_us_per_event", "baseline_workload_cpu_us_per_event"):
        summary[f"{column}_at_max"] = best[column] if best else None
    summary.update({
        "generator_max_eps": max((r["baseline_eps"] for r in rows), default=None),
        "loss_measured": any(r["loss_pct"] is not None for r in rows),
        "note": note, "rounds": len(rows), "wall_s": wall_s, "workload": workload,
        "settings": {"round_duration_s": settings.round_duration_s, "start_rate": settings.start_rate,
                     "max_loss_pct": settings.max_loss_pct, "precision_pct": settings.precision_pct,
                     "max_rounds": settings.max_rounds, "cooldown": settings.cooldown, "search_phase": search_phase},
    })
    return summary


def write_all(run_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    frame = pd.DataFrame(rows, columns=BENCH_COLUMNS)
    csvio.write_csv(frame, run_dir / "bench.csv", BENCH_COLUMNS)
    csvio.write_json(summary, run_dir / "bench.json")
    plot(frame, summary, run_dir / "bench.png")


def plot(frame: pd.DataFrame, summary: dict[str, Any], path: Path) -> Path:
    """Loss % and tracer CPU % against the target rate, the limit marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (loss_ax, cpu_ax) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    frame = frame.sort_values("target_eps")
    good = frame["verdict"] == OK
    for ax, column, label in ((loss_ax, "loss_pct", "loss %"), (cpu_ax, "tracer_cpu_pct", "tracer CPU % of a core")):
        values = pd.to_numeric(frame[column], errors="coerce")
        ax.plot(frame["target_eps"], values, color="0.6", zorder=1)
        ax.scatter(frame["target_eps"][good], values[good], color="tab:green", label="within the limit", zorder=2)
        ax.scatter(frame["target_eps"][~good], values[~good], color="tab:red", label="over the limit", zorder=2)
        ax.set_ylabel(label)
        if summary["max_sustainable_eps"]:
            ax.axvline(summary["max_sustainable_eps"], color="tab:blue", linestyle="--",
                       label=f"max sustainable {summary['max_sustainable_eps']:,.0f} ev/s")
    loss_ax.axhline(summary["settings"]["max_loss_pct"], color="tab:red", linestyle=":", label="loss limit")
    if len(frame):
        loss_ax.legend(loc="upper left", fontsize="small")
        cpu_ax.set_xscale("log")
    else:
        loss_ax.text(0.5, 0.5, "no round completed", ha="center", va="center", transform=loss_ax.transAxes)
    cpu_ax.set_xlabel("target events/s")
    limited = f", limited by {summary['limited_by']}" if summary["limited_by"] else ""
    fig.suptitle(f"evt bench: tracer {summary['tracer']}{limited}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def print_summary(console: Console, summary: dict[str, Any], run_dir: Path) -> None:
    console.line()
    if summary["max_sustainable_eps"] is not None:
        limited = (f", limited by {summary['limited_by']} at {summary['first_bad_eps']:,.0f} events/s"
                   if summary["limited_by"] else "")
        console.print(
            f"max sustainable: {summary['max_sustainable_eps']:,.0f} events/s with tracer {summary['tracer']}"
            + limited + f"; at the max: tracer CPU {_fmt(summary['tracer_cpu_pct_at_max'], 1)}% of a core, "
            f"{_fmt(summary['cpu_s_per_m_events_at_max'], 2)} CPU s per million events, "
            f"workload slowdown {_fmt(summary['slowdown_pct_at_max'], 1)}%", highlight=False)
    if summary["note"]:
        console.print(f"note: {summary['note']}", highlight=False)
    if summary["failure"]:
        console.print(f"bench {summary['status']}: {summary['failure']}", style="red", highlight=False)
    elif summary["status"] != "ok":
        console.print(f"bench {summary['status']}", style="red", highlight=False)
    console.print(f"results: {run_dir} (bench.csv, bench.json, bench.png; one directory per stress run in rounds/)",
                  highlight=False)


def sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    return [{column: summary.get(column) for column in SWEEP_COLUMNS}
            | {"job": job_dir.name, "overrides": overrides, "run_dir": str(job_dir)}
            for job_dir, summary, overrides in job_summaries(sweep_dir, "bench.json")]


class BenchSweepSummary(Callback):
    """Writes <sweep dir>/bench_sweep.csv (a row per bench) when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = sweep_rows(sweep_dir)
        csvio.write_csv(pd.DataFrame(rows, columns=SWEEP_COLUMNS), sweep_dir / "bench_sweep.csv", SWEEP_COLUMNS)
        print(f"bench sweep: {len(rows)} benches summarised in {sweep_dir / 'bench_sweep.csv'}")

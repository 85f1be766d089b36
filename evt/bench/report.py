"""What `evt bench` shows and writes: the live table of rounds, bench.csv, bench.json (the
summary: max sustainable events/s, measured, and what limits it; how sure the search is;
how busy the machine was), bench.png (evt.analysis.plots.bench_rounds), and
the sweep's files after a multirun (`evt bench -m tracer=a,b`: evt/bench/sweep.py)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.live import Live
from rich.table import Table

from evt.bench import sweep as bench_sweep
from evt.bench.load import NOISY_CORES
from evt.bench.search import GOOD, OK, UNSTABLE, BenchSettings, RateSearch, majority_verdict
from evt.results import csvio

BENCH_COLUMNS = [
    "round",
    "phase",
    "repeat",
    "first",
    "target_eps",
    "achieved_eps",
    "baseline_eps",
    "slowdown_pct",
    "expected",
    "observed",
    "lost",
    "loss_pct",
    "tracer_cpu_s",
    "tracer_cpu_pct",
    "cpu_s_per_m_events",
    "tracer_peak_rss_bytes",
    "kernel_s_per_m_events",
    "workload_cpu_us_per_event",
    "baseline_workload_cpu_us_per_event",
    "verdict",
    "rate_decision",
    "other_cpu_cores",
    "load_avg_1m",
    "status",
    "run_dir",
    "baseline_run_dir",
]
TABLE_COLUMNS = [  # (title, bench.csv column, digits)
    ("#", "round", None),
    ("phase", "phase", None),
    ("target ev/s", "target_eps", 0),
    ("with tracer", "achieved_eps", 0),
    ("without", "baseline_eps", 0),
    ("slowdown %", "slowdown_pct", 1),
    ("expected", "expected", None),
    ("observed", "observed", None),
    ("lost", "lost", None),
    ("loss %", "loss_pct", 2),
    ("tracer CPU %", "tracer_cpu_pct", 1),
    ("CPU s/M ev", "cpu_s_per_m_events", 2),
    ("other cores", "other_cpu_cores", 2),
    ("verdict", "verdict", None),
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
        self.live = Live(
            self.table(),
            console=console,
            refresh_per_second=2,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=False,
        )

    def table(self) -> Table:
        table = Table(
            title=f"evt bench: tracer {self.tracer}, rounds of {self.settings.round_duration_s:g} s, "
            f"loss limit {self.settings.max_loss_pct:g}%",
            caption=self.caption,
        )
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


AT_MAX = (
    "target_eps",
    "achieved_eps",
    "baseline_eps",
    "loss_pct",
    "tracer_cpu_pct",
    "cpu_s_per_m_events",
    "kernel_s_per_m_events",
    "slowdown_pct",
    "tracer_peak_rss_bytes",
    "workload_cpu_us_per_event",
    "baseline_workload_cpu_us_per_event",
)


def _numbers(rows: list[dict[str, Any]], column: str) -> list[float]:
    values = (row.get(column) for row in rows)
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _spread(rows: list[dict[str, Any]], column: str) -> list[float] | None:
    values = _numbers(rows, column)
    return [min(values), max(values)] if values else None


def rate_record(search: RateSearch, rows: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """A rate's rounds in bench.json: how many, how many within the limit, its decision,
    and the spread of what they measured."""
    at_rate = [r for r in rows if r["target_eps"] == rate]
    return {
        "target_eps": rate,
        "rounds": len(at_rate),
        "ok_rounds": sum(r["verdict"] == OK for r in at_rate),
        "confirmed": search.confirmed(rate),
        "decision": search.decision(rate),
        "verdicts": [r["verdict"] for r in at_rate],
        "achieved_eps": _spread(at_rate, "achieved_eps"),
        "baseline_eps": _spread(at_rate, "baseline_eps"),
        "loss_pct": _spread(at_rate, "loss_pct"),
    }


def best_round(search: RateSearch, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The round within the limit at a rate decided within it (below the first bad rate)
    whose workload achieved the most, counted at most up to its target."""
    bad = search.bad
    good = [
        r
        for r in rows
        if r["verdict"] == OK and search.decision(r["target_eps"]) == GOOD and (bad is None or r["target_eps"] < bad)
    ]
    return max(good, key=lambda r: (min(r["achieved_eps"], r["target_eps"]), r["target_eps"]), default=None)


def search_note(search: RateSearch, settings: BenchSettings, status: str) -> str | None:
    if status != "ok" or search.precision_reached():
        return None
    good, bad = search.good, search.bad
    if bad is None:
        where = (
            f"no round went over the limit: the limit is above the last target ({good:,.0f} events/s)"
            if good is not None
            else "no round ran"
        )
    elif good is None:
        where = "even the lowest target tried was over the limit: lower bench.start_rate"
    elif not search.bracketed():
        where = f"the limit is between {good:,.0f} and {bad:,.0f} events/s, not yet within the precision"
    else:
        where = f"the limit is between {good:,.0f} and {bad:,.0f} events/s, not confirmed by repeats (bench.confirm)"
    return (
        f"bench.max_rounds={settings.max_rounds} stopped the search before "
        f"bench.precision={settings.precision_pct:g}%: {where}"
    )


def noise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    others, loads = _numbers(rows, "other_cpu_cores"), _numbers(rows, "load_avg_1m")
    return {
        "noisy": bool(others) and max(others) > NOISY_CORES,
        "noisy_threshold_cores": NOISY_CORES,
        "other_cpu_cores_max": max(others) if others else None,
        "other_cpu_cores_mean": sum(others) / len(others) if others else None,
        "load_avg_1m_max": max(loads) if loads else None,
    }


def summarize(
    tracer: str,
    settings: BenchSettings,
    workload: list[str],
    rows: list[dict[str, Any]],
    search: RateSearch,
    status: str,
    failure: str | None,
    wall_s: float,
) -> dict[str, Any]:
    """bench.json: the limit, measured, what sets it, the figures at it, how it was
    searched and confirmed, and how busy the machine was. Fills each row's rate_decision."""
    for row in rows:
        row["rate_decision"] = search.decision(row["target_eps"])
    best = best_round(search, rows)
    bad = search.bad
    at_bad = [r for r in rows if r["target_eps"] == bad]
    over = [r["verdict"] for r in at_bad if r["verdict"] != OK]
    summary: dict[str, Any] = {
        "tracer": tracer,
        "status": status,
        "failure": failure,
        # measured: what the workload achieved with the tracer, never above the round's target
        "max_sustainable_eps": min(best["achieved_eps"], best["target_eps"]) if best else None,
        "limited_by": majority_verdict(over) if over else None,
        "first_bad_eps": bad,
        "first_bad_decision": search.decision(bad) if bad is not None else None,
    }
    for column in AT_MAX:
        summary[f"{column}_at_max"] = best[column] if best else None
    good = search.good
    summary.update(
        {
            "precision_reached": search.precision_reached(),
            "last_good": rate_record(search, rows, good) if good is not None else None,
            "first_bad": rate_record(search, rows, bad) if bad is not None else None,
            "unstable": [
                rate_record(search, rows, rate) for rate in sorted(search.verdicts) if search.decision(rate) == UNSTABLE
            ],
            "generator_max_eps": max(_numbers(rows, "baseline_eps"), default=None),
            "loss_measured": any(r["loss_pct"] is not None for r in rows),
            "note": search_note(search, settings, status),
            "rounds": len(rows),
            "confirmation_rounds": sum(1 for r in rows if r.get("repeat")),
            "wall_s": wall_s,
            "workload": workload,
        }
        | noise(rows)
    )
    summary["settings"] = {**dataclasses.asdict(settings), "search_phase": search.phase()}
    return summary


def write_all(run_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from evt.analysis.plots import bench_rounds  # matplotlib only when the bench has run

    frame = pd.DataFrame(rows, columns=BENCH_COLUMNS)
    csvio.write_csv(frame, run_dir / "bench.csv", BENCH_COLUMNS)
    csvio.write_json(summary, run_dir / "bench.json")
    bench_rounds(frame, summary, run_dir / "bench.png")


def _rate_text(record: dict[str, Any]) -> str:
    spread = record["achieved_eps"]
    achieved = f", achieved {spread[0]:,.0f}-{spread[1]:,.0f} events/s with the tracer" if spread else ""
    return (
        f"{record['target_eps']:,.0f} events/s: {record['ok_rounds']} of {record['rounds']} rounds within "
        f"the limit ({', '.join(record['verdicts'])}){achieved}"
    )


def print_summary(console: Console, summary: dict[str, Any], run_dir: Path) -> None:
    console.line()
    if summary["max_sustainable_eps"] is not None:
        limited = (
            f", limited by {summary['limited_by']} at {summary['first_bad_eps']:,.0f} events/s"
            + (" (unstable)" if summary["first_bad_decision"] == UNSTABLE else "")
            if summary["limited_by"]
            else ""
        )
        console.print(
            f"max sustainable: {summary['max_sustainable_eps']:,.0f} events/s achieved with tracer {summary['tracer']}"
            f" (target {summary['target_eps_at_max']:,.0f})"
            + limited
            + f"; at the max: tracer CPU {_fmt(summary['tracer_cpu_pct_at_max'], 1)}% of a core, "
            f"{_fmt(summary['cpu_s_per_m_events_at_max'], 2)} CPU s per million events, "
            f"workload slowdown {_fmt(summary['slowdown_pct_at_max'], 1)}%",
            highlight=False,
        )
    for key, what in (("last_good", "last good"), ("first_bad", "first bad")):
        if summary[key] is not None:
            console.print(f"{what}: {_rate_text(summary[key])}", highlight=False)
    for record in summary["unstable"]:
        console.print(f"unstable: {_rate_text(record)}; the search went on below it", style="yellow", highlight=False)
    console.print(f"precision reached: {'yes' if summary['precision_reached'] else 'no'}", highlight=False)
    if summary["noisy"]:
        console.print(
            f"noisy: rounds saw up to {summary['other_cpu_cores_max']:.2f} cores of other work (more than "
            f"{summary['noisy_threshold_cores']:g}; load average up to {_fmt(summary['load_avg_1m_max'], 2)}): "
            "these figures are not a quiet machine's",
            style="yellow",
            highlight=False,
        )
    if summary["note"]:
        console.print(f"note: {summary['note']}", highlight=False)
    if summary["failure"]:
        console.print(f"bench {summary['status']}: {summary['failure']}", style="red", highlight=False)
    elif summary["status"] != "ok":
        console.print(f"bench {summary['status']}", style="red", highlight=False)
    console.print(
        f"results: {run_dir} (bench.csv, bench.json, bench.png; one directory per stress run in rounds/)",
        highlight=False,
    )


class BenchSweepSummary(Callback):
    """Writes bench_sweep.csv, .md and .png in the sweep's directory when a multirun ends
    (evt/bench/sweep.py), with the load average taken when it started."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.load = os.getloadavg()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = bench_sweep.write(sweep_dir, getattr(self, "load", None))
        print(
            f"bench sweep: {len(rows)} benches summarised in {sweep_dir / 'bench_sweep.csv'}, bench_sweep.md "
            "and bench_sweep.png"
        )

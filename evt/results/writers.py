"""Result tables of a stress run (pandas) and the summary printed at the end.

workers.csv: a row per worker, its ops' CPU (`cpu_s`) apart from the CPU its pacing
spent waiting (`pace_cpu_s`) and the schedule it skipped (`late_s`). events.csv: a row
per unit (event): expected target events (ops x events per op), observed by the tracer,
lost (expected - observed when positive), extra (observed - expected when positive),
loss, whether `expected` is exact or a lower bound (`count`), how the ground truth
relates to the Tracee event (`relation`: catalog.RELATIONS), `check` (`miscounted` for
an exact unit that observed more than expected: over-counting can hide loss, and is a
wrong filter or ground truth in itself) and the tracer's own per-event counts where it
has them (Tracee's kernel submit attempts/failures). tracer.csv: the tracer's cost, its resource
figures as Tracee's perf gate computes them, and its metric deltas and maxima.
summary.json: the headline figures (evt.results.summary.Summary).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from evt.results import csvio
from evt.results.summary import SCHEMA_VERSION, Detection, LossGate, Summary, TracerCost, TracerIdentity
from evt.stress.plan import Plan
from evt.tracers.base import TracerReport
from evt.workload.protocol import TriggerResult

log = logging.getLogger("evt.results.writers")
MISCOUNTED = "miscounted"  # events.csv `check`: an exact unit observed more events than it made


def workers_frame(plan: Plan, results: dict[str, TriggerResult | None]) -> pd.DataFrame:
    rows = []
    for unit in plan.units:
        result = results.get(unit.name)
        if result is None:
            continue
        for w in result.per_worker:
            rows.append(
                {
                    "run_id": plan.run_id,
                    "event": unit.event,
                    "unit": unit.name,
                    "worker": w.worker,
                    "mode": unit.mode,
                    "ops": w.ops,
                    "ok": w.ok,
                    "errors": w.errors,
                    "t_start_ns": w.t_start_ns,
                    "t_end_ns": w.t_end_ns,
                    "duration_s": w.duration_s,
                    "ops_per_s": w.ops_per_s,
                    "cpu_s": w.cpu_s,
                    "pace_cpu_s": w.pace_cpu_s,
                    "late_s": w.late_s,
                }
            )
    return pd.DataFrame(rows, columns=csvio.WORKER_COLUMNS)


def events_frame(
    plan: Plan, results: dict[str, TriggerResult | None], report: TracerReport | None, scenario: str = "custom"
) -> pd.DataFrame:
    """A row per unit; `scenario` is the run's scenario names joined by "+" ("custom" for -e only)."""
    rows = []
    observed_by_unit = report.observed if report is not None else None
    per_unit = (report.per_unit if report is not None else None) or {}
    for unit in plan.units:
        result = results.get(unit.name)
        ops_ok = result.ok if result else 0
        expected = ops_ok * unit.target.per_op
        # a unit missing from the tracer's counts is an event this tracer does not see
        observed = observed_by_unit.get(unit.name) if observed_by_unit is not None else None
        seen = report.seen.get(unit.name) if report is not None and report.seen is not None else None
        lost = extra = loss_pct = check = None
        if observed is not None:
            lost, extra = max(expected - observed, 0), max(observed - expected, 0)
            loss_pct = (100.0 * lost / expected) if expected else 0.0
            check = MISCOUNTED if extra and unit.target.exact else "ok"
        duration = result.duration_s if result else 0.0
        rows.append(
            {
                "run_id": plan.run_id,
                "scenario": scenario,
                "tracer": plan.tracer,
                "runner": plan.runner,
                "event": unit.event,
                "unit": unit.name,
                "mode": unit.mode,
                "sleep": unit.sleep,
                "instances": unit.instances,
                "total_ops": unit.total_ops,
                "ops_ok": ops_ok,
                "expected": expected,
                "observed": observed,
                "lost": lost,
                "extra": extra,
                "loss_pct": loss_pct,
                "events_per_s": (expected / duration) if duration > 0 else None,
                "count": "exact" if unit.target.exact else "lower_bound",
                "relation": unit.target.relation,
                "check": check,
                "seen": seen,
                "submit_attempts": per_unit.get(unit.name, {}).get("submit_attempts"),
                "submit_failures": per_unit.get(unit.name, {}).get("submit_failures"),
            }
        )
    frame = pd.DataFrame(rows, columns=csvio.EVENT_COLUMNS)
    for column in ("submit_attempts", "submit_failures"):  # whole numbers, empty where none
        frame[column] = frame[column].astype("Int64")
    return frame


def tracer_frame(plan: Plan, report: TracerReport | None, window: dict | None = None) -> pd.DataFrame:
    """The tracer's cost over its whole run, and (`window_*`) over the measured window."""
    if report is None:
        return pd.DataFrame([], columns=csvio.TRACER_COLUMNS)
    row: dict[str, object] = {
        "run_id": plan.run_id,
        "tracer": report.tracer,
        "cpu_s": report.cpu_s,
        "cpu_share": (report.cpu_s / report.wall_s) if report.cpu_s is not None and report.wall_s else None,
        "peak_rss_bytes": report.peak_rss_bytes,
        "wall_s": report.wall_s,
        "lost_total": report.lost_total,
        "crashed": report.crashed or "",
    }
    row.update({f"window_{k}": v for k, v in (window or {}).items()})
    row.update({k: (report.resources or {}).get(k) for k in csvio.RESOURCE_FIGURES})
    row.update({f"lost.{k}": v for k, v in report.lost.items()})
    row.update({f"metric.{k}": v for k, v in report.metrics.items()})
    return pd.DataFrame([row])


def start_skew_ms(results: dict[str, TriggerResult | None]) -> float | None:
    """Spread of the units' first-op times: how simultaneous the start was."""
    firsts = []
    for result in results.values():
        if result:
            starts = [w.t_start_ns for w in result.per_worker if w.t_start_ns]
            if starts:
                firsts.append(min(starts))
    return (max(firsts) - min(firsts)) / 1e6 if len(firsts) >= 2 else (0.0 if firsts else None)


def summarize(
    plan: Plan,
    workers: pd.DataFrame,
    events: pd.DataFrame,
    report: TracerReport | None,
    results: dict[str, TriggerResult | None],
    extra: dict,
    window: dict | None = None,
) -> Summary:
    """The headline figures; `extra` is the session's record of the run (provenance,
    timings, outcome), in summary.json's keys; `window` is the tracer's CPU over the measured
    window (release to the units' end, evt.stress.timeseries), recorded beside its whole-run
    figures."""
    ok = int(workers["ok"].sum()) if len(workers) else 0
    span = (workers["t_end_ns"].max() - workers["t_start_ns"].min()) / 1e9 if len(workers) else 0.0
    summary = Summary(
        run_id=plan.run_id,
        runner=plan.runner,
        tracer=TracerIdentity(name=plan.tracer),
        units=len(plan.units),
        workers=len(workers),
        total_ops=plan.total_ops,
        ok=ok,
        errors=int(workers["errors"].sum()) if len(workers) else 0,
        duration_s=float(span),
        total_ops_per_s=(ok / span) if span > 0 else 0.0,
        # the ops' CPU only; what pacing cost waiting is apart (workers_pace_cpu_s)
        workers_cpu_s=float(workers["cpu_s"].sum()) if len(workers) else 0.0,
        workers_pace_cpu_s=float(workers["pace_cpu_s"].sum()) if len(workers) else 0.0,
        workers_late_s=float(workers["late_s"].sum()) if len(workers) else 0.0,
        start_skew_ms=start_skew_ms(results),
        detection=detection(events),
        tracer_cost=tracer_cost(report, window) if report is not None else None,
    )
    summary.update(extra)
    return summary


def tracer_cost(report: TracerReport, window: dict | None) -> TracerCost:
    """The tracer's cost: its whole run, the measured window, its resource series' figures."""
    resources = dict(report.resources) if report.resources is not None else dict.fromkeys(csvio.RESOURCE_FIGURES)
    return TracerCost.of(
        {
            "cpu_s": report.cpu_s,
            "peak_rss_bytes": report.peak_rss_bytes,
            "wall_s": report.wall_s,
            "cpu_share": (report.cpu_s / report.wall_s) if report.cpu_s is not None and report.wall_s else None,
            "lost": report.lost,
            "metrics": report.metrics,
            "crashed": report.crashed,
            "window": window,
            **resources,
        }
    )


def detection(events: pd.DataFrame) -> Detection | None:
    """The run's detection totals over the units this tracer counts (None: it counts none).
    `exact` is false, with the reasons in `why_not_exact`, when a unit's count is a lower
    bound, its relation to the event is not exact, or an exact unit observed more than it
    made (miscounted)."""
    counted = events[events["observed"].notna()]
    if not len(counted):
        return None
    expected, observed = int(counted["expected"].sum()), int(counted["observed"].sum())
    lost = int(counted["lost"].sum())
    rows = counted.to_dict("records")
    # exact: every count is exact, stands exactly for its event (relation), and was not exceeded
    reasons = [f"{row['unit']}: its count is a lower bound" for row in rows if row["count"] != "exact"]
    reasons += [
        f"{row['unit']}: its count's relation to the event is {row['relation']}"
        for row in rows
        if row["relation"] != "exact"
    ]
    reasons += [
        f"{row['unit']}: observed {int(row['observed']):,} events where exactly {int(row['expected']):,} "
        f"were made ({int(row['extra']):,} extra: {MISCOUNTED})"
        for row in rows
        if row["check"] == MISCOUNTED
    ]
    return Detection(
        expected=expected,
        observed=observed,
        lost=lost,
        extra=int(counted["extra"].sum()),
        loss_pct=(100.0 * lost / expected) if expected else 0.0,
        exact=not reasons,
        why_not_exact="; ".join(reasons) or None,
    )


def apply_loss_gate(summary: Summary, max_loss_pct: float | None) -> bool:
    """stress.max_loss_pct as a CI gate: records the verdict; False when the loss exceeds
    the limit. Runs without counts (tracer=none, Tracee without JSON output) record
    that the gate could not be applied and pass."""
    if max_loss_pct is None:
        return True
    limit = float(max_loss_pct)
    if summary.detection is None or summary.detection.loss_pct is None:
        summary.max_loss_pct = LossGate(limit=limit, passed=None, why="no event counts in this run")
        return True
    passed = summary.detection.loss_pct <= limit
    summary.max_loss_pct = LossGate(limit=limit, passed=passed)
    return passed


def write_failure_summary(cfg, run_dir: Path, status: str, failure: str, exit_code: int) -> None:
    """summary.json of a job that ended before it had results (bad input, an error, a bug):
    a sweep still gets a row for it, with the reason."""
    from evt.results import provenance
    from evt.stress.request import scenario_names

    try:
        record = provenance.record(scenario_names(cfg), str(cfg.tracer.name))
    except Exception:  # the config itself may be what is wrong
        record = {
            "schema_version": SCHEMA_VERSION,
            "evt_version": provenance.evt_version(),
            "scenario": [],
            "overrides": provenance.job_overrides(),
            "host": provenance.host(),
            "tracer": {"name": str(cfg.tracer.name), "version": None},
        }
    summary = Summary(run_id=cfg.get("run_id"))
    summary.update(record)
    summary.update({"run_dir": str(run_dir), "status": status, "partial": True, "failure": failure})
    summary.exit_code = exit_code
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    csvio.write_json(summary.to_dict(), Path(run_dir) / "summary.json")


def write_all(
    run_dir: Path, workers: pd.DataFrame, events: pd.DataFrame, tracer: pd.DataFrame, summary: Summary
) -> None:
    csvio.write_csv(workers, run_dir / "workers.csv", csvio.WORKER_COLUMNS)
    csvio.write_csv(events, run_dir / "events.csv", csvio.EVENT_COLUMNS)
    csvio.write_csv(tracer, run_dir / "tracer.csv", csvio.TRACER_COLUMNS)
    csvio.write_json(summary.to_dict(), run_dir / "summary.json")


def _fmt(value: object, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _check_cell(check: object) -> str:
    if not isinstance(check, str):
        return "-"
    return f"[bold red]{check}[/]" if check == MISCOUNTED else check


TABLE_COLUMNS = ("event", "mode", "ops ok", "events/s", "expected", "observed", "lost", "extra", "loss %",
                 "count", "relation", "check")  # fmt: skip
LEFT_ALIGNED = ("event", "mode", "count", "relation", "check")


def events_table(events: pd.DataFrame, title: str) -> Table:
    """The result table: a row per event (unit)."""
    table = Table(title=title)
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in LEFT_ALIGNED else "right")
    for row in events.to_dict("records"):
        table.add_row(
            row["unit"],
            row["mode"],
            _fmt(row["ops_ok"]),
            _fmt(row["events_per_s"]),
            _fmt(row["expected"]),
            _fmt(None if pd.isna(row["observed"]) else int(row["observed"])),
            _fmt(None if pd.isna(row["lost"]) else int(row["lost"])),
            _fmt(None if pd.isna(row["extra"]) else int(row["extra"])),
            _fmt(None if pd.isna(row["loss_pct"]) else float(row["loss_pct"]), 2),
            row["count"],
            row["relation"],
            _check_cell(row["check"]),
        )
    return table


def tracer_cost_line(summary: Summary) -> str | None:
    """The tracer's cost in one line, or None when it measured none."""
    cost = summary.tracer_cost
    if cost is None or (cost.cpu_s is None and not cost.metrics):
        return None
    rss = cost.peak_rss_bytes
    kernel = (cost.metrics or {}).get("bpf_run_time_s")
    return (
        f"tracer {summary.tracer_name}: cpu {_fmt(cost.cpu_s, 2)} s "
        f"({_fmt((cost.cpu_share or 0) * 100, 1)}% of a core), peak RSS "
        f"{_fmt(rss / 2**20 if rss else None, 1)} MiB, lost {sum((cost.lost or {}).values()):,}"
        + (f", BPF programs in the kernel {kernel:.2f} s" if kernel is not None else "")
        + (f", crashed: {cost.crashed}" if cost.crashed else "")
    )


def print_summary(console: Console, events: pd.DataFrame, summary: Summary) -> None:
    """The table on the terminal; the headline lines through the run's log (evt.log too)."""
    console.print(events_table(events, f"evt stress {summary.run_id}: {summary.status}"))
    line = (
        f"total {summary.ok or 0:,} ops ok, {summary.errors or 0:,} errors, "
        f"{summary.total_ops_per_s or 0.0:,.0f} ops/s; start skew {_fmt(summary.start_skew_ms, 2)} ms"
    )
    log.info("%s", line)
    cost_line = tracer_cost_line(summary)
    if cost_line:
        log.info("%s", cost_line)
    metrics = (summary.tracer_cost.metrics if summary.tracer_cost is not None else None) or {}
    if "kernel_seen" in metrics:  # a tracer that knows what its probes saw apart from what it received
        console.print(
            f"tracer {summary.tracer_name}: its probes saw {int(metrics['kernel_seen']):,} events in the kernel, "
            f"{int(metrics['undelivered']):,} of them never reached its userspace"
        )
    detection = summary.detection
    if detection is not None:
        extra = f", {detection.extra:,} extra" if detection.extra else ""
        log.info(
            "%s",
            f"detection: observed {detection.observed or 0:,} of {detection.expected or 0:,} expected "
            f"({detection.loss_pct or 0.0:.2f}% lost{extra})",
        )
        if detection.why_not_exact:
            log.info("%s", f"detection is not exact: {detection.why_not_exact}")
    log.info("results: %s", summary.run_dir)

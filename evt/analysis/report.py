"""`evt report PATH [--out DIR]`: report.md and PNG plots of a run, a sweep or a
comparison directory written by `evt compare`.

A run: per-unit ops/s and the tracer's CPU % and RSS over time (timeseries.csv), expected
vs observed per event. A sweep: events/s, loss % and tracer CPU per million events
against each swept key. A comparison: each compared figure, baseline beside candidate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from evt.results import rundirs
from evt.errors import UsageError
from evt.analysis.thresholds import METRICS

MIB = 2**20


def _fmt(value: object, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + \
           ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows] + [""]


def _image(title: str, path: Path) -> list[str]:
    return [f"### {title}", "", f"![{title}]({path.name})", ""]


def run_section(run_dir: Path, out_dir: Path) -> list[str]:
    from evt.analysis import plots

    summary = rundirs.read_summary(run_dir)
    events = pd.read_csv(run_dir / "events.csv")
    tracer = summary.get("tracer")
    tracer_name = tracer.get("name") if isinstance(tracer, dict) else tracer
    tracer_version = (tracer.get("version") if isinstance(tracer, dict) else None) or "version not recorded"
    metrics = rundirs.run_metrics(summary)
    cost = summary.get("tracer_cost") or {}
    window = cost.get("window") or {}
    lines = [f"# evt report: run {summary.get('run_id')}", "",
             f"- status: {summary.get('status')}; scenario: {rundirs.scenario_label(summary)}; "
             f"tracer: {tracer_name} ({tracer_version}); runner: {summary.get('runner')}",
             f"- evt: {(summary.get('evt_version') or {}).get('version', '-')} "
             f"{(summary.get('evt_version') or {}).get('commit') or ''}; host: "
             f"{(summary.get('host') or {}).get('kernel', '-')}, {(summary.get('host') or {}).get('cpus', '-')} CPUs",
             f"- total {_fmt(summary.get('total_ops_per_s'))} ops/s; start skew {_fmt(summary.get('start_skew_ms'), 2)} ms",
             f"- tracer CPU: {_fmt(window.get('cpu_s'), 2)} s in the measured window (average "
             f"{_fmt(window.get('cpu_avg_pct'), 1)}%, p95 {_fmt(window.get('cpu_p95_pct'), 1)}% of a core), "
             f"{_fmt(cost.get('cpu_s'), 2)} s over its whole run; {_fmt(metrics['tracer_cpu_per_mevents'], 2)} s per "
             f"million events (compared from {rundirs.MIN_CPU_S} s of CPU up); peak RSS "
             f"{_fmt((metrics['peak_rss_bytes'] or 0) / MIB, 1)} MiB", ""]
    lines += _table(["event", "mode", "events/s", "expected", "observed", "loss %", "count"],
                    [[r["unit"], r["mode"], _fmt(r["events_per_s"]), _fmt(r["expected"]), _fmt(r["observed"]),
                      _fmt(r["loss_pct"], 2), r["count"]] for r in events.to_dict("records")])
    if len(events):
        lines += _image("Expected vs observed events", plots.expected_observed(events, out_dir / "events.png"))
    series_path = run_dir / "timeseries.csv"
    if series_path.is_file():
        series = pd.read_csv(series_path)
        units = [c[len("done."):] for c in series.columns if c.startswith("done.")]
        if len(series) >= 2 and units:
            lines += _image("Ops per second of each unit", plots.ops_rate(series, units, out_dir / "ops_rate.png"))
        if series["tracer_cpu_pct"].notna().any():
            lines += _image(f"Tracer {tracer_name}: CPU and memory",
                            plots.tracer_usage(series, str(tracer_name), out_dir / "tracer_usage.png"))
    else:
        lines += ["(no timeseries.csv in this run: no plots over time)", ""]
    return lines


def sweep_section(result: rundirs.ResultSet, out_dir: Path) -> list[str]:
    from evt.analysis import plots

    runs, events = rundirs.load(result)
    keys = result.sweep_keys
    lines = [f"# evt report: sweep {result.path}", "", f"- {result.describe()}; swept: {', '.join(keys) or 'nothing'}", ""]
    lines += _table(["run", *keys, "status", "total ops/s", "tracer CPU s / M events", "peak RSS MiB"],
                    [[Path(r["run_dir"]).name, *[r[k] for k in keys], r["status"], _fmt(r["total_ops_per_s"]),
                      _fmt(r["tracer_cpu_per_mevents"], 2), _fmt((r["peak_rss_bytes"] or 0) / MIB, 1)]
                     for r in runs.to_dict("records")])
    usable_runs = runs[runs["status"].isin(rundirs.USABLE_STATUSES)]
    usable_events = events[events["status"].isin(rundirs.USABLE_STATUSES)] if len(events) else events
    for key in keys:
        others = [k for k in keys if k != key]
        safe = key.replace("/", "_")
        lines += _image(f"Events/s, loss % and tracer CPU against {key}",
                        plots.sweep_figures(usable_events, usable_runs, key, others, out_dir / f"sweep_{safe}.png"))
    return lines


def comparison_section(compare_dir: Path, out_dir: Path) -> list[str]:
    from evt.analysis import plots

    meta = json.loads((compare_dir / "compare.json").read_text())
    rows = pd.read_csv(compare_dir / "compare.csv", keep_default_na=False, na_values=[""])
    keys = list(meta.get("sweep_keys") or [])
    lines = [f"# evt report: comparison {compare_dir}", "",
             f"- baseline: `{meta['baseline']['path']}` ({meta['baseline']['kind']}); "
             f"candidate: `{meta['candidate']['path']}` ({meta['candidate']['kind']})",
             f"- {len(meta.get('regressions') or [])} regression(s); full table: compare.md", ""]
    lines += [f"- REGRESSION: {line}" for line in meta.get("regressions") or []] + [""]
    rows["event"] = rows["event"].fillna("").astype(str)
    numeric_key = len(keys) == 1 and pd.to_numeric(rows[keys[0]], errors="coerce").notna().all()
    gated = [name for name, value in (meta.get("thresholds") or {}).items() if value is not None]
    lines += [f"Plotted: the gated figures ({', '.join(gated)}); every compared figure is in compare.md.", ""]
    for metric in [m for m in dict.fromkeys(rows["metric"]) if m in gated]:
        subset = rows[rows["metric"] == metric].copy()
        ylabel = METRICS[metric].label if metric in METRICS else metric
        if metric == "peak_rss_bytes":
            for column in [c for c in subset.columns if c.startswith(("baseline_", "candidate_")) and not c.endswith("_n")]:
                subset[column] = subset[column] / MIB
            ylabel = "tracer peak RSS (MiB)"
        path = out_dir / f"compare_{metric}.png"
        if numeric_key and len(subset) > 1:
            plots.compare_lines(subset, metric, ylabel, keys[0], path)
        else:
            subset["label"] = [" ".join([str(r[k]) for k in ["scenario", *keys]] + [r["event"] or "(run)"])
                               for r in subset.to_dict("records")]
            plots.compare_bars(subset, metric, ylabel, path)
        lines += _image(f"{metric}: baseline vs candidate", path)
    return lines


def locate(path_text: str) -> tuple[str, Path | rundirs.ResultSet]:
    """What `path_text` is: a comparison directory, a run or a sweep; UsageError otherwise."""
    path = Path(path_text)
    if path.is_dir() and (path / "compare.csv").is_file() and (path / "compare.json").is_file():
        return "comparison", path
    result = rundirs.locate(path_text)
    if result.kind == "repeats":
        raise UsageError(f"{path_text} holds {len(result.run_dirs)} separate runs, not one run, a sweep or a "
                         "comparison: report one run at a time, or `evt compare` two sets and report the comparison.")
    return result.kind, result


def run(path_text: str, out: str | None) -> int:
    kind, what = locate(path_text)
    out_dir = Path(out) if out else Path(path_text) / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file: give a directory for report.md and the plots.")
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(what, Path):  # a comparison's directory
        lines = comparison_section(what, out_dir)
    elif kind == "sweep":
        lines = sweep_section(what, out_dir)
    else:
        lines = run_section(what.path, out_dir)
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    images = [line[line.index("](") + 2:-1] for line in lines if line.startswith("![")]
    print(f"report: {out_dir / 'report.md'} and {len(images)} plot(s): {', '.join(images)}")
    return 0

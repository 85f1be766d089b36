"""`evt report PATH [--out DIR]`: report.md and PNG plots of a run, a sweep or a
comparison directory written by `evt compare`.

A run: per-unit ops/s and the tracer's CPU % and RSS over time (timeseries.csv), expected
vs observed per event. A sweep: events/s, loss % and tracer CPU per million events
against each swept key. A comparison: each compared figure, baseline beside candidate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from evt.analysis.thresholds import METRICS
from evt.errors import UsageError
from evt.results import records, rundirs
from evt.results.summary import EvtVersion, Host, Summary, TracerCost, Window

MIB = 2**20


def _fmt(value: object, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return (
        ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        + ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        + [""]
    )


def _image(title: str, path: Path) -> list[str]:
    return [f"### {title}", "", f"![{title}]({path.name})", ""]


def _cpu_line(summary: Summary, run_dir: Path, metrics: pd.Series) -> str:
    """The tracer's CPU: its process's in the measured window and over its whole run, its BPF
    programs' in the kernel, and per million events (or why that is not shown)."""
    cost = summary.tracer_cost or TracerCost()
    window = cost.window or Window()
    bpf = rundirs.bpf_run_time_s(cost, run_dir)
    per_m = metrics["tracer_cpu_per_mevents"]
    per_m_text = (
        f"{_fmt(per_m, 2)} s per million events (process and BPF programs)"
        if pd.notna(per_m)
        else f"per million events not shown: {metrics[rundirs.WHY + 'tracer_cpu_per_mevents']}"
    )
    return (
        f"- tracer CPU: {_fmt(window.cpu_s, 2)} s in the measured window (average "
        f"{_fmt(window.cpu_avg_pct, 1)}%, p95 {_fmt(window.cpu_p95_pct, 1)}% of a core), "
        f"{_fmt(cost.cpu_s, 2)} s over its whole run"
        + (
            f"; its BPF programs ran {bpf:.3f} s in the kernel (not in its process's CPU time)"
            if bpf is not None
            else ""
        )
        + f"; {per_m_text} (shown from {rundirs.MIN_CPU_S} s of CPU up)"
    )


def run_section(run_dir: Path, out_dir: Path) -> list[str]:
    from evt.analysis import plots

    summary = rundirs.read_summary(run_dir)
    rows = records.read_events(run_dir)
    events = pd.DataFrame(rows)
    tracer_name = summary.tracer_name
    tracer_version = (summary.tracer.version if summary.tracer is not None else None) or "version not recorded"
    expected = sum(x for r in rows if isinstance(x := r["expected"], int | float))  # events.csv's numbers
    metrics = rundirs.apply_cpu_floor(pd.DataFrame([rundirs.run_metrics(summary, run_dir, expected)])).iloc[0]
    rss = metrics["peak_rss_bytes"]
    failure = rundirs.run_failure(summary)
    evt, host = summary.evt_version or EvtVersion(), summary.host or Host()
    peak_rss = (
        _fmt(rss / MIB, 1) + " MiB" if pd.notna(rss) else "not shown: " + str(metrics[rundirs.WHY + "peak_rss_bytes"])
    )
    lines = [
        f"# evt report: run {summary.run_id}",
        "",
        f"- status: {summary.status}; scenario: {rundirs.scenario_label(summary)}; "
        f"tracer: {tracer_name} ({tracer_version}); runner: {summary.runner}",
        *([f"- not whole: {failure}"] if failure and summary.status != "loss_exceeded" else []),
        f"- evt: {_text(evt.version)} {evt.commit or ''}; host: {_text(host.kernel)}, {_text(host.cpus)} CPUs",
        f"- total {_fmt(summary.total_ops_per_s)} ops/s; start skew {_fmt(summary.start_skew_ms, 2)} ms",
        _cpu_line(summary, run_dir, metrics),
        f"- peak RSS: {peak_rss}",
        "",
    ]
    lines += _table(
        ["event", "mode", "events/s", "expected", "observed", "loss %", "count"],
        [
            [
                r["unit"],
                r.get("mode", "-"),
                _fmt(r["events_per_s"]),
                _fmt(r["expected"]),
                _fmt(r["observed"]),
                _fmt(r["loss_pct"], 2),
                r.get("count", "-"),
            ]
            for r in rows
        ],
    )
    uncounted = [str(r["unit"]) for r in rows if r["observed"] is None]
    if uncounted:
        why = rundirs.event_rows(run_dir, {}, summary, [r for r in rows if r["observed"] is None])
        lines += [
            f'Not shown ("-"): observed and loss % of {", ".join(uncounted)}: '
            f"{'; '.join(dict.fromkeys(str(w[rundirs.WHY + 'loss_pct']) for w in why))}.",
            "",
        ]
    if len(events):
        lines += _image("Expected vs observed events", plots.expected_observed(events, out_dir / "events.png"))
    lines += _series_section(run_dir, out_dir, tracer_name)
    return lines


def _series_section(run_dir: Path, out_dir: Path, tracer_name: str) -> list[str]:
    from evt.analysis import plots

    series_path = run_dir / "timeseries.csv"
    if not series_path.is_file():
        return ["(no timeseries.csv in this run: no plots over time)", ""]
    try:
        series = pd.read_csv(series_path)
        numbers = series.apply(pd.to_numeric, errors="raise") if len(series) else series
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{series_path} is not a readable time series ({' '.join(str(exc).split())}): {records.DAMAGED}."
        ) from None
    lines: list[str] = []
    units = [c[len("done.") :] for c in numbers.columns if c.startswith("done.")]
    if len(numbers) >= 2 and units and "t_s" in numbers.columns:
        lines += _image("Ops per second of each unit", plots.ops_rate(numbers, units, out_dir / "ops_rate.png"))
    if "tracer_cpu_pct" in numbers.columns and numbers["tracer_cpu_pct"].notna().any():
        lines += _image(
            f"Tracer {tracer_name}: CPU and memory",
            plots.tracer_usage(numbers, str(tracer_name), out_dir / "tracer_usage.png"),
        )
    else:
        lines += ["(no tracer CPU samples in timeseries.csv: no plot of the tracer's CPU and memory)", ""]
    return lines


def _mib(value: object) -> str:
    return "-" if not isinstance(value, int | float) or pd.isna(value) else _fmt(value / MIB, 1)


def _not_shown(runs: pd.DataFrame, figures: dict[str, str]) -> list[str]:
    """One line per figure a table shows as "-": which runs, and why."""
    lines = []
    for name, label in figures.items():
        empty = runs[runs[name].isna()]
        if empty.empty:
            continue
        by_reason: dict[str, list[str]] = {}
        for r in empty.to_dict("records"):
            why = r.get(rundirs.WHY + name)
            if isinstance(r["failure"], str) and not r["whole"]:
                why = f"the run did not end ok ({r['failure']})"
            by_reason.setdefault(str(why) if isinstance(why, str) else "not recorded", []).append(
                Path(r["run_dir"]).name
            )
        lines += [
            f"- {label} not shown for run{'s' if len(names) > 1 else ''} {', '.join(names)}: {why}"
            for why, names in by_reason.items()
        ]
    return (['Not shown ("-" above, no point in the plots):', "", *lines, ""]) if lines else []


def sweep_section(result: rundirs.ResultSet, out_dir: Path) -> list[str]:
    from evt.analysis import plots

    runs, events = rundirs.load(result)
    runs = rundirs.apply_cpu_floor(runs)
    keys = result.sweep_keys
    lines = [
        f"# evt report: sweep {result.path}",
        "",
        f"- {result.describe()}; swept: {', '.join(keys) or 'nothing'}",
        "- tracer CPU is its process's and its BPF programs' run time in the kernel (where measured)",
        "",
    ]
    lines += _table(
        ["run", *keys, "status", "total ops/s", "tracer CPU s / M events", "peak RSS MiB"],
        [
            [
                Path(r["run_dir"]).name,
                *[r[k] for k in keys],
                r["status"],
                _fmt(r["total_ops_per_s"]),
                _fmt(r["tracer_cpu_per_mevents"], 2),
                _mib(r["peak_rss_bytes"]),
            ]
            for r in runs.to_dict("records")
        ],
    )
    lines += _not_shown(
        runs,
        {
            "tracer_cpu_per_mevents": "tracer CPU s / M events",
            "peak_rss_bytes": "peak RSS",
            "total_ops_per_s": "total ops/s",
        },
    )
    usable_runs = runs[runs["whole"].astype(bool)]
    usable_events = events[events["run_dir"].isin(set(usable_runs["run_dir"]))] if len(events) else events
    for key in keys:
        others = [k for k in keys if k != key]
        safe = key.replace("/", "_")
        lines += _image(
            f"Events/s, loss % and tracer CPU against {key}",
            plots.sweep_figures(usable_events, usable_runs, key, others, out_dir / f"sweep_{safe}.png"),
        )
    return lines


def read_comparison(compare_dir: Path) -> tuple[dict, pd.DataFrame]:
    """compare.json and compare.csv, checked (UsageError naming the file and what is wrong)."""
    from evt.analysis.compare import COMPARE_COLUMNS

    meta_path, csv_path = compare_dir / "compare.json", compare_dir / "compare.csv"
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, OSError) as exc:
        raise UsageError(
            f"{meta_path} cannot be read as JSON ({' '.join(str(exc).split())}): rerun `evt compare`."
        ) from None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(side), dict) for side in ("baseline", "candidate")):
        raise UsageError(f"{meta_path} is not what `evt compare` writes (no baseline and candidate objects): rerun it.")
    try:
        rows = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UsageError(f"{csv_path} cannot be read ({' '.join(str(exc).split())}): rerun `evt compare`.") from None
    needed = [c for c in COMPARE_COLUMNS[:17] if c not in rows.columns]
    if needed:
        raise UsageError(
            f"{csv_path} has no {', '.join(needed)} column{'s' if len(needed) > 1 else ''}: it is damaged "
            "or not written by `evt compare`; rerun it."
        )
    for column in [c for c in rows.columns if c.startswith(("baseline_", "candidate_"))] + ["change", "p_value"]:
        bad = rows[column].notna() & pd.to_numeric(rows[column], errors="coerce").isna()
        if bad.any():
            first = int(bad.to_numpy().argmax())  # the first bad row
            line = first + 2  # the header is line 1
            raise UsageError(
                f"{csv_path} line {line}: {column} is {rows[column].iloc[first]!r}, not a number: "
                "it is damaged; rerun `evt compare`."
            )
        rows[column] = pd.to_numeric(rows[column])
    return meta, rows


def comparison_section(compare_dir: Path, out_dir: Path) -> list[str]:
    meta, rows = read_comparison(compare_dir)
    keys = list(meta.get("sweep_keys") or [])
    failed = meta.get("failed_candidates") or []
    lines = [
        f"# evt report: comparison {compare_dir}",
        "",
        f"- baseline: `{meta['baseline'].get('path')}` ({meta['baseline'].get('kind')}); "
        f"candidate: `{meta['candidate'].get('path')}` ({meta['candidate'].get('kind')})",
        f"- {len(meta.get('regressions') or [])} regression(s); {len(failed)} candidate run(s) that did not end ok"
        f"{' (allowed)' if meta.get('allow_failed') else ''}"
        f"; exit code {meta.get('exit_code')}; full table: compare.md",
        "",
    ]
    lines += [f"- REGRESSION: {line}" for line in meta.get("regressions") or []]
    lines += [f"- FAILED: {line}" for line in failed]
    lines += [f"- not compared: {line}" for line in meta.get("missing") or []] + [""]
    rows["event"] = rows["event"].fillna("").astype(str)
    gated = [name for name, value in (meta.get("thresholds") or {}).items() if value is not None]
    lines += [f"Plotted: the gated figures ({', '.join(gated)}); every compared figure is in compare.md.", ""]
    for metric in [m for m in dict.fromkeys(rows["metric"]) if m in gated]:
        lines += _comparison_plot(rows[rows["metric"] == metric].copy(), metric, keys, out_dir)
    return lines


def _comparison_plot(subset: pd.DataFrame, metric: str, keys: list[str], out_dir: Path) -> list[str]:
    """One gated figure, baseline beside candidate; the rows a side has no value for, named."""
    from evt.analysis import plots

    subset["label"] = [
        " ".join([str(r[k]) for k in ["scenario", *keys]] + [r["event"] or "(run)"]) for r in subset.to_dict("records")
    ]
    empty = subset[subset["baseline_median"].isna() | subset["candidate_median"].isna()]
    notes = [
        f"- {r['label']}: {r.get('reason') if isinstance(r.get('reason'), str) else 'no value on a side'}"
        for r in empty.to_dict("records")
    ]
    notes = ([f"Not plotted for {metric} (a side has no value):", "", *notes, ""]) if notes else []
    subset = subset.drop(empty.index)
    if subset.empty:
        return notes
    ylabel = METRICS[metric].label if metric in METRICS else metric
    if metric == "peak_rss_bytes":
        for column in [c for c in subset.columns if c.startswith(("baseline_", "candidate_")) and not c.endswith("_n")]:
            subset[column] = subset[column] / MIB
        ylabel = "tracer peak RSS (MiB)"
    path = out_dir / f"compare_{metric}.png"
    numeric_key = len(keys) == 1 and pd.to_numeric(subset[keys[0]], errors="coerce").notna().all()
    if numeric_key and len(subset) > 1:
        plots.compare_lines(subset, metric, ylabel, keys[0], path)
    else:
        plots.compare_bars(subset, metric, ylabel, path)
    return _image(f"{metric}: baseline vs candidate", path) + notes


def locate(path_text: str) -> tuple[str, Path | rundirs.ResultSet]:
    """What `path_text` is: a comparison directory, a run or a sweep; UsageError otherwise."""
    path = Path(path_text)
    if path.is_dir() and (path / "compare.csv").is_file() and (path / "compare.json").is_file():
        return "comparison", path
    result = rundirs.locate(path_text)
    if result.kind == "repeats":
        raise UsageError(
            f"{path_text} holds {len(result.run_dirs)} separate runs, not one run, a sweep or a "
            "comparison: report one run at a time, or `evt compare` two sets and report the comparison."
        )
    return result.kind, result


def run(path_text: str, out: str | None) -> int:
    kind, what = locate(path_text)
    out_dir = Path(out) if out else Path(path_text) / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file: give a directory for report.md and the plots.")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(what, Path):  # a comparison's directory
            lines = comparison_section(what, out_dir)
        elif kind == "sweep":
            lines = sweep_section(what, out_dir)
        else:
            lines = run_section(what.path, out_dir)
    except UsageError:  # a damaged record: nothing written
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    images = [line[line.index("](") + 2 : -1] for line in lines if line.startswith("![")]
    print(f"report: {out_dir / 'report.md'} and {len(images)} plot(s): {', '.join(images)}")
    return 0

"""How a comparison is shown: the terminal table (rich) and the files written to the
output directory: compare.csv (every compared figure), compare.md (a table fit for a CI
job summary or a PR comment) and compare.json (what was compared, for `evt report`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evt.analysis.compare import IMPROVEMENT, INFO, MISSING, REGRESSION, SAME, Comparison, describe_key
from evt.analysis.thresholds import METRICS

STYLES = {REGRESSION: "bold red", IMPROVEMENT: "green", MISSING: "yellow"}
MD_MARKS = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement", MISSING: "⚠️ missing"}
# A terminal table longer than this shows only what changed (a 50-job sweep has ~900 rows)
TERMINAL_ROWS = 40


def fmt(value: Any, metric: str | None = None) -> str:  # a cell of a comparison row
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "peak_rss_bytes":
        return f"{float(value) / 2**20:,.1f} MiB"
    number = float(value)
    if abs(number) >= 100:
        return f"{number:,.0f}"
    return f"{number:,.3g}" if abs(number) < 1 else f"{number:,.2f}"


def fmt_side(row: dict, side: str) -> str:
    """The side's median [min–max] n=...; judged by its worst run: that first, the median beside it."""
    median = fmt(row[f"{side}_median"], row["metric"])
    if row[f"{side}_n"] > 1:
        spread = (
            f"[{fmt(row[f'{side}_min'], row['metric'])}–{fmt(row[f'{side}_max'], row['metric'])}] n={row[f'{side}_n']}"
        )
        if row.get("stat") == "worst":
            return f"worst {fmt(row[f'{side}_value'], row['metric'])}, median {median} {spread}"
        return f"{median} {spread}"
    return median


def fmt_change(row: dict) -> str:
    change = row["change"]
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return "-"
    unit = row["change_unit"]
    return f"{change:+.1f}%" if unit == "%" else f"{change:+.3g}{(' ' + unit) if unit else ''}"


def _place(comparison: Comparison, row: dict) -> str:
    columns = ["scenario", *comparison.keys] + (["event"] if row["scope"] == "event" else [])
    return describe_key(columns, tuple(row[c] for c in columns))


def regression_lines(comparison: Comparison) -> list[str]:
    """Each regression named, with both values and the threshold."""
    lines = []
    for row in comparison.regressions.to_dict("records"):
        worst = " (worst run)" if row.get("stat") == "worst" else ""
        lines.append(
            f"{row['metric']} regressed ({_place(comparison, row)}): baseline{worst} "
            f"{fmt(row['baseline_value'], row['metric'])}, candidate{worst} "
            f"{fmt(row['candidate_value'], row['metric'])} ({fmt_change(row)}; threshold "
            f"{comparison.settings.describe(row['metric'])})"
        )
    return lines


def missing_lines(comparison: Comparison) -> list[str]:
    """Each figure not compared, with the reason; one the gate needs says it fails the gate."""
    lost = set(comparison.lost_figures.index)
    lines = []
    for index, row in comparison.missing.iterrows():
        fails = "; the candidate lacks this gated figure: the gate fails" if index in lost else ""
        lines.append(f"{row['metric']} ({_place(comparison, row.to_dict())}) — {row['reason'] or 'no value'}{fails}")
    return lines


def partial_lines(comparison: Comparison) -> list[str]:
    """Figures compared on some of a side's runs only, and why the others did not count."""
    rows = comparison.rows[(comparison.rows["verdict"] != MISSING) & comparison.rows["reason"].notna()]
    return [f"{row['metric']} ({_place(comparison, row)}): {row['reason']}" for row in rows.to_dict("records")]


def failure_lines(comparison: Comparison) -> list[str]:
    allowed = " (allowed by --allow-failed)" if comparison.allow_failed else ""
    return [line + allowed for line in comparison.failed]


def headline(comparison: Comparison) -> str:
    """What the exit code says, in words."""
    parts = (
        [f"{len(comparison.regressions)} regression{'s' if len(comparison.regressions) != 1 else ''}"]
        if len(comparison.regressions)
        else []
    )
    if len(comparison.lost_figures):
        parts.append(f"{len(comparison.lost_figures)} gated figure(s) missing from the candidate")
    if comparison.failing_runs:
        parts.append(f"{len(comparison.failing_runs)} candidate run(s) did not end ok")
    return ", ".join(parts) if parts else "no regression"


def _where(comparison: Comparison, row: dict) -> list[str]:
    return [str(row[k]) for k in comparison.keys] + [row["event"] or "(run)"]


def _fmt_p(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.3f}"


def figure_columns(comparison: Comparison) -> list[str]:
    """The columns of the figures table, on the terminal and in compare.md."""
    return ["scenario", *comparison.keys, "event", "metric", "baseline", "candidate", "change", "threshold", "p",
            "verdict"]  # fmt: skip


def print_table(console: Console, comparison: Comparison) -> None:
    table = Table(title=f"evt compare: {comparison.baseline.path} → {comparison.candidate.path}")
    for column in figure_columns(comparison):
        table.add_column(column, justify="right" if column in ("baseline", "candidate", "change", "p") else "left")
    rows = comparison.rows.to_dict("records")
    shown = rows if len(rows) <= TERMINAL_ROWS else [r for r in rows if r["verdict"] not in (SAME, INFO)]

    def say(text: str, style: str | None = None) -> None:
        console.print(text, markup=False, highlight=False, style=style)

    for row in shown:
        style = STYLES.get(row["verdict"])
        table.add_row(
            row["scenario"],
            *_where(comparison, row),
            row["metric"],
            fmt_side(row, "baseline"),
            fmt_side(row, "candidate"),
            fmt_change(row),
            comparison.settings.describe(row["metric"]),
            _fmt_p(row["p_value"]),
            row["verdict"],
            style=style,
        )
    if shown:
        console.print(table)
    if len(shown) < len(rows):
        say(
            f"({len(rows) - len(shown)} of {len(rows)} rows unchanged or informational, not shown: "
            "all are in compare.md and compare.csv)"
        )
    for line in missing_lines(comparison):
        say(f"not compared: {line}", style="yellow")
    for line in partial_lines(comparison) + comparison.skipped + comparison.unmatched:
        say(f"note: {line}")
    for line in failure_lines(comparison):
        say(
            f"{'note' if comparison.allow_failed else 'FAILED'}: {line}",
            style=None if comparison.allow_failed else "bold red",
        )
    for line in regression_lines(comparison):
        say(f"REGRESSION: {line}", style="bold red")
    console.print(f"compare: {headline(comparison)}", markup=False, highlight=False)


def markdown(comparison: Comparison) -> str:
    settings = comparison.settings
    count = len(comparison.regressions)
    lines = [
        f"# evt compare: {'❌ ' if comparison.exit_code else '✅ '}{headline(comparison)}",
        "",
        f"- baseline: `{comparison.baseline.path}` ({comparison.baseline.describe()})",
        f"- candidate: `{comparison.candidate.path}` ({comparison.candidate.describe()})",
        "- thresholds: "
        + ", ".join(
            f"{name} {settings.describe(name)}" for name in METRICS if settings.thresholds.get(name) is not None
        ),
        f"- several runs per side: medians [min–max]; with at least 3 runs on each side a change is a regression "
        f"only when a one-sided Mann-Whitney U test gives p ≤ {settings.alpha:g}"
        + (
            "; loss is judged on each side's worst run (a lossy run is a finding, not noise)"
            if settings.loss_stat == "worst"
            else ""
        ),
        "",
    ]
    if count:
        lines += ["## Regressions", ""] + [f"- {line}" for line in regression_lines(comparison)] + [""]
    if comparison.failed:
        lines += (
            ["## Candidate runs that did not end ok", ""] + [f"- {line}" for line in failure_lines(comparison)] + [""]
        )
    notes = missing_lines(comparison) + partial_lines(comparison) + comparison.skipped + comparison.unmatched
    if notes:
        lines += ["## Not compared", ""] + [f"- {line}" for line in notes] + [""]
    header = figure_columns(comparison)
    lines += ["## Figures", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in comparison.rows.to_dict("records"):
        cells = [
            row["scenario"],
            *_where(comparison, row),
            row["metric"],
            fmt_side(row, "baseline"),
            fmt_side(row, "candidate"),
            fmt_change(row),
            settings.describe(row["metric"]),
            _fmt_p(row["p_value"]),
            MD_MARKS.get(row["verdict"], row["verdict"]),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write(comparison: Comparison, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison.rows.to_csv(out_dir / "compare.csv", index=False)
    (out_dir / "compare.md").write_text(markdown(comparison))
    meta = {
        "baseline": {
            "path": str(comparison.baseline.path),
            "kind": comparison.baseline.kind,
            "runs": [str(p) for p in comparison.baseline.run_dirs],
        },
        "candidate": {
            "path": str(comparison.candidate.path),
            "kind": comparison.candidate.kind,
            "runs": [str(p) for p in comparison.candidate.run_dirs],
        },
        "sweep_keys": comparison.keys,
        "thresholds": comparison.settings.thresholds,
        "alpha": comparison.settings.alpha,
        "loss_stat": comparison.settings.loss_stat,
        "regressions": regression_lines(comparison),
        "missing": missing_lines(comparison),
        "failed_candidates": comparison.failed,
        "allow_failed": comparison.allow_failed,
        "not_compared": missing_lines(comparison)
        + partial_lines(comparison)
        + comparison.skipped
        + comparison.unmatched,
        "exit_code": comparison.exit_code,
    }
    (out_dir / "compare.json").write_text(json.dumps(meta, indent=2) + "\n")


def run(
    baseline: str,
    candidate: str,
    threshold_items: list[str],
    thresholds_file: str | None,
    out: str | None,
    console: Console | None = None,
    allow_failed: bool = False,
    loss_stat: str = "worst",
) -> int:
    """`evt compare`: every input checked first (exit 2, nothing written), then compared. The
    baseline may also be a perf-gate baseline file of Tracee's (evt.analysis.perfgate)."""
    from evt.analysis import compare, perfgate, thresholds
    from evt.errors import UsageError
    from evt.results import rundirs

    settings = thresholds.parse(threshold_items, thresholds_file, loss_stat)
    gate = perfgate.is_baseline_file(baseline)  # Tracee's <arch>-<scenario>.json
    if gate:
        perfgate.load_baseline(baseline)
    baseline_set = None if gate else rundirs.locate(baseline)
    candidate_set = rundirs.locate(candidate)
    out_dir = Path(out) if out else compare.default_out_dir()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file: give a directory for compare.csv and compare.md.")
    if baseline_set is None:
        comparison = perfgate.compare(baseline, candidate_set, settings, allow_failed)
    else:
        comparison = compare.compare(baseline_set, candidate_set, settings, allow_failed)
    if console is None:  # a pipe or a CI log gets a table wide enough to read
        console = Console() if Console().is_terminal else Console(width=200)
    print_table(console, comparison)
    write(comparison, out_dir)
    console.print(f"written: {out_dir / 'compare.csv'}, {out_dir / 'compare.md'}", markup=False, highlight=False)
    return comparison.exit_code

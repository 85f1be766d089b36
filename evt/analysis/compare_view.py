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

from evt.analysis.compare import IMPROVEMENT, INFO, REGRESSION, SAME, Comparison, describe_key
from evt.analysis.thresholds import METRICS

STYLES = {REGRESSION: "bold red", IMPROVEMENT: "green"}
MD_MARKS = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement"}
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
    median = fmt(row[f"{side}_median"], row["metric"])
    if row[f"{side}_n"] > 1:
        low, high = fmt(row[f"{side}_min"], row["metric"]), fmt(row[f"{side}_max"], row["metric"])
        return f"{median} [{low}–{high}] n={row[f'{side}_n']}"
    return median


def fmt_change(row: dict) -> str:
    change = row["change"]
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return "-"
    unit = row["change_unit"]
    return f"{change:+.1f}%" if unit == "%" else f"{change:+.3g}{(' ' + unit) if unit else ''}"


def regression_lines(comparison: Comparison) -> list[str]:
    """Each regression named, with both values and the threshold."""
    lines = []
    for row in comparison.regressions.to_dict("records"):
        columns = ["scenario", *comparison.keys] + (["event"] if row["scope"] == "event" else [])
        where = describe_key(columns, tuple(row[c] for c in columns))
        lines.append(f"{row['metric']} regressed ({where}): baseline {fmt(row['baseline_median'], row['metric'])}, "
                     f"candidate {fmt(row['candidate_median'], row['metric'])} ({fmt_change(row)}; threshold "
                     f"{comparison.settings.describe(row['metric'])})")
    return lines


def _where(comparison: Comparison, row: dict) -> list[str]:
    return [str(row[k]) for k in comparison.keys] + [row["event"] or "(run)"]


def _fmt_p(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.3f}"


def print_table(console: Console, comparison: Comparison) -> None:
    table = Table(title=f"evt compare: {comparison.baseline.path} → {comparison.candidate.path}")
    for column in ["scenario", *comparison.keys, "event", "metric", "baseline", "candidate", "change",
                   "threshold", "p", "verdict"]:
        table.add_column(column, justify="right" if column in ("baseline", "candidate", "change", "p") else "left")
    rows = comparison.rows.to_dict("records")
    shown = rows if len(rows) <= TERMINAL_ROWS else [r for r in rows if r["verdict"] not in (SAME, INFO)]
    for row in shown:
        style = STYLES.get(row["verdict"])
        table.add_row(row["scenario"], *_where(comparison, row), row["metric"], fmt_side(row, "baseline"),
                      fmt_side(row, "candidate"), fmt_change(row), comparison.settings.describe(row["metric"]),
                      _fmt_p(row["p_value"]), row["verdict"], style=style)
    if shown:
        console.print(table)
    if len(shown) < len(rows):
        console.print(f"({len(rows) - len(shown)} of {len(rows)} rows unchanged or informational, not shown: "
                      "all are in compare.md and compare.csv)", markup=False, highlight=False)
    for line in comparison.skipped + comparison.unmatched:
        console.print(f"note: {line}", markup=False, highlight=False)
    for line in regression_lines(comparison):
        console.print(f"REGRESSION: {line}", style="bold red", markup=False, highlight=False)
    verdict = f"{len(comparison.regressions)} regression(s)" if comparison.exit_code else "no regression"
    console.print(f"compare: {verdict}")


def markdown(comparison: Comparison) -> str:
    settings = comparison.settings
    count = len(comparison.regressions)
    verdict = f"❌ {count} regression{'s' if count > 1 else ''}" if count else "✅ no regression"
    lines = [f"# evt compare: {verdict}",
             "",
             f"- baseline: `{comparison.baseline.path}` ({comparison.baseline.describe()})",
             f"- candidate: `{comparison.candidate.path}` ({comparison.candidate.describe()})",
             "- thresholds: " + ", ".join(f"{name} {settings.describe(name)}" for name in METRICS
                                          if settings.thresholds.get(name) is not None),
             f"- several runs per side: medians [min–max]; with at least 3 runs on each side a change is a regression "
             f"only when a one-sided Mann-Whitney U test gives p ≤ {settings.alpha:g}", ""]
    if count:
        lines += ["## Regressions", ""] + [f"- {line}" for line in regression_lines(comparison)] + [""]
    notes = comparison.skipped + comparison.unmatched
    if notes:
        lines += ["## Not compared", ""] + [f"- {line}" for line in notes] + [""]
    header = ["scenario", *comparison.keys, "event", "metric", "baseline", "candidate", "change", "threshold", "p", "verdict"]
    lines += ["## Figures", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in comparison.rows.to_dict("records"):
        cells = [row["scenario"], *_where(comparison, row), row["metric"], fmt_side(row, "baseline"),
                 fmt_side(row, "candidate"), fmt_change(row), settings.describe(row["metric"]),
                 _fmt_p(row["p_value"]), MD_MARKS.get(row["verdict"], row["verdict"])]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write(comparison: Comparison, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison.rows.to_csv(out_dir / "compare.csv", index=False)
    (out_dir / "compare.md").write_text(markdown(comparison))
    meta = {
        "baseline": {"path": str(comparison.baseline.path), "kind": comparison.baseline.kind,
                     "runs": [str(p) for p in comparison.baseline.run_dirs]},
        "candidate": {"path": str(comparison.candidate.path), "kind": comparison.candidate.kind,
                      "runs": [str(p) for p in comparison.candidate.run_dirs]},
        "sweep_keys": comparison.keys,
        "thresholds": comparison.settings.thresholds, "alpha": comparison.settings.alpha,
        "regressions": regression_lines(comparison),
        "not_compared": comparison.skipped + comparison.unmatched,
        "exit_code": comparison.exit_code,
    }
    (out_dir / "compare.json").write_text(json.dumps(meta, indent=2) + "\n")


def run(baseline: str, candidate: str, threshold_items: list[str], thresholds_file: str | None,
        out: str | None, console: Console | None = None) -> int:
    """`evt compare`: every input checked first (exit 2, nothing written), then compared. The
    baseline may also be a perf-gate baseline file of Tracee's (evt.analysis.perfgate)."""
    from evt.analysis import compare
    from evt.analysis import perfgate
    from evt.results import rundirs
    from evt.analysis import thresholds
    from evt.errors import UsageError

    settings = thresholds.parse(threshold_items, thresholds_file)
    gate = perfgate.is_baseline_file(baseline)  # Tracee's <arch>-<scenario>.json
    if gate:
        perfgate.load_baseline(baseline)
    baseline_set = None if gate else rundirs.locate(baseline)
    candidate_set = rundirs.locate(candidate)
    out_dir = Path(out) if out else compare.default_out_dir()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file: give a directory for compare.csv and compare.md.")
    if baseline_set is None:
        comparison = perfgate.compare(baseline, candidate_set, settings)
    else:
        comparison = compare.compare(baseline_set, candidate_set, settings)
    if console is None:  # a pipe or a CI log gets a table wide enough to read
        console = Console() if Console().is_terminal else Console(width=200)
    print_table(console, comparison)
    write(comparison, out_dir)
    console.print(f"written: {out_dir / 'compare.csv'}, {out_dir / 'compare.md'}", markup=False, highlight=False)
    return comparison.exit_code

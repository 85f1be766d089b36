#!/usr/bin/env python3
"""The figure tables of docs/benchmarks.md, generated from benchmarks/results/<name>.json.

Each benchmark has a block in the page between `<!-- bench:<name> -->` and
`<!-- /bench:<name> -->`; this replaces the block's content with the figures of its
results file (or says that none is recorded yet), so no figure in the page is typed by
hand. `make bench-docs` runs it; `--check` exits 1 when the page differs from what the
results files give (the unit tests run that).
Usage: benchmarks/docs_tables.py [--results DIR] [--page PATH] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
# above this one-minute load average at the start, a record is not a figure to publish
LOUD_LOAD = 1.5
BLOCK = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


def number(value) -> str:
    """A figure as the page shows it: thousands separated, 3 significant digits below 100."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def provenance(record: dict) -> str:
    host, evt = record.get("host") or {}, record.get("evt") or {}
    load = record.get("load_average_at_start") or []
    commit = (evt.get("commit") or "unknown")[:10] + (" (with local changes)" if evt.get("dirty") else "")
    size = "" if record.get("size") == "full" else f" **{record.get('size')} size: not a measurement**;"
    if load and load[0] > LOUD_LOAD:
        size += f" **load average {number(load[0])} at the start: to be re-measured, not a figure to quote**;"
    return (
        f"_{record.get('started_at', '?')}, {record.get('duration_s', '?')} s;{size} "
        f"{host.get('cpus', '?')} CPUs ({host.get('cpu_model') or '?'}), "
        f"{number((host.get('memory_bytes') or 0) / 2**30)} GiB, kernel {host.get('kernel', '?')}, "
        f"Docker {host.get('docker_version') or '–'}; load average at start "
        f"{' / '.join(number(x) for x in load) or '?'}; evt {commit}_"
    )


def figures_table(figures: list[dict]) -> list[str]:
    lines = ["| measure | evt | baseline (same run) | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        unit = f" {f['unit']}" if f.get("unit") else ""
        baseline = ""
        if f.get("baseline") is not None:
            baseline = f"{f.get('baseline_label') or ''}: {number(f['baseline'])}{unit}"
        met = {True: "yes", False: "**missed**", None: ""}[f.get("met")]
        lines.append(
            f"| {f['measure']} | {number(f['value'])}{unit} | {baseline} | {number(f.get('ratio'))} | "
            f"{f.get('target') or ''} | {met} |"
        )
    return lines


def other_table(table: dict) -> list[str]:
    lines = [
        f"{table['title']}:",
        "",
        "| " + " | ".join(table["columns"]) + " |",
        "| " + " | ".join("---" for _ in table["columns"]) + " |",
    ]
    lines += ["| " + " | ".join(number(cell) for cell in row) + " |" for row in table["rows"]]
    return lines


def render(name: str, results: Path) -> str:
    """The block's content for benchmark `name`."""
    path = results / f"{name}.json"
    if not path.is_file():
        return (
            f"No results recorded yet: `make bench` (or `.venv/bin/python benchmarks/{name}.py`) writes "
            f"`benchmarks/results/{name}.json`, then `make bench-docs` puts its figures here.\n"
        )
    record = json.loads(path.read_text())
    lines = [f"{record['title']}. {provenance(record)}", ""]
    if record.get("figures"):
        lines += [*figures_table(record["figures"]), ""]
    for table in record.get("tables", []):
        lines += [*other_table(table), ""]
    lines += [f"- {note}" for note in record.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def update(page_text: str, results: Path) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), results) + m.group(4), page_text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is not what the results give")
    args = parser.parse_args()
    text = args.page.read_text()
    updated = update(text, args.results)
    if args.check:
        if updated != text:
            print(f"{args.page}: figure tables differ from {args.results}: run `make bench-docs`", file=sys.stderr)
            return 1
        return 0
    args.page.write_text(updated)
    print(f"{args.page}: {len(BLOCK.findall(text))} figure tables from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Checked reading of one run's records (summary.json, events.csv) for `evt compare` and
`evt report`.

A record that cannot be read is bad input, not a result: every problem is a UsageError
(exit 2) naming the file and what is wrong with it (unreadable, not JSON, a missing
column, a value that is not a number), so a CI job never reads a damaged file as "the
candidate got slower".
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from evt.errors import UsageError, brief

# the columns of events.csv that compare and report read; the others are shown when present
EVENT_COLUMNS = ("unit", "expected", "observed", "loss_pct", "events_per_s")
EVENT_NUMBERS = ("expected", "observed", "loss_pct", "events_per_s", "ops_ok", "total_ops", "lost")
DAMAGED = "the run's record is damaged: rerun it, or leave it out of the set"


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not text ({exc.reason} at byte {exc.start}): {DAMAGED}.") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror or exc}): {DAMAGED}.") from None


def read_summary(run_dir: Path) -> dict:
    """summary.json as a mapping, with a status; UsageError naming the file otherwise."""
    path = run_dir / "summary.json"
    try:
        data = json.loads(_text(path))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}): {DAMAGED}.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} holds {brief(data)}, not a JSON object: {DAMAGED}.")
    if not isinstance(data.get("status"), str):
        raise UsageError(f"{path} has no status (got {brief(data.get('status'))}): {DAMAGED}.")
    for name in ("tracer_cost", "detection", "host"):
        if data.get(name) is not None and not isinstance(data[name], dict):
            raise UsageError(f"{path}: {name} is {brief(data[name])}, not a JSON object: {DAMAGED}.")
    return data


def number(summary: dict, run_dir: Path, *keys: str) -> float | None:
    """The number at summary[k1][k2]...; None when absent or null; UsageError when it is
    something else (a string, a list, NaN)."""
    value: object = summary
    for key in keys:
        if not isinstance(value, dict):
            raise UsageError(
                f"{run_dir / 'summary.json'}: {'.'.join(keys[: keys.index(key)])} is {brief(value)}, "
                f"not a JSON object: {DAMAGED}."
            )
        value = value.get(key)
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{run_dir / 'summary.json'}: {'.'.join(keys)} is {brief(value)}, not a number: {DAMAGED}.")
    return float(value)


def _cell_number(path: Path, line: int, column: str, text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"{path} line {line}: {column} is {brief(text)}, not a number: {DAMAGED}.")
    return value


def read_events(run_dir: Path) -> list[dict[str, object]]:
    """events.csv, one dict per unit: the numbers as floats (None where empty), the rest as text."""
    path = run_dir / "events.csv"
    text = _text(path)
    try:
        reader = csv.DictReader(text.splitlines())
        header = reader.fieldnames or []
        missing = [c for c in EVENT_COLUMNS if c not in header]
        if missing:
            raise UsageError(
                f"{path} has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} (its header: "
                f"{brief(','.join(header)) if header else 'none'}): {DAMAGED}."
            )
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise UsageError(
                    f"{path} line {line} has {'more' if None in row else 'fewer'} cells than its header: {DAMAGED}."
                )
            if not row["unit"].strip():
                raise UsageError(f"{path} line {line} has no unit: {DAMAGED}.")
            rows.append({k: (_cell_number(path, line, k, v) if k in EVENT_NUMBERS else v) for k, v in row.items()})
    except csv.Error as exc:
        raise UsageError(f"{path} is not a readable CSV ({exc}): {DAMAGED}.") from None
    return rows


def read_yaml(path: Path) -> object:
    """A YAML file a run or sweep holds (.hydra/overrides.yaml, multirun.yaml)."""
    import yaml

    try:
        return yaml.safe_load(_text(path))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML ({' '.join(str(exc).split())}): {DAMAGED}.") from None

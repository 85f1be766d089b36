"""Checked reading of a run's events.csv, the YAML files of a run or sweep and the text of
any record, for `evt compare` and `evt report` (summary.json is read by evt.results.summary).

A record that cannot be read is bad input, not a result: every problem is a UsageError
(exit 2) naming the file and what is wrong with it (unreadable, not JSON, a missing
column, a value that is not a number), so a CI job never reads a damaged file as "the
candidate got slower".
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from evt.errors import UsageError, brief

# the columns of events.csv that compare and report read; the others are shown when present
EVENT_COLUMNS = ("unit", "expected", "observed", "loss_pct", "events_per_s")
EVENT_NUMBERS = ("expected", "observed", "loss_pct", "events_per_s", "ops_ok", "total_ops", "lost")
DAMAGED = "the run's record is damaged: rerun it, or leave it out of the set"


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not text ({exc.reason} at byte {exc.start}): {DAMAGED}.") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror or exc}): {DAMAGED}.") from None


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
    text = read_text(path)
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
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML ({' '.join(str(exc).split())}): {DAMAGED}.") from None

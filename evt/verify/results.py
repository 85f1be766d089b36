"""Verdicts from the checker's counts, and the run's files: verify.csv (a row per kernel,
trigger and mode), verify.json (the same with every count) and verify.md (a table).

A case runs n and then 2n ops; the per-op figure is the difference of the two runs'
counts over the difference of their ops, so what a run costs once (forking its worker,
writing its script) is not counted as the op's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from evt.results.csvio import write_csv, write_json

COLUMNS = [
    "kernel",
    "release",
    "event",
    "mode",
    "hook",
    "declared_per_op",
    "per_op_is",
    "measured_per_op",
    "ground_truth_per_op",
    "verdict",
    "why",
    "ops",
    "hook_counts",
    "ground_truth_counts",
    "hook_note",
]


def per_op(counts: list[int] | None, ops: list[int]) -> float | None:
    if not counts or len(counts) != 2 or ops[1] == ops[0]:
        return None
    return round((counts[1] - counts[0]) / (ops[1] - ops[0]), 3)


def verdict(record: dict) -> tuple[str, str]:
    """(verdict, why) for one case record of the checker."""
    if record.get("unrunnable"):
        return "cannot_run", record["unrunnable"]
    if record.get("hook_missing"):
        return "cannot_run", f"hook: {record['hook_missing']}"
    runs = record.get("runs") or []
    failed = [r for r in runs if r.get("errors")]
    if not runs or failed:
        first = failed[0].get("first_error") if failed else "the case did not run"
        return "cannot_run", f"ops failed: {first}"
    measured = per_op(record.get("hook_counts"), record["ops"])
    declared = record["declared_per_op"]
    if not any(record.get("hook_counts") or []):
        return "no_event", "the hook never fired in the trigger's processes"
    if measured == declared:
        return "exact", ""
    if measured is not None and measured > declared and record.get("per_op_is") == "lower_bound":
        return "lower_bound", f"{measured:g} per op at the hook, the declared lower bound is {declared}"
    return "differs", f"{measured:g} per op at the hook, {declared} declared"


def rows(kernel: str, release: str, records: list[dict]) -> list[dict]:
    out = []
    for record in records:
        if record.get("type") != "case":
            continue
        outcome, why = verdict(record)
        out.append(
            {
                "kernel": kernel,
                "release": release,
                "event": record["event"],
                "mode": record["mode"],
                "hook": record["hook"],
                "declared_per_op": record["declared_per_op"],
                "per_op_is": record["per_op_is"],
                "measured_per_op": per_op(record.get("hook_counts"), record["ops"])
                if outcome != "cannot_run"
                else None,
                "ground_truth_per_op": per_op(record.get("ground_truth_counts"), record["ops"]),
                "verdict": outcome,
                "why": why,
                "ops": "/".join(map(str, record["ops"])),
                "hook_counts": "/".join(map(str, record.get("hook_counts") or [])),
                "ground_truth_counts": "/".join(map(str, record.get("ground_truth_counts") or [])),
                "hook_note": record.get("hook_note", ""),
            }
        )
    return out


def markdown(frame: pd.DataFrame, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "| kernel | event | mode | hook | declared/op | at hook/op | ground truth/op | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: list[Any] = list(frame.itertuples())  # namedtuples of the frame's columns
    for row in rows:
        hook = str(row.hook).split(" /")[0].replace("|", "\\|")
        measured = "" if pd.isna(row.measured_per_op) else f"{row.measured_per_op:g}"
        truth = "" if pd.isna(row.ground_truth_per_op) else f"{row.ground_truth_per_op:g}"
        outcome = row.verdict + (f" ({row.why})" if row.verdict == "cannot_run" else "")
        declared = f"{row.declared_per_op}" + ("+" if row.per_op_is == "lower_bound" else "")
        lines.append(
            f"| {row.release} | {row.event} | {row.mode} | `{hook}` | {declared} | {measured} | {truth} | {outcome} |"
        )
    return "\n".join(lines) + "\n"


def write(run_dir: Path, table: list[dict], meta: dict) -> pd.DataFrame:
    frame = pd.DataFrame(table, columns=COLUMNS)
    write_csv(frame, run_dir / "verify.csv", COLUMNS)
    write_json({**meta, "results": table}, run_dir / "verify.json")
    (run_dir / "verify.md").write_text(markdown(frame, f"evt verify {meta.get('date', '')}"))
    return frame


def regressions(table: list[dict], recorded: dict[tuple[str, str, str], str]) -> list[str]:
    """Cases whose verdict differs from the one recorded for that kernel name, event and mode."""
    found = []
    for row in table:
        before = recorded.get((row["kernel"], row["event"], row["mode"]))
        if before is not None and before != row["verdict"]:
            found.append(
                f"{row['event']} {row['mode']} on {row['kernel']}: {row['verdict']} "
                f"({row['why'] or 'no detail'}), recorded {before}"
            )
    return found


def recorded_markdown(triggers: dict) -> str:
    """The verification table of the docs, from what the trigger files record."""
    kernels = sorted(
        {(v.kernel, v.release, v.date) for t in triggers.values() for vs in t.verified.values() for v in vs}
    )
    lines = [
        "| event | mode | Tracee hook | declared/op | " + " | ".join(f"{k} ({r}, {d})" for k, r, d in kernels) + " |",
        "|---|---|---|---|" + "---|" * len(kernels),
    ]
    for trig in triggers.values():
        for mode, body in trig.modes.items():
            by_kernel = {v.kernel: v for v in trig.verified.get(mode, [])}
            cells = []
            for kernel, _, _ in kernels:
                v = by_kernel.get(kernel)
                cells.append("" if v is None else v.verdict + (f" ({v.per_op:g}/op)" if v.per_op is not None else ""))
            hook = trig.tracee_hook.probe.replace(",", ", ") if trig.tracee_hook else ""
            declared = f"{body.target.per_op}" + ("" if body.target.exact else "+")
            lines.append(f"| {trig.event} | {mode} | `{hook}` | {declared} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

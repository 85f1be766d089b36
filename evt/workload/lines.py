"""Tracee's Go evt's fixed `evt stress` lines, word for word (docs/tracee.md,
"Lines to print verbatim"): scripts grep them (Tracee's perf gate waits for
`Tracee is ready (PID:` and greps `exit code: 1`, `Container logs:`). The session logs
them in order; evt's own lines (counts, tables, notices) come between them.

Where evt's units are not containers (runner=local) the nouns follow the runner's
description of its units (Runner.describe(): `Starting Process Groups`, `Process group
<pid> completed ...`). One line is not the
Go evt's: evt releases a start barrier instead of sending SIGUSR1, and says so.
"""

from __future__ import annotations

from evt.config.spec import format_duration
from evt.stress.plan import Plan, RunnerDescription, Unit

# What Go evt's ~N counts: ops times instances, before what each trigger does.
COUNT_NOTE = "Note: Actual event count depends on what each trigger does (may be higher)."


def header(title: str) -> list[str]:
    """A phase header, after a blank line, as Go evt prints them."""
    return ["", f"=== {title} ==="]


def label(unit: Unit) -> str:
    """How Go evt names a unit: the 12-digit container id (a pid for a process group)."""
    if unit.container_id:
        return unit.container_id[:12]
    return str(unit.pid) if unit.pid else unit.name


def start(plan: Plan, image: str | None) -> list[str]:
    lines = ["Starting stress test orchestration", f"Triggers configured: {len(plan.units)}"]
    lines += [
        f"  [{i}] {u.event}: instances={u.instances}, ops={u.ops}, sleep={u.sleep}" for i, u in enumerate(plan.units, 1)
    ]
    if image:
        lines.append(f"Container image: {image}")
    return lines


def units_started(units: list[Unit], nouns: RunnerDescription) -> list[str]:
    """Phase 1's lines per unit, then Phase 2's (said once the units wait at the barrier)."""
    lines: list[str] = []
    for unit in units:
        lines += [
            f"Starting {nouns.singular} for trigger: {unit.event}",
            f"  Started {nouns.singular}: {label(unit)}",
            f"  {nouns.singular.capitalize()} is running and waiting for signal",
        ]
    lines += header(f"Phase 2: Collecting {nouns.ids}")
    lines.append(f"Collected {len(units)} {nouns.singular} IDs:")
    lines += [f"  {label(u)}" for u in units]
    return lines


def release(plan: Plan, nouns: RunnerDescription) -> list[str]:
    return [
        *header(f"Phase 4: Signaling {nouns.title}"),
        f"About to execute ~{plan.total_ops} trigger operations total.",
        COUNT_NOTE,
        "Releasing the start barrier to start triggering (SIGUSR1 in Tracee's evt)...",
    ]


def released(units: list[Unit], nouns: RunnerDescription) -> list[str]:
    return [*(f"  Signaled {nouns.singular}: {label(u)}" for u in units), f"All {nouns.plural} signaled successfully"]


def monitoring(units: list[Unit], nouns: RunnerDescription) -> list[str]:
    return [
        *header("Phase 5: Monitoring"),
        f"Waiting for {len(units)} {nouns.plural} to complete...",
        "(Press Ctrl+C to stop monitoring and clean up)",
    ]


def completed(number: int, total: int, unit: Unit, exit_code: int | None, nouns: RunnerDescription) -> str:
    return f"[{number}/{total}] {nouns.singular.capitalize()} {label(unit)} completed with exit code: {exit_code}"


def cooldown(seconds_ns: int) -> list[str]:
    return [*header("Stress End Cooldown"), f"Waiting {format_duration(seconds_ns)} for system stabilization..."]


def cleanup(units: list[Unit], nouns: RunnerDescription) -> list[str]:
    return [
        *header(f"Cleanup: Removing {nouns.title}"),
        *(f"Removing {nouns.singular}: {label(u)}" for u in units if u.container_id or u.pid),
    ]


def dry_run(plan: Plan, nouns: RunnerDescription, tracer_title: str) -> dict[str, list[str]]:
    """The dry run's headers, each with the lines evt shows under it."""
    return {
        "intro": ["Dry run mode - showing what would be executed:"],
        "units": header(f"Phase 1: Start {nouns.title}"),
        "ids": header(f"Phase 2: Collect {nouns.ids}"),
        "tracer": header(f"Phase 3: {tracer_title}"),
        "release": [
            *header(f"Phase 4: Signal {nouns.title}"),
            f"  Would execute ~{plan.total_ops} trigger operations total",
        ],
        "monitor": header("Phase 5: Monitor & Cleanup"),
    }

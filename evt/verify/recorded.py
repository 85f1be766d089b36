"""What the catalog knows about each trigger's Tracee hook: the hook itself (`tracee_hook`:
the probe Tracee attaches, with the filter Tracee applies in BPF where bpftrace can say it)
and what `evt verify --record` measured there per kernel (`verified`).

A leaf module beside the catalog: it parses and writes these two entries and derives the
relation `evt list` and events.csv show, and imports nothing of the catalog's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from evt.errors import UsageError, brief
from evt.workload.marker import Target

VERDICTS = ("exact", "lower_bound", "differs", "no_event", "cannot_run")
PROBE_KINDS = ("kprobe:", "kretprobe:", "tracepoint:", "rawtracepoint:")
RECORD_COMMENT = "# written by `evt verify --record`: the verdict at tracee_hook per kernel and mode"
VERIFIED_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class TraceeHook:
    """The kernel function(s) or tracepoint Tracee attaches for an event, as bpftrace counts it."""

    probe: str  # bpftrace probe list, comma-separated
    filter: str = "1"  # Tracee's in-BPF filter, as a bpftrace predicate
    prelude: str = ""  # extra bpftrace blocks the filter needs (per-thread state)
    note: str = ""  # what the expression does not capture of Tracee's own filter
    filters: tuple[tuple[str, str], ...] = ()  # (probe, filter) where one probe of the list has its own

    @property
    def probes(self) -> list[str]:
        return [p.strip() for p in self.probe.split(",") if p.strip()]

    def blocks(self) -> list[tuple[str, str]]:
        """(probe list, filter) pairs to count: the whole list under `filter`, or, where
        probes have filters of their own, each probe under its own."""
        if not self.filters:
            return [(self.probe, self.filter)]
        own = dict(self.filters)
        return [(probe, own.get(probe, self.filter)) for probe in self.probes]

    def describe(self) -> str:
        if self.filters:
            return ", ".join(f"{p} /{f}/" if f != "1" else p for p, f in self.blocks())
        return self.probe + (f" /{self.filter}/" if self.filter != "1" else "")


@dataclass(frozen=True)
class Verified:
    """One mode's measurement at the hook on one kernel."""

    kernel: str  # the name it was verified under (debian-6.1), a key of `verified`
    release: str  # uname -r of that kernel
    date: str
    verdict: str
    per_op: float | None


class HookError(UsageError):
    """A malformed tracee_hook or verified entry: bad catalog input (exit 2)."""


def parse_hook(raw: object, where: str) -> TraceeHook:
    if not isinstance(raw, dict):
        raise HookError(f"{where}: tracee_hook must be a mapping with probe (and filter, prelude, note)")
    unknown = set(raw) - {"probe", "filter", "filters", "prelude", "note"}
    if unknown:
        raise HookError(
            f"{where}: tracee_hook: unknown keys {sorted(map(brief, unknown))}"
            f"; use probe, filter, filters, prelude, note"
        )
    probe = raw.get("probe")
    if not isinstance(probe, str) or not all(p.strip().startswith(PROBE_KINDS) for p in probe.split(",")):
        raise HookError(
            f"{where}: tracee_hook.probe: expected bpftrace probes ({', '.join(PROBE_KINDS)}), got {brief(probe)}"
        )
    values = {key: raw.get(key, "") for key in ("filter", "prelude", "note")}
    for key, value in values.items():
        if not isinstance(value, str):
            raise HookError(f"{where}: tracee_hook.{key}: expected text, got {brief(value)}")
    probes = [p.strip() for p in probe.split(",")]
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict) or not all(
        k in probes and isinstance(v, str) and v.strip() for k, v in filters.items()
    ):
        raise HookError(
            f"{where}: tracee_hook.filters: expected a mapping from probes of tracee_hook.probe to bpftrace "
            f"predicates, got {brief(filters)}"
        )
    return TraceeHook(
        probe=",".join(probes),
        filter=" ".join(values["filter"].split()) or "1",
        prelude=values["prelude"].strip(),
        note=" ".join(values["note"].split()),
        filters=tuple((k, " ".join(v.split())) for k, v in filters.items()),
    )


def parse_verified(raw: object, where: str, modes: tuple[str, ...]) -> dict[str, list[Verified]]:
    """`verified: {<kernel>: {release, date, <mode>: {verdict, per_op}}}` as lists per mode."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise HookError(f"{where}: verified must map kernel names to their results (written by `evt verify --record`)")
    per_mode: dict[str, list[Verified]] = {}
    for kernel, body in raw.items():
        if not isinstance(kernel, str) or not VERIFIED_KEY.fullmatch(kernel) or not isinstance(body, dict):
            raise HookError(
                f"{where}: verified.{brief(kernel)}: expected a kernel name mapping to release, date and modes"
            )
        for mode, result in body.items():
            if mode in ("release", "date"):
                continue
            if mode not in modes or not isinstance(result, dict) or result.get("verdict") not in VERDICTS:
                raise HookError(
                    f"{where}: verified.{kernel}.{brief(mode)}: expected a mode of this trigger "
                    f"({', '.join(modes)}) with a verdict ({', '.join(VERDICTS)})"
                )
            per_op = result.get("per_op")
            if per_op is not None and (isinstance(per_op, bool) or not isinstance(per_op, (int, float))):
                raise HookError(f"{where}: verified.{kernel}.{mode}.per_op: expected a number, got {brief(per_op)}")
            per_mode.setdefault(mode, []).append(
                Verified(kernel, str(body.get("release", "")), str(body.get("date", "")), result["verdict"], per_op)
            )
    return per_mode


def relation(declared: str, verified: list[Verified]) -> str:
    """The relation `evt list` shows: `exact` only when measured exact at the hook on some
    kernel; else the verdict measured there; never verified: the declared relation, an
    `exact` claim shown as `unverified`."""
    verdicts = [v.verdict for v in verified if v.verdict != "cannot_run"]
    for verdict in ("exact", "lower_bound", "differs", "no_event"):
        if verdict in verdicts:
            return verdict
    return "unverified" if declared == "exact" else declared


def verified_reason(verified: list[Verified]) -> str:
    """Where a relation came from, for `evt list --json`."""
    return "; ".join(
        f"{v.verdict} at the Tracee hook on {v.kernel} ({v.release}, {v.date}"
        + (f", {v.per_op:g} per op" if v.per_op is not None else "")
        + ")"
        for v in verified
    )


def record(path: Path, kernel: str, release: str, date: str, results: dict[str, dict]) -> None:
    """Write one kernel's results into a trigger YAML's `verified` entry (the last key of the
    file, kept last), leaving the rest of the file, comments included, as it was."""
    text = path.read_text()
    head, sep, tail = text.partition("\nverified:")
    current = yaml.safe_load("verified:" + tail).get("verified") if sep else None
    current = dict(current or {})
    entry: dict[str, object] = {"release": release, "date": date}
    entry.update({mode: {"verdict": r["verdict"], "per_op": r["per_op"]} for mode, r in sorted(results.items())})
    current[kernel] = entry
    block = yaml.safe_dump({"verified": dict(sorted(current.items()))}, sort_keys=False, default_flow_style=None)
    head = head.rstrip("\n")
    if head.endswith(RECORD_COMMENT):
        head = head[: -len(RECORD_COMMENT)].rstrip("\n")
    path.write_text(head + "\n" + RECORD_COMMENT + "\n" + block)


def verified_target(target: Target, verified: list[Verified]) -> Target:
    """The ground truth with the relation its count has at Tracee's hook (relation())."""
    declared = target.relation
    shown = relation(declared, verified)
    if shown == declared:
        return target
    if shown == "exact":  # the count is the event's own: nothing to explain
        return replace(target, relation=shown, reason="")
    reason = (
        verified_reason(verified)
        if verified
        else f"declared exact at {target.probe}, not yet verified at Tracee's hook (`evt verify --record`)"
    )
    return replace(target, relation=shown, reason=reason)

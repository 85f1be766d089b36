"""Reads the audit log auditd wrote (log_format RAW) and counts each unit's events.

An audited syscall is one event of several records sharing a serial number
(`msg=audit(<time>:<serial>)`): a SYSCALL record first, then auxiliary ones (CWD, PATH,
EXECVE, PROCTITLE, ...). A unit's event is its SYSCALL record carrying the unit's key,
whatever the number of auxiliary records, made by the unit's marker:
- by a worker: the record's comm is the marker comm (a worker takes it only around its
  op loop, so its set-up syscalls are not counted);
- by a process a worker spawned (exec): the comm is the exec'd file's, so the event's
  EXECVE record must run the marker executable (its argument 0).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from evt.stress.plan import Unit
from evt.tracers.auditd.rules import SPAWNED, key_of

RECORD = re.compile(r"type=(?P<type>\w+) msg=audit\((?P<time>[\d.]+):(?P<serial>\d+)\): ?(?P<fields>.*)")
FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


@dataclass(frozen=True)
class Matcher:
    """How one unit's records are told apart: its key, and the marker comm or executable."""

    unit: str
    key: str
    comm: str | None = None  # a SYSCALL record's comm
    exe_arg: str | None = None  # argument 0 of the event's EXECVE record


@dataclass
class LogCounts:
    observed: dict[str, int]  # a unit's events, by unit name
    records: int = 0  # every record in the log
    by_type: Counter = field(default_factory=Counter)  # records by type
    keyed: int = 0  # SYSCALL records of evt's keys, before the marker filter


def parse_record(line: str) -> tuple[str, int, dict[str, str]] | None:
    """(type, serial, fields as written) of one RAW record; None for a line that is not one."""
    match = RECORD.match(line)
    if match is None:
        return None
    return match.group("type"), int(match.group("serial")), dict(FIELD.findall(match.group("fields")))


def text(value: str) -> str:
    """A string field's value. Audit writes an untrusted string (comm, exe, key, a0, name)
    in quotes, or as hex when it holds a quote, a space or a control character; `(null)`
    when there is none."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if value == "(null)":
        return ""
    try:
        return bytes.fromhex(value).decode(errors="replace")
    except ValueError:
        return value


def count(lines, matchers: list[Matcher]) -> LogCounts:
    """Count each matcher's events in the log's lines."""
    by_key = {m.key: m for m in matchers}
    counts = LogCounts(observed={m.unit: 0 for m in matchers})
    pending: dict[int, Matcher] = {}  # serial -> an exec unit's SYSCALL record awaiting its EXECVE record
    for line in lines:
        counts.records += 1
        kind = line[5 : line.find(" ")] if line.startswith("type=") else ""
        counts.by_type[kind] += 1
        if kind == "SYSCALL":
            if 'key="evt-' not in line:  # most records are not evt's: a cheap test first
                continue
            record = parse_record(line)
            matcher = by_key.get(text(record[2].get("key", ""))) if record else None
            if record is None or matcher is None:
                continue
            counts.keyed += 1
            if matcher.exe_arg is not None:
                pending[record[1]] = matcher
            elif text(record[2].get("comm", "")) == matcher.comm:
                counts.observed[matcher.unit] += 1
        elif kind == "EXECVE" and pending:
            record = parse_record(line)
            if record is None:
                continue
            matcher = pending.pop(record[1], None)
            if matcher is not None and text(record[2].get("a0", "")) == matcher.exe_arg:
                counts.observed[matcher.unit] += 1
    return counts


def count_file(path: Path, matchers: list[Matcher]) -> LogCounts:
    """count() over a log file; an absent file has no records."""
    try:
        with open(path, errors="replace") as f:
            return count(f, matchers)
    except FileNotFoundError:
        return LogCounts(observed={m.unit: 0 for m in matchers})


def matcher_of(unit: Unit) -> Matcher:
    key = key_of(unit)
    if unit.event in SPAWNED:
        return Matcher(unit=unit.name, key=key, exe_arg=unit.marker.exe)
    return Matcher(unit=unit.name, key=key, comm=unit.marker.comm)

"""summary.json as one typed record: a run's headline figures and where they came from.

The session builds a Summary (evt.results.writers) and writes it with `to_dict()`;
compare, the sweep tables, report, the perf gate and bench read it back with
`Summary.read()`. Each JSON object of the file is a dataclass whose fields are its keys in
their written order; keys this evt does not know are kept in `other` and written last.

Schema versions (`schema_version`): 1, before provenance (no `schema_version`; `tracer`
is the tracer's name); 2, the provenance fields (`evt_version`, `scenario`, `overrides`,
`host`) and `tracer` as {name, version}. Both are read (a version-1 tracer name becomes
{name, version: null}); a newer schema is refused, naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from evt.errors import UsageError, brief
from evt.results import records

SCHEMA_VERSION = 2
OLDEST_SCHEMA = 1

# the kinds of value a key holds, from its field's type; a Record subclass is a nested object
NUMBER = "a number"  # finite int or float (a bool is not a number)
TEXT = "text"
FLAG = "true or false"
TEXTS = "a list of text"
NUMBERS = "an object of numbers"  # counter or metric name -> number (a metric may be NaN)
ANY = "any value"
# the perf gate's figures of a tracer's resource series, as in tracer.csv (evt.results.csvio)
RESOURCE_FIGURES = ("peak_rss_kb", "avg_cpu_pct", "p95_cpu_pct", "io_read_total_bytes", "io_write_total_bytes")


def _is_number(value: object, finite: bool = True) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) or not finite


CHECKS = {
    NUMBER: _is_number,
    TEXT: lambda v: isinstance(v, str),
    FLAG: lambda v: isinstance(v, bool),
    TEXTS: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    NUMBERS: lambda v: isinstance(v, dict) and all(_is_number(x, finite=False) for x in v.values()),
    ANY: lambda v: True,
}


def _damaged(source: str, where: str, value: object, kind: str) -> UsageError:
    return UsageError(f"{source}: {where} is {brief(value)}, not {kind}: {records.DAMAGED}.")


def kind_of(hint: object) -> object:
    """The kind of value a field of type `hint` (X | None) holds."""
    base = next(a for a in typing.get_args(hint) if a is not type(None))
    if isinstance(base, type) and issubclass(base, Record):
        return base
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is list:
        return TEXTS if args == (str,) else ANY
    if origin is dict:
        return NUMBERS
    return {bool: FLAG, int: NUMBER, float: NUMBER, str: TEXT}[base]


_KINDS: dict[type, dict[str, object]] = {}  # Record.kinds() of each class, worked out once


@dataclass
class Record:
    """A JSON object of summary.json: its keys are the fields, in their written order, each
    None where the file lacks it; the kind of value a key holds is its field's type.
    `from_dict` checks each key's kind (UsageError naming the file and key otherwise);
    `to_dict` writes a key that is None as null unless it is in LEFT_OUT_WHEN_NONE."""

    other: dict[str, Any] = field(default_factory=dict, repr=False, kw_only=True)  # keys evt does not know
    LEFT_OUT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def kinds(cls) -> dict[str, object]:
        """Field name -> the kind of value it holds."""
        if cls not in _KINDS:
            hints = typing.get_type_hints(cls)
            _KINDS[cls] = {f.name: kind_of(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "other"}
        return _KINDS[cls]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "summary.json", where: str = "") -> Self:
        """A record read from a file: each known key checked (`where`: the keys above it)."""
        kinds, values = cls.kinds(), {}
        for name, value in data.items():
            if name not in kinds or value is None:
                continue
            kind, dotted = kinds[name], where + name
            if isinstance(kind, type) and issubclass(kind, Record):
                if not isinstance(value, dict):
                    raise _damaged(source, dotted, value, "a JSON object")
                values[name] = kind.from_dict(value, source, dotted + ".")
            elif not CHECKS[str(kind)](value):
                raise _damaged(source, dotted, value, str(kind))
            else:
                values[name] = value
        return cls(**values, other={k: v for k, v in data.items() if k not in kinds})

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Self:
        """A record of figures evt holds itself (a report, the session's record): taken as
        they are, nested objects made records."""
        kinds = cls.kinds()
        fields = {
            name: kind.of(value)
            if isinstance(kind := kinds[name], type) and issubclass(kind, Record) and isinstance(value, Mapping)
            else value
            for name, value in values.items()
            if name in kinds
        }
        return cls(**fields, other={k: v for k, v in values.items() if k not in kinds})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "other" or (value is None and not self.null_written(f.name)):
                continue
            data[f.name] = value.to_dict() if isinstance(value, Record) else value
        data.update(self.other)
        return data

    def null_written(self, name: str) -> bool:
        """Whether the key `name` is written as null when None (else left out)."""
        return name not in self.LEFT_OUT_WHEN_NONE


@dataclass
class TracerIdentity(Record):
    """`tracer`: which tracer ran, and its version as it reports it."""

    name: str | None = None
    version: str | None = None


@dataclass
class EvtVersion(Record):
    """`evt_version`: the package's version; the commit and whether the tree had changes
    when evt ran from a git checkout."""

    version: str | None = None
    commit: str | None = None
    dirty: bool | None = None


@dataclass
class Host(Record):
    """`host`: the machine the run ran on."""

    kernel: str | None = None
    arch: str | None = None  # uname -m
    cpus: int | None = None
    cpu_model: str | None = None
    memory_bytes: int | None = None
    docker_version: str | None = None


@dataclass
class Detection(Record):
    """`detection`: the totals over the units the tracer counts (evt.results.writers.detection)."""

    expected: int | None = None
    observed: int | None = None
    lost: int | None = None
    extra: int | None = None
    loss_pct: float | None = None
    exact: bool | None = None
    why_not_exact: str | None = None


@dataclass
class Window(Record):
    """`tracer_cost.window`: the tracer's CPU over the measured window (release to the units' end)."""

    cpu_s: float | None = None
    wall_s: float | None = None
    cpu_avg_pct: float | None = None
    cpu_p95_pct: float | None = None


@dataclass
class TracerCost(Record):
    """`tracer_cost`: the tracer's cost over its whole run and the measured window, then the
    perf gate's figures of its resource series (RESOURCE_FIGURES, always written) and
    what its series and profiles kept (written when recorded)."""

    cpu_s: float | None = None
    peak_rss_bytes: int | None = None
    wall_s: float | None = None
    cpu_share: float | None = None  # cpu_s / wall_s: a fraction of one core
    lost: dict[str, float] | None = None  # each lost-event counter
    metrics: dict[str, float] | None = None  # metric deltas over the run
    crashed: str | None = None  # why it died mid-run
    window: Window | None = None
    peak_rss_kb: float | None = None
    avg_cpu_pct: float | None = None
    p95_cpu_pct: float | None = None
    io_read_total_bytes: float | None = None
    io_write_total_bytes: float | None = None
    resource_samples_count: int | None = None
    pprof_slices_collected: int | None = None  # Tracee with tracee.pprof
    heap_snapshots_collected: int | None = None
    cpu_profile_status: str | None = None
    pprof_errors: list[Any] | None = None

    LEFT_OUT_WHEN_NONE = frozenset(
        {"resource_samples_count", "pprof_slices_collected", "heap_snapshots_collected", "cpu_profile_status",
         "pprof_errors"}
    )  # fmt: skip

    def figure(self, name: str) -> float | None:
        """One of the perf gate's figures (RESOURCE_FIGURES) by name."""
        if name not in RESOURCE_FIGURES:
            raise KeyError(name)
        value: float | None = getattr(self, name)
        return value


@dataclass
class LossGate(Record):
    """`max_loss_pct`: stress.max_loss_pct's verdict (passed None: no counts to judge, `why`)."""

    limit: float | None = None
    passed: bool | None = None
    why: str | None = None

    LEFT_OUT_WHEN_NONE = frozenset({"why"})


# a summary without figures (a job that ended before it had results) names its run and
# provenance first, in the order they are known
EARLY_FIRST = ("run_id", "schema_version", "evt_version", "scenario", "overrides", "host", "tracer")
NULL_WRITTEN = ("run_id", "failure")  # the other keys of a summary are left out when None
FIGURES_NULL = ("start_skew_ms", "detection")  # written as null in a summary with figures


@dataclass
class Summary(Record):
    """summary.json (docs/results.md): identity, figures, the tracer's cost, provenance, outcome."""

    run_id: str | None = None
    runner: str | None = None
    tracer: TracerIdentity | None = None
    units: int | None = None
    workers: int | None = None
    total_ops: int | None = None
    ok: int | None = None
    errors: int | None = None
    duration_s: float | None = None  # first op to last op
    total_ops_per_s: float | None = None
    workers_cpu_s: float | None = None  # the ops' CPU, pacing's apart
    workers_pace_cpu_s: float | None = None
    workers_late_s: float | None = None
    start_skew_ms: float | None = None
    detection: Detection | None = None
    tracer_cost: TracerCost | None = None
    run_dir: str | None = None
    started_at: float | None = None
    schema_version: int | None = None
    evt_version: EvtVersion | None = None
    scenario: list[str] | None = None
    overrides: list[str] | None = None
    host: Host | None = None
    time_to_waiting_s: float | None = None
    released_ns: int | None = None  # barrier release, wall clock
    status: str | None = None
    partial: bool | None = None
    failure: str | None = None
    wall_s: float | None = None
    max_loss_pct: LossGate | None = None
    exit_code: int | None = None
    cpu_outside_evt_s: float | None = None

    KNOWN_SCHEMAS: ClassVar[range] = range(OLDEST_SCHEMA, SCHEMA_VERSION + 1)

    @property
    def tracer_name(self) -> str:
        return (self.tracer.name if self.tracer is not None else None) or "unknown"

    @property
    def loss_pct(self) -> float | None:
        """The run's detection loss, None when its tracer counted no event."""
        return self.detection.loss_pct if self.detection is not None else None

    @property
    def has_figures(self) -> bool:
        """False for a job that ended before it had results (only provenance and outcome)."""
        return self.units is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "summary.json", where: str = "") -> Self:
        version = data.get("schema_version", OLDEST_SCHEMA)
        if isinstance(version, bool) or not isinstance(version, int) or version < OLDEST_SCHEMA:
            raise _damaged(source, "schema_version", version, f"a schema number ({OLDEST_SCHEMA} or more)")
        if version not in cls.KNOWN_SCHEMAS:
            raise UsageError(
                f"{source} has schema_version {version}, newer than this evt reads (schemas "
                f"{OLDEST_SCHEMA} to {SCHEMA_VERSION}): read it with the evt that wrote it, or a newer one."
            )
        if version == 1 and isinstance(data.get("tracer"), str):  # schema 1 named the tracer only
            data = {**data, "tracer": {"name": data["tracer"], "version": None}}
        return super().from_dict(data, source, where)

    @classmethod
    def read(cls, path: Path) -> Summary:
        """A summary.json; UsageError naming the file when it cannot be read, is not a JSON
        object, holds a key of the wrong kind or is of a schema newer than this evt's."""
        try:
            data = json.loads(records.read_text(path))
        except ValueError as exc:
            raise UsageError(f"{path} is not valid JSON ({exc}): {records.DAMAGED}.") from None
        if not isinstance(data, dict):
            raise UsageError(f"{path} holds {brief(data)}, not a JSON object: {records.DAMAGED}.")
        return cls.from_dict(data, str(path))

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the keys of `values` (summary.json's keys, evt's own figures) on this summary."""
        parsed = Summary.of(values)
        for name, value in values.items():
            if name in parsed.other:
                self.other[name] = value
            else:
                setattr(self, name, getattr(parsed, name))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.has_figures:
            return data
        first = {name: data.pop(name) for name in EARLY_FIRST if name in data}
        return first | data

    def null_written(self, name: str) -> bool:
        return name in NULL_WRITTEN or (name in FIGURES_NULL and self.has_figures)

"""The unit protocol: the only thing the orchestrator reads from a unit's output.

A unit (`evt trigger` started by `evt stress`, recognised by its `--run-id`) prints its
human lines as Tracee's Go evt does (`Waiting at start barrier ...`, `Starting triggering
...`, `Finished triggering ...`, with the `[trigger:<pid>:<event>] ` prefix) and, beside
them, these records: one JSON object per line whose first key, `evt_msg`, names the
record. The orchestrator decodes those and ignores every other line, so rewording a human
line cannot change what a run measures. A leaf module: runners and results import it,
never the trigger's internals.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

KEY = "evt_msg"
RECORD_START = '{"' + KEY + '":'  # what every record line holds (after any prefix)


@dataclass
class WorkerResult:
    worker: int
    ops: int
    ok: int
    errors: int
    t_start_ns: int  # wall clock (CLOCK_REALTIME) of the first op
    t_end_ns: int
    duration_s: float  # from the monotonic clock
    ops_per_s: float
    first_error: str | None = None
    cpu_s: float = 0.0  # user+sys of the worker over its ops, pacing's waits excluded: their cost
    pace_cpu_s: float = 0.0  # user+sys the worker spent waiting for its schedule (sleeps, spins)
    late_s: float = 0.0  # schedule skipped: time the worker was behind its rate by more than max lag


@dataclass
class TriggerResult:
    event: str
    mode: str
    workers: int
    ops: int
    ok: int
    errors: int
    duration_s: float
    ops_per_s: float
    t_start_ns: int
    t_end_ns: int
    per_worker: list[WorkerResult] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> TriggerResult:
        fields = dict(data)
        workers = [WorkerResult(**w) for w in fields.pop("per_worker", [])]
        return cls(**fields, per_worker=workers)


@dataclass(frozen=True)
class Waiting:
    """The unit's workers are set up and it waits at its start gate."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class Result:
    """The unit's figures; encoded flat (the TriggerResult's fields beside `evt_msg`)."""

    result: TriggerResult


@dataclass(frozen=True)
class Error:
    message: str


Message = Waiting | Progress | Result | Error
_KINDS: dict[str, type] = {"waiting": Waiting, "progress": Progress, "result": Result, "error": Error}
_NAMES = {kind: name for name, kind in _KINDS.items()}


def encode(msg: Message) -> str:
    """One line (without the newline); the discriminating key comes first."""
    body = asdict(msg.result) if isinstance(msg, Result) else asdict(msg)
    return json.dumps({KEY: _NAMES[type(msg)], **body}, separators=(",", ":"))


def decode(line: str) -> Message | None:
    """The record on this line, or None for a human line (or a malformed record).

    The record may follow a prefix (the `[trigger:<pid>:<event>] ` of waiting units)."""
    start = line.find(RECORD_START)
    if start < 0:
        return None
    try:
        data = json.loads(line[start:])
        kind = _KINDS[data.pop(KEY)]
        if kind is Result:
            return Result(TriggerResult.from_dict(data))
        return kind(**data)
    except (ValueError, KeyError, TypeError):
        return None

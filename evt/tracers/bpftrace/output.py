"""Reading what bpftrace printed with `-f json`: its count map, the lines the streaming
program printed per unit, and its own lost-event notices.

The count map (`@evt_events`, printed when bpftrace exits) is what the probes saw in the
kernel. In stream mode every event is also printed as one line `evt:<unit>` that crossed
bpftrace's per-CPU output buffer into userspace; those lines are counted here. bpftrace
reports the events its buffer dropped as `{"type": "lost_events"}` records (or `Lost N
events` lines in text output), but that notice can undercount: the in-kernel count minus
the lines received is the loss evt reports.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAP = "@evt_events"
STREAM_PREFIX = "evt:"
_LOST_TEXT = re.compile(r"^Lost (\d+) events")


@dataclass
class BpftraceOutput:
    counts: dict[str, int] | None = None  # the count map by unit; None when bpftrace printed none
    printed: dict[str, int] = field(default_factory=dict)  # stream lines received by unit
    lost_notices: int = 0  # the events bpftrace itself says it lost


def parse(paths: list[Path]) -> BpftraceOutput:
    """Everything evt reads from bpftrace's stdout and stderr files."""
    output = BpftraceOutput()
    # Stream mode prints up to millions of identical lines: count them raw, decode each kind once.
    lines: Counter[str] = Counter()
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                lines.update(f)
        except FileNotFoundError:
            pass
    for line, times in lines.items():
        text = line.strip()
        match = _LOST_TEXT.match(text)
        if match:
            output.lost_notices += int(match.group(1)) * times
        elif text.startswith("{"):
            _read_record(text, times, output)
    return output


def _read_record(text: str, times: int, output: BpftraceOutput) -> None:
    try:
        record = json.loads(text)
    except ValueError:
        return
    kind, data = record.get("type"), record.get("data")
    if kind == "lost_events" and isinstance(data, dict):
        output.lost_notices += int(data.get("events", 0)) * times
    elif kind == "map" and isinstance(data, dict) and MAP in data:
        output.counts = {str(k): int(v) for k, v in (data[MAP] or {}).items()}
    elif kind == "printf" and isinstance(data, str) and data.startswith(STREAM_PREFIX):
        unit = data[len(STREAM_PREFIX) :].rstrip("\n")
        output.printed[unit] = output.printed.get(unit, 0) + times

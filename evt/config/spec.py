"""Event specs (`event[:instances=N:ops=N:sleep=dur|rate=N:mode=M]`) and Go-style durations.

Both follow Tracee's Go evt: durations are Go's `time.ParseDuration` syntax
(`10ns`, `1.5s`, `1h30m`) and specs take the keys `instances|i`, `ops|o`, `sleep|s`;
`rate|r` (ops per second per instance, instead of a sleep) and `mode|m` are ours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from evt.errors import UsageError, brief

EVENT_NAME = re.compile(r"[a-z0-9_]+")
MODES = ("native", "script")

# Go's units, in nanoseconds; Go accepts both micro signs.
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")  # ASCII digits, as Go

# Counts are int32 in Tracee's Go evt (`invalid ops value ...`); beyond it Go evt refuses.
MAX_COUNT = 2**31 - 1
# No wait, sleep or timeout of evt needs more than a week, and every one of them must fit
# the clocks it reaches (Go's int64 nanoseconds, Python's threading.TIMEOUT_MAX).
MAX_DURATION_NS = 168 * 3_600_000_000_000
MAX_DURATION = "168h"

INT32_MAX = MAX_COUNT  # Tracee's Go evt parses ops as an int32
INT64_MAX = 2**63 - 1  # and instances as a Go int
DEFAULT_INSTANCES = 1
DEFAULT_OPS = 100
DEFAULT_SLEEP = "10ns"


def parse_duration(text: object, what: str = "duration") -> int:
    """Parse a Go duration string into nanoseconds (>= 0).

    Raises UsageError naming the bad value and showing valid examples.
    """
    raw = str(text).strip()
    if raw == "0":
        return 0
    pos, total = 0, Decimal(0)
    while pos < len(raw):
        match = _DURATION_PART.match(raw, pos)
        if not match:
            break
        try:
            total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        except InvalidOperation:  # pragma: no cover - the regex admits only numbers
            break
        pos = match.end()
    if not raw or pos != len(raw):
        raise UsageError(
            f"invalid {what} {brief(text)}: expected a Go duration such as 10ns, 500us, 1ms, "
            "1.5s, 2m or 1h30m (a number followed by ns, us, ms, s, m or h, no spaces)."
        )
    if total > MAX_DURATION_NS:
        raise UsageError(
            f"{what} {brief(text)} is longer than evt allows ({MAX_DURATION}, one week): give a shorter duration."
        )
    return int(total)


def parse_seconds(text: str, what: str = "duration") -> float:
    """parse_duration in seconds, for waits and timeouts."""
    return parse_duration(text, what) / 1e9


def format_duration(ns: int) -> str:
    """Render nanoseconds the way Go's time.Duration.String() does (1.5s, 2m0s, 10ns)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest, 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _trim(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


_QUOTE_CHARS = 60  # longer user values are cut in messages (a 1 MB argument must not become the message)


def go_quote(text: object) -> str:
    """Go's %q, for values quoted in Go evt's messages; cut short as errors.brief does."""
    text = str(text)
    if len(text) <= _QUOTE_CHARS:
        return json.dumps(text, ensure_ascii=False)
    return json.dumps(text[:_QUOTE_CHARS], ensure_ascii=False)[:-1] + f'..." ({len(text):,} characters)'


def validate_event_name(name: str) -> str:
    """Event names reach templates, container names and argv: only [a-z0-9_]+ passes."""
    if not name:
        raise UsageError("event name cannot be empty\nGive an event such as security_file_open (see `evt list`).")
    if "," in name:
        raise UsageError(
            "multiple events not supported in a single --event flag: use separate 'evt trigger' commands "
            "for each event, or use 'evt stress' for multiple concurrent events"
        )
    if not EVENT_NAME.fullmatch(name):
        raise UsageError(
            f"invalid event name {brief(name)}: event names contain only lowercase letters, digits "
            "and underscores (for example security_file_open); see `evt list`."
        )
    return name


def go_int(value: object, func: str, limit: int) -> int:
    """An integer as Go's strconv parses it (sign allowed, no spaces), within +-limit;
    ValueError carrying Go's message otherwise (`strconv.Atoi: parsing "x": invalid syntax`)."""
    text = str(value)
    if not re.fullmatch(r"[+-]?[0-9]+", text):  # ASCII digits, as Go
        raise ValueError(f"{func}: parsing {go_quote(text)}: invalid syntax")
    digits = text.lstrip("+-").lstrip("0")
    # length first: Python refuses int() of over 4300 digits, Go calls any such number out of range
    if len(digits) > len(str(limit)) or not -limit - 1 <= (number := int(text)) <= limit:
        raise ValueError(f"{func}: parsing {go_quote(text)}: value out of range")
    return number


def positive_int(value: object, what: str, limit: int = INT64_MAX, flag: str | None = None) -> int:
    """A count (ops, parallel, instances) > 0, in Go evt's words: `ops must be
    greater than 0` when it is not, Go's parse error (as cobra reports it for `flag`)
    for what is not an integer within +-limit; then evt's bound, Go evt's int32."""
    try:
        number = go_int(str(value).strip(), "strconv.ParseInt", limit)
    except ValueError as exc:
        raise UsageError(
            f"invalid argument {go_quote(value)} for {flag or what}: {exc}\n"
            "Give a positive whole number such as 1 or 100."
        ) from None
    if number <= 0:
        raise UsageError(
            f"{what} must be greater than 0\nGive a positive whole number such as 1 or 100 (got {brief(value)})."
        )
    if number > MAX_COUNT:
        raise UsageError(
            f"{what} must be at most {MAX_COUNT} (a 32-bit count, as Tracee's evt takes it), got {number}\n"
            "Give a smaller number."
        )
    return number


def parse_rate(value: object, what: str = "rate", unit: str = "ops per second") -> float:
    """A rate (ops per second unless told): a positive, finite number."""
    try:
        rate = float(str(value).strip())
    except ValueError:
        rate = float("nan")
    if not 0 < rate < float("inf"):
        raise UsageError(f"{what} must be a positive number of {unit}, got {value!r}: give for example 1000 or 2.5.")
    return rate


@dataclass(frozen=True)
class EventSpec:
    """One event of a stress run: who runs it, how often, how fast."""

    event: str
    instances: int = DEFAULT_INSTANCES
    ops: int = DEFAULT_OPS
    sleep: str = DEFAULT_SLEEP  # not used when rate is set
    mode: str | None = None  # None: the trigger's default mode
    rate: float | None = None  # ops/s per instance, instead of the sleep
    max_lag: str | None = None  # with a rate: schedule caught up after a stall at most (None: 10ms)

    @property
    def sleep_ns(self) -> int:
        return parse_duration(self.sleep, "sleep")

    @property
    def total_ops(self) -> int:
        return self.instances * self.ops

    @property
    def pace_args(self) -> list[str]:
        """The `evt trigger` flags that pace this spec's ops."""
        if self.rate is None:
            return ["--sleep", self.sleep]
        return ["--rate", repr(self.rate)] + (["--max-lag", self.max_lag] if self.max_lag is not None else [])

    def __str__(self) -> str:
        pace = f"rate={self.rate:g}" if self.rate is not None else f"sleep={self.sleep}"
        pace += f":max_lag={self.max_lag}" if self.max_lag is not None else ""
        text = f"{self.event}:instances={self.instances}:ops={self.ops}:{pace}"
        return text + (f":mode={self.mode}" if self.mode else "")


_KEYS = {
    "instances": "instances",
    "i": "instances",
    "ops": "ops",
    "o": "ops",
    "sleep": "sleep",
    "s": "sleep",
    "rate": "rate",
    "r": "rate",
    "mode": "mode",
    "m": "mode",
    "max_lag": "max_lag",
}
VALID_KEYS = "instances, ops, sleep"  # Go evt's keys; evt adds rate (r), max_lag and mode (m)


def parse_spec(text: str) -> EventSpec:
    """Parse `event[:key=value...]` as Tracee's Go evt does (its messages, int32 ops), plus `mode=`."""
    try:
        return _parse_spec(str(text).strip())
    except UsageError as exc:
        raise UsageError(f"invalid event spec {go_quote(str(text).strip())}: {exc}") from None


def _parse_spec(text: str) -> EventSpec:
    parts = text.split(":")
    name = parts[0].strip()
    validate_event_name(name)
    values: dict[str, Any] = {}  # EventSpec fields of several types
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            raise UsageError(f"invalid key=value pair: {go_quote(part)}\nWrite event[:instances=N:ops=N:sleep=dur].")
        if key not in _KEYS:
            raise UsageError(
                f"unknown key: {go_quote(key)} (valid keys: {VALID_KEYS})\n"
                "evt also takes rate (r): ops per second instead of sleep, max_lag: the schedule a rate "
                "catches up after a stall at most, and mode (m): native or script."
            )
        field = _KEYS[key]
        if field in ("instances", "ops"):
            values[field] = _spec_count(field, value)
        elif field == "sleep":
            go_duration(value, "sleep", f"invalid sleep duration {go_quote(value)}")
            values[field] = value
        elif field == "rate":
            values[field] = parse_rate(value)
        elif field == "max_lag":
            parse_duration(value, "max_lag")
            values[field] = value
        else:
            values[field] = validate_mode(value)
    if "rate" in values and "sleep" in values:
        raise UsageError(
            "rate= and sleep= given together\nA rate sets the time between ops itself: keep only one of them."
        )
    if "max_lag" in values and "rate" not in values:
        raise UsageError(
            "max_lag= given without rate=\nmax_lag bounds how far a rate's schedule is caught up after a "
            "stall: give rate= too, or drop max_lag=."
        )
    return EventSpec(event=name, **values)


def _spec_count(field: str, value: str) -> int:
    """instances (a Go int, strconv.Atoi) or ops (an int32, strconv.ParseInt), > 0."""
    func, limit = ("strconv.ParseInt", INT32_MAX) if field == "ops" else ("strconv.Atoi", INT64_MAX)
    try:
        number = go_int(value, func, limit)
    except ValueError as exc:
        out_of_range = field == "ops" and "out of range" in str(exc)
        hint = f"\nops is at most {INT32_MAX} (a 32-bit count, as Tracee's evt takes it)." if out_of_range else ""
        raise UsageError(f"invalid {field} value {go_quote(value)}: {exc}{hint}") from None
    if number <= 0:
        raise UsageError(f"{field} must be greater than 0, got {number}")
    return number  # instances: the host's bound (evt.stress.limits) follows when the run is planned


def go_duration(value: object, what: str, prefix: str) -> int:
    """parse_duration, its syntax errors in Go's words after `prefix` (evt's hint on the next
    line); a duration beyond evt's bound keeps evt's own message (Go would accept it)."""
    try:
        return parse_duration(value, what)
    except UsageError as exc:
        if _DURATION_SYNTAX.fullmatch(str(value).strip()):
            raise
        raise UsageError(f"{prefix}: {go_duration_error(str(value))}\n{exc}") from None


_DURATION_SYNTAX = re.compile(f"(?:{_DURATION_PART.pattern})+")  # Go's syntax, whatever the length


def go_duration_error(value: str) -> str:
    """What Go's time.ParseDuration says about a bad duration."""
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", value) and value.strip("+-") not in ("0",):
        return f"time: missing unit in duration {go_quote(value)}"
    return f"time: invalid duration {go_quote(value)}"


def validate_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"invalid mode {brief(mode)}: use native or script.")
    return mode

"""The search of `evt bench`: its validated settings, the verdict of a round, and the next
target rate from the verdicts so far (x2 up to the first bad rate, then geometric bisection).
Pure logic: rounds are run by evt.bench.session."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evt.errors import UsageError
from evt.config.spec import parse_duration, parse_rate, parse_seconds, positive_int

REACH = 0.9  # a round reached its target when it made at least this share of it
GROWTH = 2.0  # the target's factor from one round to the next until the limit is passed
OK, LOSS, OVERHEAD, GENERATOR = "ok", "loss", "overhead", "generator"


@dataclass(frozen=True)
class BenchSettings:
    """The validated bench.* values."""

    round_duration_s: float
    start_rate: float
    max_loss_pct: float
    precision_pct: float
    max_rounds: int
    cooldown: str

    @classmethod
    def from_cfg(cls, bench) -> BenchSettings:
        duration = parse_seconds(bench.round_duration, "bench.round_duration")
        if duration <= 0:
            raise UsageError(f"bench.round_duration={bench.round_duration} must be longer than 0: give e.g. 5s.")
        parse_duration(bench.cooldown, "bench.cooldown")
        loss = _number(bench.max_loss_pct, "bench.max_loss_pct")
        if not 0 <= loss < 100:
            raise UsageError(f"bench.max_loss_pct={bench.max_loss_pct} is not a percentage below 100: give e.g. 1 (for 1%).")
        precision = _number(bench.precision, "bench.precision")
        if not 0 < precision <= 100:
            raise UsageError(f"bench.precision={bench.precision} must be a percentage above 0 and at most 100: "
                             "give e.g. 10 (for 10%).")
        rounds = positive_int(bench.max_rounds, "bench.max_rounds")
        if rounds < 2:
            raise UsageError(f"bench.max_rounds={bench.max_rounds} must be at least 2 (a good and a bad rate bound the limit).")
        return cls(duration, parse_rate(bench.start_rate, "bench.start_rate", "events per second"), loss, precision, rounds, str(bench.cooldown))


def _number(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise UsageError(f"{what}={value!r} is not a number: give a number such as 1 or 10.")
    return number


class RateSearch:
    """The next target rate from the verdicts so far: x2 up to the first bad rate (/2 down
    when even the start rate is bad), then geometric bisection to the precision."""

    def __init__(self, settings: BenchSettings):
        self.settings = settings
        self.good: float | None = None  # highest target within the limit
        self.bad: float | None = None  # lowest target over it
        self.tried = 0

    def next_rate(self) -> float | None:
        """The next target, or None when the limit is found or the rounds are used up."""
        if self.tried >= self.settings.max_rounds:
            return None
        if self.bad is None:  # no rate has failed yet: start, then grow from the last good one
            return self.settings.start_rate if self.good is None else self.good * GROWTH
        if self.good is None:
            return self.bad / GROWTH
        if self.bad <= self.good * (1 + self.settings.precision_pct / 100):
            return None
        return math.sqrt(self.good * self.bad)

    def phase(self) -> str:
        if self.bad is None:
            return "grow"
        return "shrink" if self.good is None else "bisect"

    def record(self, rate: float, ok: bool) -> None:
        self.tried += 1
        if ok:
            self.good = rate if self.good is None else max(self.good, rate)
        else:
            self.bad = rate if self.bad is None else min(self.bad, rate)


def verdict(loss_pct: float | None, reached: bool, baseline_reached: bool, max_loss_pct: float) -> str:
    """A round is over the limit by
    - loss: more than max_loss_pct of the expected events lost (loss_pct None: the tracer
      tells no loss);
    - overhead: with the tracer the workload made less than REACH of the target, without
      it the same target was reached: the tracer's cost is the limit;
    - generator: not even without the tracer was REACH of the target reached."""
    if loss_pct is not None and loss_pct > max_loss_pct:
        return LOSS
    if not reached:
        return OVERHEAD if baseline_reached else GENERATOR
    return OK

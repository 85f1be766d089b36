"""The search of `evt bench`: its validated settings, the verdict of a round, and the next
round from the verdicts so far (x2 up to the first bad rate, then geometric bisection, then
repeats of the last good and the first bad rate, each decided by majority).
Pure logic: rounds are run by evt.bench.session."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from evt.config.spec import parse_duration, parse_rate, parse_seconds, positive_int
from evt.errors import UsageError

GROWTH = 2.0  # the target's factor from one round to the next until the limit is passed
OK, LOSS, OVERHEAD, GENERATOR = "ok", "loss", "overhead", "generator"
# what the repeats of a rate decided: within the limit, over it, or repeats that disagree
GOOD, OVER, UNSTABLE = "ok", "over", "unstable"
GROW, SHRINK, BISECT, CONFIRM = "grow", "shrink", "bisect", "confirm"


@dataclass(frozen=True)
class BenchSettings:
    """The validated bench.* values."""

    round_duration_s: float
    start_rate: float
    max_loss_pct: float
    precision_pct: float
    max_rounds: int
    cooldown: str
    reach: float = 0.95
    confirm: int = 2

    @classmethod
    def from_cfg(cls, bench) -> BenchSettings:
        duration = parse_seconds(bench.round_duration, "bench.round_duration")
        if duration <= 0:
            raise UsageError(f"bench.round_duration={bench.round_duration} must be longer than 0: give e.g. 5s.")
        parse_duration(bench.cooldown, "bench.cooldown")
        loss = _number(bench.max_loss_pct, "bench.max_loss_pct")
        if not 0 <= loss < 100:
            raise UsageError(
                f"bench.max_loss_pct={bench.max_loss_pct} is not a percentage below 100: give e.g. 1 (for 1%)."
            )
        precision = _number(bench.precision, "bench.precision")
        if not 0 < precision <= 100:
            raise UsageError(
                f"bench.precision={bench.precision} must be a percentage above 0 and at most 100: "
                f"give e.g. 10 (for 10%)."
            )
        rounds = positive_int(bench.max_rounds, "bench.max_rounds")
        if rounds < 2:
            raise UsageError(
                f"bench.max_rounds={bench.max_rounds} must be at least 2 (a good and a bad rate bound the limit)."
            )
        reach = _number(bench.reach, "bench.reach")
        if not 0 < reach <= 1:
            raise UsageError(
                f"bench.reach={bench.reach} must be a share above 0 and at most 1: give e.g. 0.95 "
                "(a round reached its target at 95% of it)."
            )
        confirm = bench.confirm
        if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 0:
            raise UsageError(f"bench.confirm={confirm!r} must be a whole number of rounds, 0 or more: give e.g. 2.")
        return cls(
            duration,
            parse_rate(bench.start_rate, "bench.start_rate", "events per second"),
            loss,
            precision,
            rounds,
            str(bench.cooldown),
            reach,
            confirm,
        )


def _number(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise UsageError(f"{what}={value!r} is not a number: give a number such as 1 or 10.")
    return number


class RateSearch:
    """The next round from the verdicts so far.

    One round per rate while searching: x2 up to the first bad rate (/2 down when even the
    start rate is bad), then geometric bisection to the precision. Then the last good and
    the first bad rate get `confirm` more rounds each. A confirmed rate is decided by the
    majority of its rounds, and is `unstable` when its repeats disagree with each other
    (or the rounds tie): an unstable rate is never the limit, the search goes on below it.
    One noisy round therefore neither caps the search (a first bad rate whose repeats are
    both good is good) nor becomes the headline."""

    def __init__(self, settings: BenchSettings):
        self.settings = settings
        self.verdicts: dict[float, list[bool]] = {}  # rate -> within the limit?, in round order
        self.tried = 0

    # -- what the rounds so far say ---------------------------------------------------

    def confirmed(self, rate: float) -> bool:
        return len(self.verdicts.get(rate, [])) >= 1 + self.settings.confirm

    def decision(self, rate: float) -> str:
        """GOOD, OVER or UNSTABLE; an unconfirmed rate goes by its first round."""
        rounds = self.verdicts[rate]
        if not self.confirmed(rate):
            return GOOD if rounds[0] else OVER
        repeats = rounds[1:]
        good = sum(rounds)
        if len(set(repeats)) > 1 or 2 * good == len(rounds):
            return UNSTABLE
        return GOOD if 2 * good > len(rounds) else OVER

    @property
    def bad(self) -> float | None:
        """The lowest rate over the limit (or unstable)."""
        return min((r for r in self.verdicts if self.decision(r) != GOOD), default=None)

    @property
    def good(self) -> float | None:
        """The highest rate within the limit, below the lowest bad one."""
        bad = self.bad
        return max((r for r in self.verdicts if self.decision(r) == GOOD and (bad is None or r < bad)), default=None)

    def bracketed(self) -> bool:
        good, bad = self.good, self.bad
        return good is not None and bad is not None and bad <= good * (1 + self.settings.precision_pct / 100)

    def precision_reached(self) -> bool:
        """The limit is between two confirmed rates within the precision."""
        return self.bracketed() and self.confirmed(self.good) and self.confirmed(self.bad)  # type: ignore[arg-type]

    # -- the next round -----------------------------------------------------------------

    def next_round(self) -> tuple[float, str] | None:
        """The next target and the search's phase, or None when the limit is found and
        confirmed or the rounds are used up."""
        if self.tried >= self.settings.max_rounds:
            return None
        good, bad = self.good, self.bad
        if good is None and bad is None:
            return self.settings.start_rate, GROW
        if bad is None:
            return good * GROWTH, GROW  # type: ignore[operator]
        if good is None:
            return bad / GROWTH, SHRINK
        if not self.bracketed():
            return math.sqrt(good * bad), BISECT
        for rate in (good, bad):
            if not self.confirmed(rate):
                return rate, CONFIRM
        return None

    def next_rate(self) -> float | None:
        step = self.next_round()
        return step[0] if step else None

    def phase(self) -> str:
        if self.bad is None:
            return GROW
        if self.good is None:
            return SHRINK
        return CONFIRM if self.bracketed() else BISECT

    def record(self, rate: float, ok: bool) -> None:
        self.tried += 1
        self.verdicts.setdefault(rate, []).append(ok)


def verdict(loss_pct: float | None, reached: bool, baseline_reached: bool, max_loss_pct: float) -> str:
    """A round is over the limit by
    - loss: more than max_loss_pct of the expected events lost (loss_pct None: the tracer
      tells no loss);
    - overhead: with the tracer the workload made less than bench.reach of the target,
      without it the same target was reached: the tracer's cost is the limit;
    - generator: not even without the tracer was bench.reach of the target reached."""
    if loss_pct is not None and loss_pct > max_loss_pct:
        return LOSS
    if not reached:
        return OVERHEAD if baseline_reached else GENERATOR
    return OK


def majority_verdict(verdicts: list[str]) -> str:
    """The most common of a rate's round verdicts, over-the-limit ones first on a tie."""
    counts = Counter(verdicts)
    return max(counts, key=lambda v: (counts[v], v != OK))

"""How a worker spaces its ops: as fast as it can, at least a gap apart (`--sleep`), or at
a rate (`--rate`).

A rate is kept with absolute deadlines on the monotonic clock: op k is due at
start + k/rate, so a late op (a long sleep, a preemption) is caught up by the ops after
it and the achieved rate does not drift. A gap keeps Go evt's meaning: at
least that long between the end of one op and the start of the next.

A wait shorter than what a sleep syscall costs on this machine is spun on the clock
instead: a sleep of 10ns would take microseconds (Go evt's default `10ns` cost a
syscall per op). A gap of under half of what the op loop itself takes from one op to
the next (a no-op op, timed) needs no wait at all: the loop alone keeps ops further
apart. Both costs are measured once per worker, before its start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Callable

from evt.errors import UsageError
from evt.config.spec import format_duration, parse_duration, parse_rate

CALIBRATION_SLEEPS = 5  # sleeps of 1us timed to learn what a sleep costs
CALIBRATION_LOOPS = (5, 1000)  # batches x no-op ops timed to learn what the op loop costs
Op = Callable[[], None]


def sleep_floor_ns() -> int:
    """The shortest time a sleep syscall takes here (the fastest of a few 1us sleeps);
    waits shorter than this are spun."""
    fastest = None
    for _ in range(CALIBRATION_SLEEPS):
        start = time.monotonic_ns()
        time.sleep(1e-6)
        took = time.monotonic_ns() - start
        fastest = took if fastest is None else min(fastest, took)
    return int(fastest or 0)


def loop_gap_ns() -> float:
    """What the unpaced op loop takes per op with a no-op op (the fastest of a few
    batches): a lower bound of the time between two ops with no wait at all."""
    batches, size = CALIBRATION_LOOPS
    run = Pacer(Pacing())._run_free
    fastest = float("inf")
    for _ in range(batches):
        start = time.monotonic_ns()
        run(_no_op, size)
        fastest = min(fastest, (time.monotonic_ns() - start) / size)
    return fastest


def _no_op() -> None:
    pass


@dataclass(frozen=True)
class Pacing:
    """A worker's pacing: `rate` ops/s when set, else at least `sleep_ns` between ops."""

    sleep_ns: int = 0
    rate: float | None = None

    @classmethod
    def from_flags(cls, sleep: str | None, rate: object | None, default_sleep: str,
                   names: tuple[str, str] = ("--sleep", "--rate")) -> Pacing:
        """From a sleep and a rate as given (None: not given, then the default sleep);
        `names` name them in errors. Both at once is an error."""
        sleep_name, rate_name = names
        if rate is not None and sleep is not None:
            raise UsageError(
                f"{rate_name} {rate} and {sleep_name} {sleep} given together: a rate sets the time between "
                f"ops itself; give only one of them ({rate_name} for ops per second, {sleep_name} for a pause "
                "between ops)."
            )
        if rate is not None:
            return cls(rate=parse_rate(rate, rate_name))
        return cls(sleep_ns=parse_duration(default_sleep if sleep is None else sleep, sleep_name))

    def describe(self) -> str:
        """Words for the `Starting triggering ...` line."""
        if self.rate is not None:
            return f"a rate of {self.rate:g} ops/s per worker"
        return f"{format_duration(self.sleep_ns)} sleep time"

    def pacer(self) -> Pacer:
        return Pacer(self)


class Pacer:
    """Runs a worker's ops in chunks, keeping the schedule from one chunk to the next.

    run(op, count) returns (errors, first error text); an op fails by raising OSError.
    restart() makes the next op due at once and starts the schedule from it.
    """

    def __init__(self, pacing: Pacing):
        self.pacing = pacing
        self.floor_ns = sleep_floor_ns() if (pacing.rate or pacing.sleep_ns) else 0
        self.due_ns: float | None = None  # rate: when the next op is due
        self.last_end_ns: int | None = None  # spun gap: when the last op ended
        if pacing.rate is not None:
            self.run = self._run_rate
        elif pacing.sleep_ns >= self.floor_ns and pacing.sleep_ns:
            self.run = self._run_sleeping
        elif pacing.sleep_ns and 2 * pacing.sleep_ns > loop_gap_ns():
            self.run = self._run_spinning
        else:  # no gap, or one the loop itself keeps
            self.run = self._run_free
        self.started = False

    def restart(self) -> None:
        self.due_ns = None
        self.last_end_ns = None
        self.started = False

    def _run_free(self, op: Op, count: int) -> tuple[int, str | None]:
        errors, first = 0, None
        for _ in range(count):
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
        return errors, first

    def _run_sleeping(self, op: Op, count: int) -> tuple[int, str | None]:
        """A gap long enough for a sleep syscall: sleep it (at least that long)."""
        errors, first = 0, None
        sleep, gap_s, started = time.sleep, self.pacing.sleep_ns / 1e9, self.started
        for _ in range(count):
            if started:
                sleep(gap_s)
            started = True
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
        self.started = True
        return errors, first

    def _run_spinning(self, op: Op, count: int) -> tuple[int, str | None]:
        """A gap shorter than a sleep syscall: spin on the clock until it has passed."""
        errors, first = 0, None
        now, gap, last_end = time.monotonic_ns, self.pacing.sleep_ns, self.last_end_ns
        for _ in range(count):
            if last_end is not None:
                due = last_end + gap
                while now() < due:
                    pass
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
            last_end = now()
        self.last_end_ns = last_end
        return errors, first

    def _run_rate(self, op: Op, count: int) -> tuple[int, str | None]:
        """Op k at start + k/rate: sleep towards a deadline when a sleep fits, spin the rest."""
        errors, first = 0, None
        now, sleep, floor = time.monotonic_ns, time.sleep, self.floor_ns
        rate = self.pacing.rate
        assert rate is not None  # this loop is chosen for a rate
        period = 1e9 / rate
        due = now() if self.due_ns is None else self.due_ns
        for _ in range(count):
            wait = due - now()
            if wait >= floor:
                sleep(wait / 1e9)
            elif wait > 0:
                while now() < due:
                    pass
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
            due += period
        self.due_ns = due
        return errors, first

"""How a worker spaces its ops: as fast as it can, at least a gap apart (`--sleep`), or at
a rate (`--rate`).

A rate is kept with absolute deadlines on the monotonic clock: op k is due at
start + k/rate, so a late op (a long sleep, a preemption) is caught up by the ops after
it and the achieved rate does not drift. Catch-up is bounded: when the worker is more
than `max_lag` behind (a stall, a rate it cannot reach), the schedule moves forward to
`max_lag` behind now and the skipped time is counted (`late_ns`), so a stall is never
followed by an unbounded burst.

A rate is never kept by spinning. A sleep costs CPU (the syscall, two context switches:
tens of microseconds of CPU in a VM) and cannot be shorter than the sleep floor, so where
a period is too short to sleep once per op, ops run in batches: a batch, then one sleep
until the next batch is due. A batch spans the shortest time for which one sleep costs at
most PACE_CPU_SHARE of that time in CPU (and at least the floor), capped at
MAX_BATCH_SPAN_NS so the rate holds over any 10 ms window to within a tenth. A sleep's
CPU varies a lot from one to the next, so after the first ADAPT_AFTER_SLEEPS sleeps the
batch is re-sized (once per chunk of ops) from the CPU the worker's own sleeps have taken.

A gap keeps Go evt's meaning: at least that long between the end of one op
and the start of the next. A gap shorter than the sleep floor is spun on the clock (a
sleep of 10ns would take microseconds: Go evt's default `10ns` cost a syscall per
op); a gap of SLEEP_ALWAYS_NS or more is always slept, whatever the floor measured (a
loaded or traced machine makes every sleep slow, and that must not turn the sleeps asked
for into a spinning core). A gap of under half of what the op loop itself takes from one
op to the next (a no-op op, timed) needs no wait at all. These costs are measured once
per worker, before its start.

The CPU spent waiting (sleep syscalls, spins) is counted apart (`pace_cpu_ns`), so a
worker's CPU can be split into what its ops cost and what its pacing cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from evt.config.spec import format_duration, parse_duration, parse_rate
from evt.errors import UsageError

CALIBRATION_SLEEPS = 9  # sleeps of 1us timed to learn what a sleep costs (wall and CPU)
CALIBRATION_LOOPS = (5, 1000)  # batches x no-op ops timed to learn what the op loop costs
SLEEP_ALWAYS_NS = 20_000  # a gap this long is slept, whatever the measured floor
PACE_CPU_SHARE = 0.05  # a batch spans at least sleep CPU / this: pacing costs <= 5% of a core
MAX_BATCH_SPAN_NS = 1_000_000  # ... and at most this: 1/10 of a 10 ms window
ADAPT_AFTER_SLEEPS = 16  # from then on batches are sized by the CPU the worker's sleeps took
DEFAULT_MAX_LAG = "10ms"
Op = Callable[[], None]


@dataclass(frozen=True)
class SleepCost:
    """What one short sleep costs here: `floor_ns` of wall time at least (the fastest of
    the calibration sleeps), `cpu_ns` of CPU (their median)."""

    floor_ns: int
    cpu_ns: int


def measure_sleep() -> SleepCost:
    walls, cpus = [], []
    wall, cpu = time.monotonic_ns, time.process_time_ns
    for _ in range(CALIBRATION_SLEEPS):
        cpu_start, start = cpu(), wall()
        time.sleep(1e-6)
        walls.append(wall() - start)
        cpus.append(cpu() - cpu_start)
    return SleepCost(min(walls), sorted(cpus)[len(cpus) // 2])


def sleep_floor_ns() -> int:
    """The shortest time a sleep syscall takes here (the fastest of a few 1us sleeps)."""
    return measure_sleep().floor_ns


def batch_span_ns(cost: SleepCost) -> float:
    """The shortest span of ops one sleep may pace (see the module's docstring)."""
    return min(max(float(cost.floor_ns), cost.cpu_ns / PACE_CPU_SHARE), float(MAX_BATCH_SPAN_NS))


def batch_size(rate: float, cost: SleepCost) -> int:
    """Ops per sleep at `rate`: 1 where a period is long enough to sleep once per op."""
    return max(1, math.ceil(batch_span_ns(cost) * rate / 1e9))


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
    """A worker's pacing: `rate` ops/s when set, else at least `sleep_ns` between ops.
    With a rate, at most `max_lag_ns` of schedule is caught up after a stall."""

    sleep_ns: int = 0
    rate: float | None = None
    max_lag_ns: int = parse_duration(DEFAULT_MAX_LAG, "max lag")

    @classmethod
    def from_flags(
        cls,
        sleep: str | None,
        rate: object | None,
        default_sleep: str,
        names: tuple[str, str] = ("--sleep", "--rate"),
        max_lag: str | None = None,
        max_lag_name: str = "--max-lag",
    ) -> Pacing:
        """From a sleep and a rate as given (None: not given, then the default sleep);
        `names` name them in errors. Both at once is an error, and so is a max lag
        without a rate."""
        sleep_name, rate_name = names
        if rate is not None and sleep is not None:
            raise UsageError(
                f"{rate_name} {rate} and {sleep_name} {sleep} given together: a rate sets the time between "
                f"ops itself; give only one of them ({rate_name} for ops per second, {sleep_name} for a pause "
                "between ops)."
            )
        if max_lag is not None and rate is None:
            raise UsageError(
                f"{max_lag_name} {max_lag} given without {rate_name}: it bounds how far a rate's schedule is "
                f"caught up after a stall; give {rate_name} too, or drop {max_lag_name}."
            )
        if rate is not None:
            lag = parse_duration(DEFAULT_MAX_LAG if max_lag is None else max_lag, max_lag_name)
            return cls(rate=parse_rate(rate, rate_name), max_lag_ns=lag)
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
    `pace_cpu_ns` is the CPU spent waiting so far, `late_ns` the schedule skipped.
    """

    def __init__(self, pacing: Pacing):
        self.pacing = pacing
        self.cost = measure_sleep() if (pacing.rate or pacing.sleep_ns) else SleepCost(0, 0)
        self.floor_ns = self.cost.floor_ns
        self.due_ns: float | None = None  # rate: when the next op is due
        self.last_end_ns: int | None = None  # spun gap: when the last op ended
        self.in_batch = 0  # rate: ops run since the last wait
        self.pace_cpu_ns = 0
        self.sleeps = 0
        self.late_ns = 0.0
        self.batch = 1
        if pacing.rate is not None:
            self.batch = batch_size(pacing.rate, self.cost)
            self.run = self._run_rate
        elif pacing.sleep_ns and pacing.sleep_ns >= min(self.floor_ns, SLEEP_ALWAYS_NS):
            self.run = self._run_sleeping
        elif pacing.sleep_ns and 2 * pacing.sleep_ns > loop_gap_ns():
            self.run = self._run_spinning
        else:  # no gap, or one the loop itself keeps
            self.run = self._run_free
        self.started = False

    def restart(self) -> None:
        self.due_ns = None
        self.last_end_ns = None
        self.in_batch = 0
        self.started = False

    def sleep(self, seconds: float) -> None:
        """Sleep, the CPU it costs counted as pacing."""
        cpu_start = time.process_time_ns()
        time.sleep(seconds)
        self.pace_cpu_ns += time.process_time_ns() - cpu_start
        self.sleeps += 1

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
        sleep, gap_s, started = self.sleep, self.pacing.sleep_ns / 1e9, self.started
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
        now, cpu, gap, last_end = time.monotonic_ns, time.process_time_ns, self.pacing.sleep_ns, self.last_end_ns
        for _ in range(count):
            if last_end is not None and now() < last_end + gap:
                cpu_start = cpu()
                while now() < last_end + gap:
                    pass
                self.pace_cpu_ns += cpu() - cpu_start
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
            last_end = now()
        self.last_end_ns = last_end
        return errors, first

    def _run_rate(self, op: Op, count: int) -> tuple[int, str | None]:
        """Op k due at start + k/rate; batches of `self.batch` ops, one sleep before each
        until its first op is due; at most max_lag of schedule caught up."""
        errors, first = 0, None
        now, batch, max_lag = time.monotonic_ns, self.batch, self.pacing.max_lag_ns
        rate = self.pacing.rate
        assert rate is not None  # this loop is chosen for a rate
        period = 1e9 / rate
        due = now() if self.due_ns is None else self.due_ns
        in_batch = self.in_batch
        for _ in range(count):
            if not in_batch:
                wait = due - now()
                if wait > 0:
                    self.sleep(wait / 1e9)
                elif -wait > max_lag:  # too far behind: move the schedule, count what is skipped
                    self.late_ns += -wait - max_lag
                    due += -wait - max_lag
            in_batch = 0 if in_batch + 1 >= batch else in_batch + 1  # >=: the batch may have shrunk
            try:
                op()
            except OSError as exc:
                errors += 1
                first = first or str(exc)
            due += period
        self.due_ns, self.in_batch = due, in_batch
        if self.sleeps >= ADAPT_AFTER_SLEEPS:  # what sleeps have cost so far, not a few timed at start
            cost = SleepCost(self.floor_ns, self.pace_cpu_ns // self.sleeps)
            self.batch = batch_size(self.pacing.rate, cost)  # type: ignore[arg-type]
        return errors, first

"""Pacing of a worker's ops (evt/workload/pacing.py): rates on absolute deadlines, gaps of at least
the requested time, short waits spun instead of slept, and the flags that choose them."""

from __future__ import annotations

import json
import math
import re
import resource
import time

import pytest

from evt.errors import UsageError
from evt.workload import pacing as pacing_module
from evt.workload.pacing import (
    MAX_BATCH_SPAN_NS,
    SLEEP_ALWAYS_NS,
    Pacer,
    Pacing,
    SleepCost,
    batch_size,
    loop_gap_ns,
    sleep_floor_ns,
)
from helpers import run_evt


class Recorder:
    """An op that records when it started and ended (monotonic ns); can be told to stall
    once or to fail."""

    def __init__(self, stall_at: int | None = None, stall_s: float = 0.0, fail_every: int = 0):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.stall_at, self.stall_s, self.fail_every = stall_at, stall_s, fail_every

    def __call__(self) -> None:
        self.starts.append(time.monotonic_ns())
        n = len(self.starts)
        if n == self.stall_at:
            time.sleep(self.stall_s)
        self.ends.append(time.monotonic_ns())
        if self.fail_every and n % self.fail_every == 0:
            raise OSError(f"op {n} failed")


def run_in_chunks(pacer: Pacer, op, total: int, chunk: int = 64) -> tuple[int, str | None]:
    errors, first = 0, None
    done = 0
    while done < total:
        n = min(chunk, total - done)
        e, f = pacer.run(op, n)
        errors, first, done = errors + e, first or f, done + n
    return errors, first


# -- rate ------------------------------------------------------------------------------


def test_rate_never_runs_an_op_more_than_a_batch_before_its_deadline():
    """Ops run in batches, one sleep before each until the batch's first op is due: an op
    never runs before its deadline by more than the rest of its batch, and a batch spans
    at most MAX_BATCH_SPAN_NS (here 2 ops: at most 1 period early)."""
    rate, total = 2000.0, 300
    op = Recorder()
    pacer = Pacing(rate=rate).pacer()
    period_ns = 1e9 / rate
    largest_batch = math.ceil(MAX_BATCH_SPAN_NS / period_ns)  # batches are re-sized, never beyond this
    assert largest_batch == 2 and pacer.batch <= largest_batch
    start = time.monotonic_ns()  # the schedule starts at the first run(), not before
    run_in_chunks(pacer, op, total)
    for k, t in enumerate(op.starts):
        earliest = (k - (largest_batch - 1)) * period_ns
        assert t - start >= earliest, f"op {k} ran {(k * period_ns - (t - start)) / 1e3:.1f}us before its deadline"


def test_batches_are_as_small_as_a_sleep_allows():
    """One sleep per op where a period holds a sleep that costs at most PACE_CPU_SHARE of
    it; else the fewest ops per sleep that make it so, never more than MAX_BATCH_SPAN_NS."""
    cost = SleepCost(floor_ns=20_000, cpu_ns=10_000)  # a sleep paces at least 200us of ops
    assert batch_size(1000.0, cost) == 1  # 1 ms apart: a sleep per op
    assert batch_size(5000.0, cost) == 1  # 200us apart
    assert batch_size(50_000.0, cost) == 10  # 20us apart: 10 ops per 200us
    assert batch_size(1e6, SleepCost(20_000, 1_000_000)) == 1000  # capped at 1 ms of ops
    assert batch_size(1e6, SleepCost(300_000, 0)) == 300  # the floor: no sleep is shorter


@pytest.mark.slow
def test_a_10000_ops_per_s_worker_keeps_its_rate_for_2_s():
    """20,000 ops at 10,000/s: 2 s (+-5%) from the first op to the last, and the ops
    started in the first 2 s are within 2% of 20,000. A max lag of 1 s catches up
    whatever the scheduler delays on a busy machine, so this is the pacing's accuracy."""
    rate, total = 10_000.0, 20_000
    op = Recorder()
    pacer = Pacing.from_flags(None, rate, "10ns", max_lag="1s").pacer()
    run_in_chunks(pacer, op, total, chunk=1024)
    span_s = (op.starts[-1] - op.starts[0]) / 1e9
    assert 1.9 <= span_s <= 2.1, span_s
    in_2_s = sum(t - op.starts[0] < 2_000_000_000 for t in op.starts)
    assert abs(in_2_s - 20_000) <= 400, in_2_s
    assert pacer.late_ns == 0


@pytest.mark.slow
def test_with_the_default_max_lag_a_run_is_late_by_what_it_skipped():
    """With the default 10 ms max lag, a stall the scheduler makes is not caught up but
    counted: 20,000 ops at 10,000/s last 2 s plus the late time (+-5%)."""
    rate, total = 10_000.0, 20_000
    op = Recorder()
    pacer = Pacing(rate=rate).pacer()
    run_in_chunks(pacer, op, total, chunk=1024)
    span_s = (op.starts[-1] - op.starts[0]) / 1e9
    late_s = pacer.late_ns / 1e9
    assert abs(span_s - (2.0 + late_s)) <= 0.1, (span_s, late_s)


@pytest.mark.slow
def test_batches_resized_from_what_sleeps_cost_keep_the_rate(monkeypatch):
    """Batches start from the calibration's cost and are re-sized from the CPU the sleeps
    then take. Here the calibration claims 10 ms of CPU per sleep (and batches may span
    100 ms), so they start at 5,000 ops and shrink after the first sleep, in the middle of
    a batch: the worker must not then run free."""
    monkeypatch.setattr(pacing_module, "measure_sleep", lambda: SleepCost(floor_ns=1_000, cpu_ns=10_000_000))
    monkeypatch.setattr(pacing_module, "MAX_BATCH_SPAN_NS", 100_000_000)
    monkeypatch.setattr(pacing_module, "ADAPT_AFTER_SLEEPS", 1)
    rate, total = 50_000.0, 50_000
    op = Recorder()
    pacer = Pacing.from_flags(None, rate, "10ns", max_lag="1s").pacer()
    assert pacer.batch == 5000  # 100 ms of ops
    run_in_chunks(pacer, op, total, chunk=1024)  # as a worker runs them: not a multiple of the batch
    assert pacer.batch < 5000  # re-sized from the sleeps' own CPU (well under 10 ms each)
    span_s = (op.starts[-1] - op.starts[0]) / 1e9
    assert span_s >= (total - 5000) / rate, span_s  # never ahead of the schedule by more than a batch


@pytest.mark.slow
def test_pacing_a_fast_rate_costs_at_most_a_tenth_of_a_core():
    """At 50,000 ops/s (a 20us period, under what a sleep costs) a worker does not spin:
    its thread's CPU over 1 s of paced no-op ops is what the ops cost unpaced plus at most
    10% of a core; and the pacer counts that waiting CPU as pace_cpu_ns."""
    rate, total = 50_000.0, 50_000
    pacer = Pacing(rate=rate).pacer()
    op = _cheap_op()
    ops_cpu_s = _thread_cpu_s(lambda: run_in_chunks(Pacing().pacer(), op, total, chunk=1024))
    start = time.monotonic()
    paced_cpu_s = _thread_cpu_s(lambda: run_in_chunks(pacer, op, total, chunk=1024))
    wall_s = time.monotonic() - start
    assert paced_cpu_s <= ops_cpu_s + 0.1 * wall_s, (
        paced_cpu_s,
        ops_cpu_s,
        wall_s,
        pacer.cost,
        pacer.batch,
        pacer.sleeps,
    )
    assert 0 < pacer.pace_cpu_ns / 1e9 <= paced_cpu_s


def _cheap_op():
    count = [0]

    def op() -> None:
        count[0] += 1

    return op


def _thread_cpu_s(run) -> float:
    before = resource.getrusage(resource.RUSAGE_THREAD)
    run()
    after = resource.getrusage(resource.RUSAGE_THREAD)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_rate_catch_up_after_a_stall_is_bounded_by_max_lag():
    """A 50 ms stall at 1000 ops/s: only max_lag (10 ms) of schedule is caught up in a
    burst; the rest moves the schedule forward and is counted as late."""
    rate, total = 1000.0, 200
    op = Recorder(stall_at=20, stall_s=0.05)
    pacer = Pacing(rate=rate).pacer()
    assert pacer.pacing.max_lag_ns == 10_000_000
    run_in_chunks(pacer, op, total)
    stall_end = op.ends[19]
    stall_s = (stall_end - op.starts[19]) / 1e9
    # on schedule 10 ops start in the 10 ms after the stall; with the 10 ms of catch-up
    # about 20, never the 50+ of catching the whole stall up
    burst = [t for t in op.starts[20:] if t - stall_end < 10_000_000]
    assert len(burst) <= 20 + pacer.batch, len(burst)
    assert stall_s - 0.02 <= pacer.late_ns / 1e9 <= stall_s, (pacer.late_ns, stall_s)


def test_a_large_max_lag_catches_a_stall_up_so_the_rate_does_not_drift():
    """With --max-lag 1s the deadlines stay absolute: a 50 ms stall delays the ops after it
    only until they have caught up, so the run lasts total/rate, not total/rate + 50 ms."""
    rate, total = 1000.0, 200  # 0.2 s of ops
    op = Recorder(stall_at=20, stall_s=0.05)
    pacer = Pacing.from_flags(None, rate, "10ns", max_lag="1s").pacer()
    run_in_chunks(pacer, op, total)
    span_s = (op.starts[-1] - op.starts[0]) / 1e9
    assert span_s >= (total - pacer.batch) / rate - 1e-6
    stall_end = op.ends[19]
    burst = [t for t in op.starts[20:] if t - stall_end < 10_000_000]
    assert len(burst) > 40, len(burst)
    assert pacer.late_ns == 0


def test_rate_schedule_carries_across_chunks_and_restart_starts_it_anew():
    pacer = Pacing(rate=500.0).pacer()  # 2 ms apart: a sleep per op
    assert pacer.batch == 1
    op = Recorder()
    pacer.run(op, 3)
    time.sleep(0.05)  # well past the 4th op's deadline
    pacer.restart()
    pacer.run(op, 3)
    # after restart() the next op is due at once, the one after 2 ms later
    assert op.starts[3] - op.ends[2] >= 50_000_000
    assert op.starts[4] - op.starts[3] >= 2_000_000 - 1_000


# -- sleep (gap) -----------------------------------------------------------------------


@pytest.mark.parametrize("gap_ns", [10, 3_000, 200_000])
def test_a_gap_is_at_least_the_requested_time_between_ops(gap_ns):
    op = Recorder()
    run_in_chunks(Pacing(sleep_ns=gap_ns).pacer(), op, 100, chunk=7)
    gaps = [start - end for start, end in zip(op.starts[1:], op.ends[:-1], strict=True)]
    assert min(gaps) >= gap_ns


def test_short_gaps_are_spun_long_ones_slept_and_tiny_ones_left_to_the_loop():
    floor, loop = sleep_floor_ns(), loop_gap_ns()
    assert 0 < floor < 10_000_000  # a sleep syscall costs microseconds, not a scheduler tick
    assert 10 < loop / 2 < 3_000 < floor  # the op loop itself keeps ops more than 10ns apart
    assert Pacing(sleep_ns=10).pacer().run.__name__ == "_run_free"  # the original's default
    assert Pacing(sleep_ns=3_000).pacer().run.__name__ == "_run_spinning"
    assert Pacing(sleep_ns=50_000_000).pacer().run.__name__ == "_run_sleeping"
    assert Pacing().pacer().run.__name__ == "_run_free"


def test_a_gap_of_20us_or_more_is_slept_however_slow_sleeps_are_measured(monkeypatch):
    """A machine under load or strace measures every sleep as slow; a gap that a sleep
    syscall can serve is still slept, not spun on a core."""
    monkeypatch.setattr(pacing_module, "measure_sleep", lambda: SleepCost(floor_ns=5_000_000, cpu_ns=100_000))
    assert Pacing(sleep_ns=SLEEP_ALWAYS_NS).pacer().run.__name__ == "_run_sleeping"
    assert Pacing(sleep_ns=50_000).pacer().run.__name__ == "_run_sleeping"
    assert Pacing(sleep_ns=3_000).pacer().run.__name__ == "_run_spinning"


def test_errors_are_counted_and_the_first_kept():
    for pacing in (Pacing(), Pacing(sleep_ns=10), Pacing(sleep_ns=1_000_000), Pacing(rate=100000.0)):
        errors, first = run_in_chunks(pacing.pacer(), Recorder(fail_every=3), 30, chunk=8)
        assert (errors, first) == (10, "op 3 failed"), pacing


# -- flags -----------------------------------------------------------------------------


def test_from_flags():
    assert Pacing.from_flags(None, None, "10ns") == Pacing(sleep_ns=10)
    assert Pacing.from_flags("1ms", None, "10ns") == Pacing(sleep_ns=1_000_000)
    assert Pacing.from_flags(None, "2.5", "10ns") == Pacing(rate=2.5)
    with pytest.raises(UsageError, match=r"--rate 5 and --sleep 1ms given together"):
        Pacing.from_flags("1ms", "5", "10ns")
    assert Pacing.from_flags(None, "2.5", "10ns", max_lag="1s") == Pacing(rate=2.5, max_lag_ns=1_000_000_000)
    assert Pacing.from_flags(None, "2.5", "10ns").max_lag_ns == 10_000_000
    with pytest.raises(UsageError, match=r"--max-lag 5ms given without --rate"):
        Pacing.from_flags(None, None, "10ns", max_lag="5ms")
    for bad in ("0", "-1", "fast", "nan", "inf"):
        with pytest.raises(UsageError, match=rf"--rate must be a positive number .* got '{bad}'"):
            Pacing.from_flags(None, bad, "10ns")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--rate", "100", "--sleep", "1ms"], "--rate 100 and --sleep 1ms given together"),
        (["--rate", "0"], "--rate must be a positive number"),
        (["-r", "lots"], "--rate must be a positive number of ops per second, got 'lots'"),
        (["--max-lag", "5ms"], "--max-lag 5ms given without --rate"),
        (["--rate", "100", "--max-lag", "soon"], "--max-lag"),
    ],
)
def test_bad_rate_flags_exit_2_before_anything_runs(args, needle):
    proc = run_evt("trigger", "-e", "security_file_open", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr


def test_trigger_with_a_rate_is_paced():
    """100 ops at 200/s: the last is due 495 ms after the first (a lower bound that load
    cannot break; how close the rate comes is benchmarks/bench_pacing.py's job)."""
    proc = run_evt("trigger", "-e", "security_file_open", "--rate", "200", "--ops", "100", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(r"^Starting triggering 100 ops with a rate of 200 ops/s per worker at ", lines[0])
    result = json.loads(lines[-1])
    assert result["ok"] == 100 and result["duration_s"] >= 0.495
    worker = result["per_worker"][0]  # the ops' CPU and the waiting's apart
    assert worker["cpu_s"] > 0 and worker["pace_cpu_s"] > 0 and worker["late_s"] >= 0

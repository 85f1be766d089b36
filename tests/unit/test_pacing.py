"""Pacing of a worker's ops (evt/workload/pacing.py): rates on absolute deadlines, gaps of at least
the requested time, short waits spun instead of slept, and the flags that choose them."""

from __future__ import annotations

import json
import re
import time

import pytest

from helpers import run_evt
from evt.errors import UsageError
from evt.workload.pacing import Pacer, Pacing, loop_gap_ns, sleep_floor_ns


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


def test_rate_never_runs_an_op_before_its_deadline():
    rate, total = 2000.0, 300
    op = Recorder()
    pacer = Pacing(rate=rate).pacer()
    start = time.monotonic_ns()  # the schedule starts at the first run(), not before
    run_in_chunks(pacer, op, total)
    period_ns = 1e9 / rate
    for k, t in enumerate(op.starts):
        assert t - start >= k * period_ns, f"op {k} ran {(k * period_ns - (t - start)) / 1e3:.1f}us early"


def test_rate_catches_up_after_a_stall_so_the_rate_does_not_drift():
    """Deadlines are absolute: a 50 ms stall delays the ops after it only until they
    have caught up, so the whole run lasts total/rate, not total/rate + 50 ms."""
    rate, total = 1000.0, 200  # 0.2 s of ops
    op = Recorder(stall_at=20, stall_s=0.05)
    run_in_chunks(Pacing(rate=rate).pacer(), op, total)
    span_s = (op.starts[-1] - op.starts[0]) / 1e9
    assert span_s >= (total - 1) / rate - 1e-6
    # after the stall the ops ran back to back until on schedule again: more than 40 ops
    # started within the 10 ms after it ended (on schedule they would be 10)
    stall_end = op.ends[19]
    burst = [t for t in op.starts[20:] if t - stall_end < 10_000_000]
    assert len(burst) > 40, len(burst)


def test_rate_schedule_carries_across_chunks_and_restart_starts_it_anew():
    pacer = Pacing(rate=500.0).pacer()  # 2 ms apart
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
    for bad in ("0", "-1", "fast", "nan", "inf"):
        with pytest.raises(UsageError, match=rf"--rate must be a positive number .* got '{bad}'"):
            Pacing.from_flags(None, bad, "10ns")


@pytest.mark.parametrize("args, needle", [
    (["--rate", "100", "--sleep", "1ms"], "--rate 100 and --sleep 1ms given together"),
    (["--rate", "0"], "--rate must be a positive number"),
    (["-r", "lots"], "--rate must be a positive number of ops per second, got 'lots'"),
])
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


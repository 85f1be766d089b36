"""evt/faults.py: a thread's error reaches the watching main thread at once, even while it
sleeps, exactly once; outside a watch it is only recorded."""

from __future__ import annotations

import threading
import time

import pytest

from evt import faults


def boom(message: str = "broken") -> None:
    raise ValueError(message)


def test_a_thread_error_interrupts_the_watching_thread_while_it_sleeps():
    with faults.watch():
        started = time.monotonic()
        with pytest.raises(faults.ThreadFault) as caught:
            faults.start_thread(boom, name="sampler-1")
            time.sleep(30)  # interrupted, not waited out
    assert time.monotonic() - started < 10
    assert caught.value.message == "thread sampler-1 failed: ValueError: broken"
    assert faults.first() == caught.value.message


def test_only_the_first_fault_interrupts_and_later_ones_are_kept_quiet():
    with faults.watch():
        with pytest.raises(faults.ThreadFault, match="thread a failed"):
            faults.start_thread(boom, "first", name="a").join()
            time.sleep(30)
        faults.start_thread(boom, "second", name="b").join()
        time.sleep(0.05)  # a second signal is handled here: it must not raise again
    assert faults.first() == "thread a failed: ValueError: first"


def test_after_pause_a_fault_is_recorded_without_interrupting():
    with faults.watch() as watch:
        watch.pause()
        faults.start_thread(boom, name="late").join()
        time.sleep(0.05)
        assert faults.first() == "thread late failed: ValueError: broken"


def test_a_thread_that_ends_normally_is_no_fault():
    with faults.watch():
        done = threading.Event()
        faults.start_thread(done.set, name="fine").join()
        assert done.is_set() and faults.first() is None

"""Other work on the machine during a bench run (evt/bench/load.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from evt.bench.load import LoadMeter

# Forks, and the child (no longer evt's: its parent exits at once) burns CPU until it has
# used `seconds` of it, then writes what it used.
BURNER = """
import os, sys, time
if os.fork():
    os._exit(0)
while time.process_time() < float(sys.argv[2]):
    pass
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(time.process_time()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"""


def test_cpu_used_by_a_process_that_is_not_evts_counts_as_other_work(tmp_path):
    done = tmp_path / "burned"
    meter = LoadMeter()
    subprocess.run([sys.executable, "-c", BURNER, str(done), "0.5"], check=True)  # its parent exits at once
    deadline = time.monotonic() + 120
    while not done.exists():
        assert time.monotonic() < deadline, "the burner did not finish"
        time.sleep(0.05)
    load = meter.finish(0.0)
    burned = float(done.read_text())
    assert load.other_cpu_s >= 0.9 * burned  # whatever else the machine did comes on top
    assert load.wall_s > 0 and load.other_cpu_cores == load.other_cpu_s / load.wall_s and load.load_avg_1m >= 0


@pytest.mark.slow
def test_the_run_window_is_measured_between_the_samples_around_it():
    """Only the window counts, not the time before and after it (containers starting)."""
    began = time.monotonic()
    meter = LoadMeter(interval_s=0.05)
    time.sleep(1.0)
    start = time.time_ns()
    time.sleep(0.3)
    end = time.time_ns()
    time.sleep(1.0)
    load = meter.finish(0.0, (start, end))
    assert (end - start) / 1e9 <= load.wall_s < time.monotonic() - began - 1.0

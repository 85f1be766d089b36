"""A fault in a thread that serves a run (evt/faults.py) ends the run at once, named: the
timeseries sampler raising, and the tracer's sampler unable to write its resource series
file, each in a real `evt stress` run whose units would otherwise run for ~100 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from evt.stress import runstate
from helpers import EVT, needs_bpftrace, unique_run_id

pytestmark = pytest.mark.integration

LONG = ["stress.stress_end_cooldown=0s", "runner=local", "events=['ptrace:ops=100000:sleep=1ms']"]  # ~100 s
ENDS_WITHIN_S = 10  # a run that missed the fault would go on for ~100 s (or until stress.timeout)

# `evt stress` in this interpreter, its timeseries sampler made to raise on its 3rd sample
# (in the sampling thread: the first sample is taken at the release, by the main thread)
FAILING_SAMPLER = """
import sys, time
from evt.cli import hydra_app
from evt.stress.timeseries import TimeSeries
original, calls = TimeSeries.sample, [0]
def sample(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        print("FAULT_AT", time.monotonic(), flush=True)
        raise RuntimeError("sampler broke on purpose")
    return original(self, *args, **kwargs)
TimeSeries.sample = sample
sys.exit(hydra_app.run([], sys.argv[1:]))
"""


def test_a_sampler_that_raises_ends_the_run_at_once_with_its_error(tmp_path):
    run_id = unique_run_id("fault-sampler")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            FAILING_SAMPLER,
            *LONG,
            "tracer=none",
            "stress.progress_interval=200ms",
            f"run_id={run_id}",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    ended = time.monotonic()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    fault_at = float(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FAULT_AT")))
    assert ended - fault_at < ENDS_WITHIN_S, (ended - fault_at, output)
    message = "thread timeseries failed: RuntimeError: sampler broke on purpose"
    assert f"Error: {message} (during monitoring; stopping the run)" in output
    assert "Traceback" not in output, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["status"], summary["failure"], summary["exit_code"]) == ("failed", message, 1)
    assert not (runstate.STATE_DIR / f"{run_id}.json").exists()  # cleaned up as after any error


@needs_bpftrace
def test_a_tracer_sampler_that_cannot_write_its_series_file_ends_the_run(tmp_path):
    """The tracer's resource series file is replaced by a directory mid-run: the thread
    sampling the tracer fails writing it, and that error is the run's failure."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            EVT,
            "stress",
            *LONG,
            "tracer=bpftrace",
            f"run_id={unique_run_id('fault-series')}",
            f"hydra.run.dir={run_dir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("Phase 5" in line for line in list(lines)):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        series = run_dir / "tracer" / "resource_timeseries.csv"
        assert series.is_file(), sorted(p.name for p in (run_dir / "tracer").iterdir())
        series.unlink()
        series.mkdir()  # the next write (once a second) fails
        broken_at = time.monotonic()
        code = proc.wait(timeout=120)
        ended = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert code == 1, output
    assert ended - broken_at < ENDS_WITHIN_S, (ended - broken_at, output)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed", summary
    assert summary["failure"].startswith("thread sampler-") and "IsADirectoryError" in summary["failure"], summary
    assert str(series) in summary["failure"]
    assert "Traceback" not in output, output

"""timeseries.csv and the measured window, sampled from a real busy process."""

from __future__ import annotations

import csv
import subprocess
import sys
import time

import pytest

from evt.procs import ProcessSampler
from evt.stress.timeseries import TimeSeries


@pytest.mark.slow
def test_samples_ops_and_tracer_cpu_over_the_window(tmp_path):
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    sampler = ProcessSampler(busy.pid, interval_s=0.05).start()
    started = time.monotonic()

    def done() -> dict[str, int]:  # a unit doing 1,000 ops/s, as its progress lines would say
        return {"ptrace": int((time.monotonic() - started) * 1000)}

    try:
        time.sleep(0.3)  # its "start-up": CPU spent before the release is not in the window
        before_release = sampler.usage().cpu_s
        series = TimeSeries(["ptrace"], done, sampler.usage, interval_s=0.2).start()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            time.sleep(0.05)
        series.stop()
        series.stop()  # a second stop changes nothing
    finally:
        busy.kill()
        busy.wait()
        sampler.stop()
    path = series.write(tmp_path / "timeseries.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["t_s", "tracer_cpu_s", "tracer_cpu_pct", "tracer_rss_bytes", "done.ptrace"]
    assert 5 <= len(rows) <= 9  # 1.2 s at 0.2 s, plus the first and the last sample
    times = [float(r["t_s"]) for r in rows]
    assert times[0] == 0.0 and times == sorted(times) and 1.1 <= times[-1] <= 2.0
    assert rows[0]["tracer_cpu_s"] == "0.0" and rows[0]["tracer_cpu_pct"] == ""
    done_ops = [int(r["done.ptrace"]) for r in rows]
    assert done_ops == sorted(done_ops) and done_ops[-1] > done_ops[0]
    assert all(int(r["tracer_rss_bytes"]) > 0 for r in rows)
    window = series.window()
    assert window["cpu_s"] == float(rows[-1]["tracer_cpu_s"])
    assert before_release > 0  # CPU it spent before the release is not in the window:
    assert float(rows[0]["tracer_cpu_s"]) == 0.0  # the window counts from the release
    assert window["cpu_s"] > 0  # a busy loop's share of 2 cores others load (5-100% of one)
    assert window["cpu_avg_pct"] == round(100 * window["cpu_s"] / window["wall_s"], 2)
    pcts = [float(r["tracer_cpu_pct"]) for r in rows[1:]]
    assert min(pcts) <= window["cpu_p95_pct"] <= max(pcts)


def test_without_tracer_figures_the_window_is_empty():
    series = TimeSeries(["a"], lambda: {"a": 1}, lambda: None, interval_s=0.05).start()
    time.sleep(0.12)
    series.stop()
    assert series.rows[-1]["tracer_cpu_s"] is None and series.rows[-1]["done.a"] == 1
    assert series.window() == {"cpu_s": None, "wall_s": None, "cpu_avg_pct": None, "cpu_p95_pct": None}

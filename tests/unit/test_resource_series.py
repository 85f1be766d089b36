"""evt.resource_series: the perf gate's per-second resource rows and its summary figures."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from evt.resource_series import SERIES_COLUMNS, SERIES_FILE, ResourceSeries, series_summary


def test_series_summary_is_computed_as_the_perf_gate_does():
    rows = [
        {"cpu_pct": c, "rss_kb": r, "io_read_bytes": io, "io_write_bytes": 2 * io}
        for c, r, io in [(0.0, 100, 10), (50.0, 300, 20), (10.0, 200, 40), (90.0, 250, 70)]
    ]
    summary = series_summary(rows)
    assert summary == {
        "peak_rss_kb": 300,
        "avg_cpu_pct": 37.5,
        "p95_cpu_pct": 50.0,  # sorted [0, 10, 50, 90], element int(0.95 * 4) = 3, counted from 1
        "io_read_total_bytes": 60,
        "io_write_total_bytes": 120,
        "resource_samples_count": 4,
    }
    assert series_summary(rows[:1])["p95_cpu_pct"] == 0.0
    assert series_summary([])["peak_rss_kb"] is None


def test_a_sample_is_due_each_interval_and_reads_the_process(tmp_path):
    series = ResourceSeries(os.getpid(), tmp_path / "tracer" / SERIES_FILE, interval_s=1.0)
    assert series.due(0.0)
    series.sample(now=100.0)
    assert not series.due(100.9) and series.due(101.0)
    series.sample(now=101.0)
    with open(tmp_path / "tracer" / SERIES_FILE) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == SERIES_COLUMNS and len(rows) == 2 == len(series.rows)
    assert rows[0]["cpu_pct"] == "0.0" and int(rows[0]["threads"]) >= 1
    assert int(rows[1]["rss_kb"]) > 1000 and int(rows[1]["vsz_kb"]) >= int(rows[1]["rss_kb"])


def test_a_process_that_is_gone_adds_no_row(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    series = ResourceSeries(int(done.stdout), tmp_path / SERIES_FILE)
    series.sample()
    assert series.rows == [] and series.summary()["resource_samples_count"] == 0
    assert (tmp_path / SERIES_FILE).read_text().strip() == ",".join(SERIES_COLUMNS)

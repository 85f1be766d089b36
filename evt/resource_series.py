"""A process's resources once a second, as Tracee's perf gate records them.

`resource_timeseries.csv` beside a managed process's log (evt/procs.py), with the perf
gate's columns (docs/tracee.md, "Perf-gate branch"), and the gate's summary figures
of it (peak RSS, average and p95 CPU %, IO totals) for tracer.csv and summary.json.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import psutil

SERIES_FILE = "resource_timeseries.csv"  # written beside a managed process's log
SERIES_COLUMNS = [
    "timestamp",
    "cpu_pct",
    "rss_kb",
    "vsz_kb",
    "threads",
    "io_read_bytes",
    "io_write_bytes",
    "voluntary_ctx_switches",
    "nonvoluntary_ctx_switches",
]


class ResourceSeries:
    """One process's resources every `interval_s`, as Tracee's perf gate records them from
    /proc/<pid>/{stat,status,io}: a CSV row per sample (timestamp in Unix seconds; CPU %
    of one core since the previous sample, 0.0 first), and the gate's summary figures."""

    def __init__(self, pid: int, path: Path, interval_s: float = 1.0):
        self.pid = pid
        self.path = Path(path)
        self.interval_s = interval_s
        self.rows: list[dict[str, float]] = []
        self._last: tuple[float, float] | None = None  # (monotonic time, cpu seconds)
        self._due = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerow(SERIES_COLUMNS)

    def due(self, now: float) -> bool:
        return now >= self._due

    def sample(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        try:
            proc = psutil.Process(self.pid)
            with proc.oneshot():
                times, mem = proc.cpu_times(), proc.memory_info()
                threads, ctx = proc.num_threads(), proc.num_ctx_switches()
                try:
                    io = proc.io_counters()
                    io_read, io_write = io.read_bytes, io.write_bytes
                except (psutil.AccessDenied, AttributeError):  # /proc/<pid>/io of another user
                    io_read = io_write = 0
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return
        cpu = times.user + times.system
        cpu_pct = 0.0 if self._last is None else 100.0 * (cpu - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last, self._due = (now, cpu), now + self.interval_s
        row = {
            "timestamp": round(time.time(), 3),
            "cpu_pct": round(max(cpu_pct, 0.0), 2),
            "rss_kb": mem.rss // 1024,
            "vsz_kb": mem.vms // 1024,
            "threads": threads,
            "io_read_bytes": io_read,
            "io_write_bytes": io_write,
            "voluntary_ctx_switches": ctx.voluntary,
            "nonvoluntary_ctx_switches": ctx.involuntary,
        }
        self.rows.append(row)
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([row[c] for c in SERIES_COLUMNS])

    def summary(self) -> dict[str, float | int | None]:
        """The perf gate's figures: peak RSS (max), mean CPU % (the first 0.0 included),
        p95 CPU % (ascending sort, element int(0.95 n) counted from 1), IO totals (last -
        first) and the sample count."""
        return series_summary(self.rows)


def series_summary(rows: list[dict[str, float]]) -> dict[str, float | int | None]:
    n = len(rows)
    if not n:
        return dict.fromkeys(
            ("peak_rss_kb", "avg_cpu_pct", "p95_cpu_pct", "io_read_total_bytes", "io_write_total_bytes"), None
        ) | {"resource_samples_count": 0}
    cpu = sorted(r["cpu_pct"] for r in rows)
    return {
        "peak_rss_kb": max(r["rss_kb"] for r in rows),
        "avg_cpu_pct": round(sum(cpu) / n, 2),
        "p95_cpu_pct": cpu[max(math.floor(0.95 * n), 1) - 1],
        "io_read_total_bytes": rows[-1]["io_read_bytes"] - rows[0]["io_read_bytes"],
        "io_write_total_bytes": rows[-1]["io_write_bytes"] - rows[0]["io_write_bytes"],
        "resource_samples_count": n,
    }

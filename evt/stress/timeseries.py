"""timeseries.csv: how a run went while its units ran, sampled every
`stress.progress_interval` from the barrier release to the units' end (the measured
window), and the tracer's CPU over that window (its start-up left out, so short runs
compare fairly with long ones).

Columns: `t_s` (seconds since the release), `tracer_cpu_s` (the tracer's CPU seconds
since the release), `tracer_cpu_pct` (its CPU over the last interval, % of one core),
`tracer_rss_bytes`, then `done.<unit>` (ops the unit has reported done) per unit.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from evt import faults
from evt.procs import Usage

BASE_COLUMNS = ["t_s", "tracer_cpu_s", "tracer_cpu_pct", "tracer_rss_bytes"]


class TimeSeries:
    """Samples in its own thread from start() (call it at the release) to stop() (at the units' end)."""

    def __init__(
        self, units: list[str], done: Callable[[], dict[str, int]], usage: Callable[[], Usage | None], interval_s: float
    ):
        self.units, self.done, self.usage = units, done, usage
        self.interval_s = max(interval_s, 0.05)
        self.rows: list[dict[str, object]] = []
        self._t0 = 0.0
        self._cpu0: float | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def columns(self) -> list[str]:
        return BASE_COLUMNS + [f"done.{unit}" for unit in self.units]

    def start(self) -> TimeSeries:
        self._t0 = time.monotonic()
        self.sample(at=self._t0)  # the release's own row: t_s 0 however loaded the host is
        self._thread = faults.start_thread(self._run, name="timeseries")
        return self

    def sample(self, at: float | None = None) -> None:
        t_s = (time.monotonic() if at is None else at) - self._t0
        usage = self.usage()
        done = self.done()
        with self._lock:
            row: dict[str, object] = {
                "t_s": round(t_s, 4),
                "tracer_cpu_s": None,
                "tracer_cpu_pct": None,
                "tracer_rss_bytes": None,
            }
            if usage is not None:
                if self._cpu0 is None:
                    self._cpu0 = usage.cpu_s
                row["tracer_cpu_s"] = cpu_s = round(usage.cpu_s - self._cpu0, 4)
                row["tracer_rss_bytes"] = usage.rss_bytes
                previous = self.rows[-1] if self.rows else {}
                prev_t, prev_cpu = previous.get("t_s"), previous.get("tracer_cpu_s")
                if isinstance(prev_t, float | int) and isinstance(prev_cpu, float | int) and t_s > prev_t:
                    row["tracer_cpu_pct"] = round(100.0 * (cpu_s - prev_cpu) / (t_s - prev_t), 2)
            row.update({f"done.{unit}": done.get(unit, 0) for unit in self.units})
            self.rows.append(row)

    def _run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        """The last sample (the units' end), then no more; safe to call more than once."""
        if self._halt.is_set():
            return
        self._halt.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self.sample()

    def window(self) -> dict[str, float | None]:
        """The tracer's CPU over the measured window: seconds, average and p95 % of one core."""
        with self._lock:
            rows = [r for r in self.rows if r["tracer_cpu_s"] is not None]
        if len(rows) < 2:
            return {"cpu_s": None, "wall_s": None, "cpu_avg_pct": None, "cpu_p95_pct": None}
        cpu_s = _seconds(rows[-1]["tracer_cpu_s"]) - _seconds(rows[0]["tracer_cpu_s"])
        wall_s = _seconds(rows[-1]["t_s"]) - _seconds(rows[0]["t_s"])
        pcts = [_seconds(r["tracer_cpu_pct"]) for r in rows if r["tracer_cpu_pct"] is not None]
        p95 = (
            statistics.quantiles(pcts, n=20, method="inclusive")[-1] if len(pcts) >= 2 else (pcts[0] if pcts else None)
        )
        return {
            "cpu_s": round(cpu_s, 4),
            "wall_s": round(wall_s, 4),
            "cpu_avg_pct": round(100.0 * cpu_s / wall_s, 2) if wall_s > 0 else None,
            "cpu_p95_pct": round(p95, 2) if p95 is not None else None,
        }

    def write(self, path: Path) -> Path:
        import csv

        with self._lock, open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        return path


def _seconds(value: object) -> float:
    """A figure sample() wrote into a row (a number: rows hold numbers and names)."""
    if not isinstance(value, int | float):
        raise TypeError(f"not a number in the time series: {value!r}")
    return float(value)

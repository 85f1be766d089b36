"""The tracer interface every tracer (tracee, bpftrace, none) implements.

The stress phases call, in order: check() before anything starts, command() for the
plan and dry-run, start(units) once the units exist (their container ids, pids and
cgroups are known), wait_ready() up to a deadline, poll() while the units run,
drain() after they finish (final scrapes, letting lost counters settle), stop(), and
report(). stop() must be safe to call at any point, more than once, and after a crash.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from evt.plan import Unit


@dataclass
class TracerReport:
    tracer: str
    command: list[str] = field(default_factory=list)
    # Events seen, keyed by unit name (one unit per event); None: this tracer/config counts nothing
    observed: dict[str, int] | None = None
    lost: dict[str, int] = field(default_factory=dict)  # lost-event counters, by counter name
    metrics: dict[str, float] = field(default_factory=dict)  # metric deltas over the run
    cpu_s: float | None = None  # user+sys of the tracer's whole process tree
    peak_rss_bytes: int | None = None
    wall_s: float | None = None  # how long the tracer ran (for its share of a core)
    log_path: str | None = None
    crashed: str | None = None  # why it died mid-run, if it did

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())


class Tracer(ABC):
    name = "tracer"

    def __init__(self, cfg, run_dir: Path):
        self.cfg = cfg  # the whole composed config
        self.run_dir = Path(run_dir)

    @abstractmethod
    def check(self, units: list[Unit]) -> None:
        """Refuse (UsageError) before anything starts when the tracer cannot run."""

    @abstractmethod
    def command(self, units: list[Unit]) -> list[str]:
        """The argv the tracer runs with (placeholders where ids are not known yet)."""

    @abstractmethod
    def start(self, units: list[Unit]) -> None: ...

    @abstractmethod
    def wait_ready(self) -> None:
        """Return when the tracer sees events; RunError (with its log tail) otherwise."""

    @abstractmethod
    def poll(self) -> str | None:
        """None while healthy; the reason once it has died."""

    def drain(self) -> None:
        """After the units finish, before stop(): final scrapes."""

    def pids(self) -> list[int]:
        """Processes the tracer started (recorded so `evt cleanup` can stop them)."""
        return []

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def report(self, units: list[Unit]) -> TracerReport: ...


class ProcessSampler:
    """Samples a process tree's CPU seconds and resident memory with psutil.

    CPU is user+sys of every process seen in the tree, each kept at its last reading
    once it exits (children's counters are not added: a waited-for child would count
    twice); the peak RSS is the largest sum over one sample.
    """

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid = pid
        self.interval_s = interval_s
        self.cpu_s = 0.0
        self.peak_rss = 0
        self.started = time.monotonic()
        self.ended: float | None = None
        self._seen: dict[int, float] = {}  # last CPU reading per pid, kept after it exits
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{pid}", daemon=True)

    def start(self) -> ProcessSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    self._seen[proc.pid] = t.user + t.system
                    rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.cpu_s = sum(self._seen.values())
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        if self.ended is None:
            self.sample()
            self.ended = time.monotonic()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    @property
    def wall_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

"""How a Tracee comes and goes: the part of TraceeTracer that depends on who starts it.

`tracee.auto=true` (the default): evt starts Tracee, waits until it is ready and stops
it (auto.py). `tracee.auto=false` (`--auto-tracee=false`): the user starts it;
evt says what to run and measures the Tracee it finds (manual.py). TraceeTracer picks
one when it is built and calls it without asking which it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from evt.procs import ProcessSampler
from evt.stress.plan import Unit
from evt.tracers.base import Durations


@dataclass(frozen=True)
class TraceeDurations(Durations):
    start_grace_s: float  # without /healthz: alive this long counts as started
    drain_s: float  # before the final scrape: lost counters lag


class Lifecycle(ABC):
    """Starting, watching and stopping one Tracee, and what came of it."""

    log_path: Path | None = None  # Tracee's output, when evt captures it

    def __init__(self) -> None:
        self.pid: int | None = None  # Tracee's pid (ours, or the user's)
        self.sampler: ProcessSampler | None = None  # its CPU and memory, when known
        self.ready = False
        self.ready_s: float | None = None  # start -> ready
        self.stopped = False  # stop() was called: an exit from then on is not a crash
        self.stop_method: str | None = None  # exited | sigterm | sigkill | kept | manual
        self.exit_code: int | None = None
        self.crashed: str | None = None  # why it died mid-run, if it did

    @abstractmethod
    def check(self) -> None:
        """Refuse (UsageError) what this way of running Tracee cannot do."""

    @abstractmethod
    def start(self, argv: list[str], json_file: str | None) -> None: ...

    @abstractmethod
    def wait_ready(self) -> None: ...

    @abstractmethod
    def poll(self) -> str | None:
        """None while Tracee runs (or after stop()); why it died otherwise."""

    @abstractmethod
    def alive(self) -> bool:
        """Worth scraping: Tracee may still answer."""

    @abstractmethod
    def wait_alive(self, seconds: float) -> bool:
        """Wait `seconds`; False as soon as Tracee exits."""

    @abstractmethod
    def stop(self) -> None:
        """Safe at any time and more than once."""

    def pids(self) -> list[int]:
        return []

    def bpf_cost(self) -> dict[str, float]:
        """The in-kernel cost of its BPF programs, read before it stops ({} when unknown)."""
        return {}

    def instructions(self, units: list[Unit]) -> list[str]:
        return []

    def prompt(self) -> str | None:
        return None

    def record(self) -> dict[str, object]:
        """What lifecycle.json keeps."""
        return {
            "pid": self.pid,
            "ready": self.ready,
            "ready_s": self.ready_s,
            "stopped_by": self.stop_method,
            "exit_code": self.exit_code,
            "crashed": self.crashed,
        }

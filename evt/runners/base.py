"""What every runner shares: unit states fed from the units' output, the start
barrier, and waits that poll a condition up to a deadline."""

from __future__ import annotations

import collections
import json
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from evt.errors import RunError
from evt.plan import Unit
from evt.procs import LOG_TAIL
from evt.trigger import TriggerResult, WorkerResult

_PREFIX = re.compile(r"^\[trigger:\d+:[a-z0-9_]+\] ")
BARRIER_NAME = "barrier"


@dataclass
class UnitState:
    """What the orchestrator knows of one unit, from its output lines and exit."""

    name: str
    total_ops: int
    waiting_since: float | None = None  # monotonic time it reported waiting
    done_ops: int = 0
    result: TriggerResult | None = None
    exit_code: int | None = None
    lines: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def feed(self, raw: str) -> None:
        line = _PREFIX.sub("", raw.rstrip("\n"))
        with self.lock:
            if not line.startswith('{"progress"'):
                self.lines.append(line)
            if line.startswith("Waiting at start barrier") and self.waiting_since is None:
                self.waiting_since = time.monotonic()
            elif line.startswith("{"):
                try:
                    data = json.loads(line)
                except ValueError:
                    return
                if "progress" in data:
                    self.done_ops = max(self.done_ops, int(data["progress"]["done"]))
                elif "per_worker" in data:
                    workers = [WorkerResult(**w) for w in data.pop("per_worker")]
                    self.result = TriggerResult(**data, per_worker=workers)
                    self.done_ops = self.result.ok + self.result.errors

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    def tail(self, n: int = LOG_TAIL) -> list[str]:
        with self.lock:
            return list(self.lines)[-n:]


class Runner(ABC):
    """Starts units blocked at a shared FIFO barrier, releases them, follows them."""

    name = "runner"

    def __init__(self, cfg, run_id: str, run_dir: Path):
        self.cfg = cfg
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.states: dict[str, UnitState] = {}
        self.changed = threading.Event()  # set whenever a unit exits
        self.notice: str | None = None  # one line for the user about how units run
        self.barrier_dir = self.run_dir / ".barrier"

    @property
    def barrier_path(self) -> Path:
        return self.barrier_dir / BARRIER_NAME

    @abstractmethod
    def check(self, units: list[Unit]) -> None:
        """Prerequisites (engine reachable, image present); UsageError if not."""

    @abstractmethod
    def barrier_in_unit(self) -> str:
        """The barrier's path as the units see it."""

    def make_barrier(self) -> None:
        """The FIFO every unit waits on (see evt.trigger.FifoGate)."""
        self.barrier_dir.mkdir(parents=True, exist_ok=True)
        if not self.barrier_path.exists():
            os.mkfifo(self.barrier_path, 0o600)

    @abstractmethod
    def start(self, units: list[Unit]) -> None:
        """Create and start every unit; fill in unit.container_id / pid / cgroup_path."""

    def wait_until_waiting(self, timeout_s: float) -> list[UnitState]:
        """Poll until every unit is waiting at the barrier or has already exited.

        Returns the units that exited early (reported by the caller; the others still
        run). RunError when none is left to run or the deadline passes.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            states = list(self.states.values())
            early = [s for s in states if s.finished and s.waiting_since is None]
            if len(early) == len(states):
                raise RunError(self._failure("exited before the start barrier was released", early))
            if all(s.waiting_since is not None or s.finished for s in states):
                return early
            if time.monotonic() >= deadline:
                late = [s.name for s in states if s.waiting_since is None and not s.finished]
                raise RunError(f"units not waiting at the start barrier after {timeout_s:.0f}s: {', '.join(late)}")
            time.sleep(0.01)

    def release(self) -> int:
        """Open and close the barrier FIFO for writing: every unit's poll() returns at once."""
        fd = os.open(self.barrier_path, os.O_WRONLY | os.O_NONBLOCK)
        released = time.time_ns()
        os.close(fd)
        return released

    def wait_until_done(self, timeout_s: float, on_tick: Callable[[], None] | None = None,
                        tick_s: float = 0.2) -> bool:
        """Poll until every unit has exited (True) or the deadline passes (False)."""
        deadline = time.monotonic() + timeout_s
        while not all(s.finished for s in self.states.values()):
            if on_tick:
                on_tick()
            if time.monotonic() >= deadline:
                return False
            self.changed.wait(min(tick_s, max(deadline - time.monotonic(), 0)))
            self.changed.clear()
        if on_tick:
            on_tick()
        return True

    @abstractmethod
    def cleanup(self) -> None:
        """Remove every unit of this run; safe at any phase and more than once."""

    def unit_exited(self, state: UnitState, exit_code: int) -> None:
        """Called by the thread following a unit when it has exited."""
        state.exit_code = exit_code
        self.changed.set()

    @staticmethod
    def _failure(what: str, states: list[UnitState]) -> str:
        parts = []
        for state in states:
            tail = "\n".join(f"    {line}" for line in state.tail())
            parts.append(f"unit {state.name} {what} (exit code {state.exit_code}); last log lines:\n{tail}")
        return "\n".join(parts)

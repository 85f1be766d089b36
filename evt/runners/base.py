"""What every runner shares: unit states fed by the unit protocol, each unit's output
kept whole in <run_dir>/units/<unit>.log, the start barrier, and waits that poll a
condition up to a deadline."""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from evt.errors import RunError
from evt.procs import LOG_TAIL, log_tail
from evt.runners.schema import RunnerConfig
from evt.stress.plan import RunContext, RunnerDescription, Unit
from evt.workload import protocol
from evt.workload.protocol import TriggerResult

BARRIER_NAME = "barrier"
UNITS_DIR = "units"


@dataclass
class UnitState:
    """What the orchestrator knows of one unit: the protocol records it sent (evt.workload.protocol)
    and its exit. Every line it printed goes to log_path; nothing else is read from them."""

    name: str
    total_ops: int
    log_path: Path
    waiting_since: float | None = None  # monotonic time it reported waiting
    done_ops: int = 0
    result: TriggerResult | None = None
    error: str | None = None  # the message of its Error record
    exit_code: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _log: TextIO | None = field(default=None, repr=False)

    def feed(self, raw: str) -> None:
        line = raw.rstrip("\n")
        msg = protocol.decode(line)
        with self.lock:
            self._write(line)
            if isinstance(msg, protocol.Waiting) and self.waiting_since is None:
                self.waiting_since = time.monotonic()
            elif isinstance(msg, protocol.Progress):
                self.done_ops = max(self.done_ops, msg.done)
            elif isinstance(msg, protocol.Result):
                self.result = msg.result
                self.done_ops = msg.result.ok + msg.result.errors
            elif isinstance(msg, protocol.Error):
                self.error = msg.message

    def note(self, line: str) -> None:
        """A line of the runner's own about this unit (e.g. why its output ended)."""
        with self.lock:
            self._write(line)

    def _write(self, line: str) -> None:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", buffering=1)  # noqa: SIM115 - open until close_log()
        self._log.write(line + "\n")

    def close_log(self) -> None:
        with self.lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    def tail(self, n: int = LOG_TAIL) -> list[str]:
        """The last n human lines of the unit's log (its protocol records left out)."""
        with self.lock:
            if self._log is not None:
                self._log.flush()
        return log_tail(self.log_path, n, skip=protocol.RECORD_START)


class Runner(ABC):
    """Starts units blocked at a shared FIFO barrier, releases them, follows them."""

    name = "runner"
    # whether the units' processes live outside evt's process tree (containers do): their
    # CPU is then not in what evt.bench.load counts as evt's own
    units_outside_evt = False

    def __init__(self, run: RunContext, **settings):
        """Built with its option's keys (conf/runner/<name>.yaml, evt.runners.schema) and
        `run`; never with the root config (evt.plugins)."""
        self.settings = RunnerConfig(**settings)
        self.run_id = run.run_id
        self.run_dir = Path(run.run_dir)
        self.states: dict[str, UnitState] = {}
        self.changed = threading.Event()  # set whenever a unit exits
        self.notice: str | None = None  # one line for the user about how units run
        self.barrier_dir = self.run_dir / ".barrier"
        self.units_dir = self.run_dir / UNITS_DIR

    def describe(self) -> RunnerDescription:
        """What one unit is here, in the plan's words (a process group unless a runner says)."""
        return RunnerDescription("process group", "process groups")

    def add_state(self, unit: Unit) -> UnitState:
        """The state of a unit about to start; its output goes to units/<unit>.log."""
        state = self.states[unit.name] = UnitState(unit.name, unit.total_ops, self.units_dir / f"{unit.name}.log")
        return state

    def unit_results(self) -> dict[str, TriggerResult | None]:
        """Each unit's reported figures (None: it sent no result), for the result tables."""
        return {name: state.result for name, state in self.states.items()}

    @property
    def barrier_path(self) -> Path:
        return self.barrier_dir / BARRIER_NAME

    @abstractmethod
    def check(self, units: list[Unit]) -> None:
        """Prerequisites (engine reachable, image present); UsageError if not."""

    def unit_capabilities(self) -> tuple[set[str], str] | None:
        """The capabilities a unit will hold and how to grant more, where the plan must check
        them; None where the runner checks every need itself or grants everything."""
        return None

    def unit_container_name(self, unit_name: str) -> str | None:
        """The name of the unit's container, for runners that make one."""
        return None

    @abstractmethod
    def barrier_in_unit(self) -> str:
        """The barrier's path as the units see it."""

    def make_barrier(self) -> None:
        """The FIFO every unit waits on (see evt.workload.trigger.FifoGate)."""
        self.barrier_dir.mkdir(parents=True, exist_ok=True)
        if not self.barrier_path.exists():
            os.mkfifo(self.barrier_path, 0o600)

    def remove_barrier(self) -> None:
        """The FIFO and its directory go when the run ends (cleanup calls this)."""
        self.barrier_path.unlink(missing_ok=True)
        try:
            self.barrier_dir.rmdir()
        except OSError:  # never made, or not empty: left as it is
            pass

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

    def wait_until_done(self, timeout_s: float, on_tick: Callable[[], None] | None = None, tick_s: float = 0.2) -> bool:
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
        state.close_log()
        state.exit_code = exit_code
        self.changed.set()

    @staticmethod
    def _failure(what: str, states: list[UnitState]) -> str:
        parts = []
        for state in states:
            tail = "\n".join(f"    {line}" for line in state.tail())
            parts.append(f"unit {state.name} {what} (exit code {state.exit_code}); last log lines:\n{tail}")
        return "\n".join(parts)

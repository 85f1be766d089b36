"""What happened to a stress run, recorded as it happens, and the verdict derived from it in
one place: the status, whether the results are partial, the failure and the exit code
that summary.json records and `evt stress` exits with.

Precedence, first match wins:
- status: the units could not be removed (failed) > interrupted by a signal > failed (an
  error stopped the run, it timed out, or units failed) > tracer_crashed > loss_exceeded > ok;
- exit code: 130 (SIGINT) / 143 (SIGTERM) > 1 for any other status but ok, or results that
  could not be written > 0;
- failure: the first one recorded (later ones are only logged);
- partial: unless the tracer was collected with every unit finished, and nothing stopped
  the run since.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("ok", "failed", "interrupted", "tracer_crashed", "loss_exceeded")
SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


@dataclass
class Outcome:
    failure: str | None = None  # the first failure: what the run's summary names
    interrupted_by: str | None = None  # the signal's name
    timed_out: bool = False  # stress.timeout passed with units still running
    crashed: str | None = None  # why the tracer died while the units ran
    stopped: bool = False  # an error, a fault or a failed cleanup cut the run short
    collected: bool = False  # the tracer was stopped and its figures collected
    cleanup_failed: bool = False
    loss_exceeded: bool = False
    results_unwritten: bool = False

    # -- what happened ------------------------------------------------------------------

    def _failed(self, message: str) -> bool:
        """Record a failure; False when an earlier one is already the run's."""
        if self.failure is not None:
            return False
        self.failure = message
        return True

    def fail(self, message: str) -> bool:
        """An error stopped the run (a phase's error, a thread's fault, a bug); True when it
        is the run's failure (the first)."""
        self.stopped = True
        return self._failed(message)

    def interrupted(self, signame: str) -> None:
        """SIGINT or SIGTERM ended the run (cleanup still runs)."""
        self.interrupted_by = signame

    def timeout(self, message: str) -> None:
        """stress.timeout passed with units still running: they were stopped."""
        self.timed_out = True
        self._failed(message)

    def unit_failures(self, message: str) -> None:
        """Units exited with an error: the run fails, its figures are complete."""
        self._failed(message)

    def tracer_crashed(self, reason: str) -> None:
        """The tracer died while the units ran (the first reason is kept)."""
        if self.crashed is None:
            self.crashed = reason

    def tracer_collected(self) -> None:
        """The tracer was stopped and reported: the figures are whole unless units were cut off."""
        self.collected = True

    def cleanup_failure(self, message: str) -> None:
        """The run's units could not be removed (`evt cleanup` can, later)."""
        self.cleanup_failed = True
        self.stopped = True
        self._failed(message)

    def loss_gate_failed(self) -> None:
        """stress.max_loss_pct was exceeded (a verdict only for a run that is otherwise ok)."""
        self.loss_exceeded = True

    def unwritten(self) -> None:
        """The results could not be written: the run cannot have passed."""
        self.results_unwritten = True

    # -- the verdict ----------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self.cleanup_failed:
            return "failed"
        if self.interrupted_by is not None:
            return "interrupted"
        if self.failure is not None:
            return "failed"
        if self.crashed is not None and self.collected:
            return "tracer_crashed"
        if self.loss_exceeded:
            return "loss_exceeded"
        return "ok"

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return SIGNAL_EXIT_CODES.get(self.interrupted_by, 143)
        return 0 if self.status == "ok" and not self.results_unwritten else 1

    @property
    def partial(self) -> bool:
        return not self.collected or self.timed_out or self.stopped or self.interrupted_by is not None

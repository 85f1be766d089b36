"""The tracer interface every tracer (tracee, bpftrace, none) implements.

The stress session calls, in order: check() before anything starts, command() for the
plan and dry-run, start(units) once the units exist (their container ids, pids and
cgroups are known), wait_ready() up to a deadline, poll() while the units run,
drain() after they finish (final scrapes, letting lost counters settle), stop(), and
report(). stop() must be safe to call at any point, more than once, and after a crash.

Around the phases the session calls the hooks below, whichever tracer it has; their
defaults do nothing, so a tracer overrides only what it needs: start_title() (the
phase 3 header), manual_instructions(units) (lines shown after start()),
manual_prompt() (when not None, the session waits for ENTER before wait_ready()) and
endpoints() (lines shown before the --wait-before-trigger prompt), usage() (CPU and
memory now, sampled while the units run) and version() (what the run record names as
the tracer's version).

A tracer is built from its own config node (conf/tracer/<name>.yaml: its keys are the
constructor's keyword arguments) and `run`, what it is told of the run (RunContext); it
never sees the root config (evt.plugins). Tracers that run a program extend
evt.tracers.process.ProcessTracer.

Tracers say what they do through logging (`logging.getLogger(__name__)`), never print.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from evt.config.spec import parse_seconds
from evt.procs import Usage
from evt.stress.plan import RunContext, Unit


@dataclass
class TracerReport:
    tracer: str
    command: list[str] = field(default_factory=list)
    # Events seen, keyed by unit name (one unit per event); None: this tracer/config counts nothing
    observed: dict[str, int] | None = None
    # Events the tracer's probes saw in the kernel, by unit, when it knows that apart from
    # what reached its userspace (bpftrace stream mode): seen - observed is its own loss
    seen: dict[str, int] | None = None
    lost: dict[str, int] = field(default_factory=dict)  # lost-event counters, by counter name
    metrics: dict[str, float] = field(default_factory=dict)  # metric deltas over the run
    cpu_s: float | None = None  # user+sys of the tracer's whole process tree
    peak_rss_bytes: int | None = None
    wall_s: float | None = None  # how long the tracer ran (for its share of a core)
    log_path: str | None = None
    crashed: str | None = None  # why it died mid-run, if it did
    # the perf gate's figures of the tracer's resource time series (resource_series.series_summary)
    resources: Mapping[str, object] | None = None
    # per unit name: the tracer's own per-event counts, e.g. {"submit_attempts": N, "submit_failures": N}
    per_unit: dict[str, dict[str, int]] | None = None

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())


@dataclass(frozen=True)
class Durations:
    """A tracer's durations in seconds, parsed once from its config section when the
    tracer is built: field `<key>_s` holds `<section>.<key>` (a bad one is a UsageError
    naming it). Tracers with more durations extend it."""

    ready_timeout_s: float
    init_cooldown_s: float
    stop_timeout_s: float

    @classmethod
    def parse(cls, section, prefix: str):
        values = {}
        for f in fields(cls):
            key = f.name.removesuffix("_s")
            values[f.name] = parse_seconds(str(getattr(section, key)), f"{prefix}.{key}")
        return cls(**values)


class Tracer(ABC):
    name = "tracer"

    def __init__(self, run: RunContext, name: str | None = None):
        self.run = run
        self.run_dir = Path(run.run_dir)
        if name:
            self.name = name

    def outside_evt(self) -> bool:
        """Whether the tracer's process lives outside evt's process tree (one evt did not
        start): its CPU is then not in what evt.bench.load counts as evt's own."""
        return False

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

    def drain(self) -> None:  # noqa: B027 - optional: most tracers have nothing to drain
        """After the units finish, before stop(): final scrapes."""

    def pids(self) -> list[int]:
        """Processes the tracer started (recorded so `evt cleanup` can stop them)."""
        return []

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def report(self, units: list[Unit]) -> TracerReport: ...

    # -- hooks the session calls around the phases (no-op defaults) ------------------

    def start_title(self) -> str:
        """The phase 3 header."""
        return f"Starting tracer {self.name}"

    def manual_instructions(self, units: list[Unit]) -> list[str]:
        """Lines for the user, shown after start() (e.g. a command to run by hand)."""
        return []

    def manual_prompt(self) -> str | None:
        """When not None, the session waits for ENTER with this prompt before wait_ready()."""
        return None

    def endpoints(self) -> list[str]:
        """Lines shown before the --wait-before-trigger prompt (where to watch the tracer)."""
        return []

    def usage(self) -> Usage | None:
        """The tracer's CPU seconds so far and resident memory now (sampled while the units
        run, for timeseries.csv and the measured window); None when it is not measured."""
        return None

    def version(self) -> str | None:
        """The tracer's version as it reports it (e.g. `bpftrace --version`), recorded in
        summary.json; None when it has none or cannot say."""
        return None

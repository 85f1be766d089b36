"""The plan of a stress run: what `--dry-run` prints and what a real run executes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from evt.workload.marker import Marker, Target


@dataclass(frozen=True)
class RunContext:
    """What a plugin (tracer, runner) is told of its run, beside its own config node."""

    run_id: str
    run_dir: Path
    runner: str  # the runner's name (a tracer scopes containers or process trees by it)


@dataclass(frozen=True)
class RunnerDescription:
    """How a runner's units are named in what a run prints, and what they run from
    (Runner.describe()): the session and the lines never ask which runner they have."""

    singular: str  # one unit: "container", "process group"
    plural: str
    image: str | None = None  # the image every unit runs, where units are containers

    @property
    def title(self) -> str:
        return self.plural.title()

    @property
    def ids(self) -> str:
        return f"{self.singular.title()} IDs"


@dataclass
class Unit:
    """One event of the run, executed in one container (or one local process group)."""

    name: str  # unique in the run; the event name
    event: str
    mode: str
    instances: int
    ops: int
    sleep: str
    marker: Marker
    target: Target  # ground truth, its filter rendered with the marker
    argv: list[str]  # the `evt trigger ...` command the unit runs
    container_name: str | None = None
    rate: float | None = None  # ops/s per instance; the sleep is not used when set
    # Filled in by the runner once the unit exists:
    container_id: str | None = None
    pid: int | None = None  # host pid of the unit's root process
    cgroup_path: str | None = None  # the unit's cgroup v2 directory (tracer scope)

    @property
    def total_ops(self) -> int:
        return self.instances * self.ops

    @property
    def pace(self) -> str:
        return f"rate {self.rate:g} ops/s" if self.rate is not None else f"sleep {self.sleep}"

    @property
    def expected_events(self) -> int:
        return self.total_ops * self.target.per_op


@dataclass
class Plan:
    run_id: str
    runner: str
    tracer: str
    units: list[Unit] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    tracer_command: list[str] = field(default_factory=list)

    @property
    def total_ops(self) -> int:
        return sum(u.total_ops for u in self.units)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        for unit, raw in zip(self.units, data["units"], strict=True):
            raw["marker"] = unit.marker.as_dict()
        data["total_ops"] = self.total_ops
        return data

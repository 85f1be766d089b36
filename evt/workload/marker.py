"""The per-run values that mark a run's events (Marker) and the ground truth a tracer
counts them by (Target). A leaf module: the catalog, the native actions, the plan and the
tracers all use these, so it imports nothing of theirs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from evt.config.templating import render_string


@dataclass(frozen=True)
class Marker:
    """Per-run values by which a tracer tells this run's events from anything else."""

    token: str

    @classmethod
    def for_run(cls, run_id: str, event: str) -> Marker:
        return cls(hashlib.sha1(f"{run_id}/{event}".encode()).hexdigest()[:8])

    @property
    def dir(self) -> str:
        return f"/tmp/evt-{self.token}"

    @property
    def file(self) -> str:
        return f"{self.dir}/marker"

    @property
    def exe(self) -> str:
        return f"{self.dir}/true"

    @property
    def comm(self) -> str:
        """The comm native workers take while they run ops (12 characters)."""
        return f"evt-{self.token}"

    @property
    def child_comm(self) -> str:
        """The comm of processes native workers fork (12 characters)."""
        return f"evc-{self.token}"

    @property
    def port(self) -> int:
        return 20000 + int(self.token, 16) % 40000

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ("token", "dir", "file", "exe", "comm", "child_comm", "port")}


@dataclass(frozen=True)
class Target:
    """Ground truth of one mode: the probe that sees the target event and its filter."""

    probe: str
    filter: str
    per_op: int
    exact: bool  # per_op is exact (native ops, scripts with per_op_is: exact); else a lower bound
    relation: str = "exact"  # how the count relates to the Tracee event: a key of catalog.RELATIONS
    reason: str = ""  # why, for proxy and unverified

    def rendered(self, event: str, marker: Marker) -> Target:
        """This target with its filter rendered for one run: the Jinja placeholders
        (`{{ marker.comm }}`, `{{ event }}`, ...) replaced by the run's values."""
        return replace(self, filter=render_string(self.filter, event=event, marker=marker.as_dict()))

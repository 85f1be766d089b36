"""tracer=none: run the units with no tracer attached.

The baseline of a comparison: what the triggers reach on this host when nothing traces
them. It starts nothing, counts nothing (observed=None) and never fails.
"""

from __future__ import annotations

from evt.stress.plan import Unit
from evt.tracers.base import Tracer, TracerReport


class NoneTracer(Tracer):
    name = "none"

    def check(self, units: list[Unit]) -> None:
        return None

    def command(self, units: list[Unit]) -> list[str]:
        return []

    def start(self, units: list[Unit]) -> None:
        return None

    def wait_ready(self) -> None:
        return None

    def poll(self) -> str | None:
        return None

    def stop(self) -> None:
        return None

    def report(self, units: list[Unit]) -> TracerReport:
        return TracerReport(tracer=self.name, observed=None)

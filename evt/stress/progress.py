"""The live display of a stress run: ops done per unit and their rate."""

from __future__ import annotations

import time

from rich.table import Table

from evt.stress.plan import Plan


class ProgressDisplay:
    """The table rich.live redraws while the units run (the units' own progress messages
    are evt.workload.protocol.Progress)."""

    def __init__(self, runner, plan: Plan):
        self.runner, self.plan = runner, plan
        self.started = time.monotonic()

    def table(self) -> Table:
        table = Table(title="evt stress: progress")
        for column in ("unit", "done", "total", "%", "ops/s", "state"):
            table.add_column(column, justify="right" if column not in ("unit", "state") else "left")
        elapsed = max(time.monotonic() - self.started, 1e-9)
        for unit in self.plan.units:
            state = self.runner.states[unit.name]
            status = (
                "running" if not state.finished else ("done" if state.exit_code == 0 else f"exit {state.exit_code}")
            )
            rate = state.result.ops_per_s if state.result else state.done_ops / elapsed
            table.add_row(
                unit.name,
                f"{state.done_ops:,}",
                f"{unit.total_ops:,}",
                f"{100 * state.done_ops / max(unit.total_ops, 1):.0f}",
                f"{rate:,.0f}",
                status,
            )
        return table

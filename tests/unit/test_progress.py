"""The live progress table: ops done per unit, share of the total, state."""

from __future__ import annotations

from types import SimpleNamespace

from evt.runners.base import UnitState
from evt.stress.plan import Plan
from evt.stress.progress import ProgressDisplay
from helpers import make_unit


def test_rows_follow_the_units_states(tmp_path):
    units = [make_unit("ptrace", ops=100), make_unit("security_file_open", instances=2, ops=50)]
    states = {u.name: UnitState(u.name, u.total_ops, tmp_path / f"{u.name}.log") for u in units}
    states["ptrace"].done_ops = 25
    states["security_file_open"].done_ops, states["security_file_open"].exit_code = 100, 0
    table = ProgressDisplay(
        SimpleNamespace(states=states), Plan(run_id="r", runner="local", tracer="none", units=units)
    ).table()
    columns = {c.header: list(c.cells) for c in table.columns}
    assert columns["unit"] == ["ptrace", "security_file_open"]
    assert columns["done"] == ["25", "100"] and columns["total"] == ["100", "100"]
    assert columns["%"] == ["25", "100"]
    assert columns["state"] == ["running", "done"]

"""The plan of a stress run: units placed by the runner's hooks, settings checked first."""

from __future__ import annotations

import dataclasses

import pytest

from evt.config.spec import EventSpec
from evt.errors import UsageError
from evt.stress.planner import build_plan
from evt.stress.request import RunRequest, StressSettings
from helpers import compose_cfg, runner_from


def planned(tmp_path, cfg, specs: list[EventSpec]):
    """The plan of a run of `cfg` with these specs, run id r1."""
    request = dataclasses.replace(RunRequest.from_config(cfg), run_id="r1", specs=tuple(specs))
    return build_plan(request, runner_from(cfg, "r1", tmp_path))


def plan_for(tmp_path, runner: str):
    cfg = compose_cfg(f"runner={runner}", "tracer=none", "events=[ptrace]")
    return planned(tmp_path, cfg, [EventSpec("ptrace", 1, 5, "0s", None), EventSpec("ptrace", 2, 3, "0s", None)])


def test_docker_units_are_named_containers(tmp_path):
    plan = plan_for(tmp_path, "docker")
    assert [u.name for u in plan.units] == ["ptrace", "ptrace-2"]  # a repeated event gets a suffix
    assert [u.container_name for u in plan.units] == ["evt-stress-ptrace-r1", "evt-stress-ptrace-2-r1"]
    assert plan.phases[1] == "2. start 2 containers, each waiting at the start barrier"
    assert plan.units[0].argv[plan.units[0].argv.index("--start-fifo") + 1] == "/evt-barrier/barrier"
    assert plan.total_ops == 5 + 6


def test_local_units_are_process_groups(tmp_path):
    plan = plan_for(tmp_path, "local")
    assert [u.container_name for u in plan.units] == [None, None]
    assert plan.phases[1] == "2. start 2 process groups, each waiting at the start barrier"
    assert plan.units[1].argv[plan.units[1].argv.index("--start-fifo") + 1] == str(tmp_path / ".barrier" / "barrier")


def test_units_are_paced_by_their_sleep_or_their_rate(tmp_path):
    cfg = compose_cfg("runner=local", "tracer=none", "events=[ptrace]")
    specs = [EventSpec("ptrace", 1, 5, "1ms", None), EventSpec("security_file_open", 2, 3, rate=2500.0)]
    slept, paced = planned(tmp_path, cfg, specs).units
    assert (
        slept.argv[slept.argv.index("--ops") :][:4] == ["--ops", "5", "--sleep", "1ms"] and "--rate" not in slept.argv
    )
    assert (
        paced.argv[paced.argv.index("--ops") :][:4] == ["--ops", "3", "--rate", "2500.0"]
        and "--sleep" not in paced.argv
    )
    assert (slept.pace, paced.pace) == ("sleep 1ms", "rate 2500 ops/s")


@pytest.mark.parametrize(
    "override, message",
    [
        ("stress.timeout=soon", r"stress\.timeout"),
        ("stress.max_loss_pct=150", r"stress\.max_loss_pct=150.0 is not a percentage"),
    ],
)
def test_bad_settings_are_refused(override, message):
    with pytest.raises(UsageError, match=message):
        StressSettings.from_config(compose_cfg(override))

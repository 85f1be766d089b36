"""Runners are built from the config group's `_target_`, never picked by name."""

from __future__ import annotations

import pytest
from helpers import compose_cfg

from evt.errors import UsageError
from evt.plugins import make_runner
from evt.runners.docker import DockerRunner
from evt.runners.local import LocalRunner


@pytest.mark.parametrize("option, cls, noun", [("docker", DockerRunner, "containers"),
                                               ("local", LocalRunner, "process groups")])
def test_the_runner_is_the_class_its_yaml_names(tmp_path, option, cls, noun):
    runner = make_runner(compose_cfg(f"runner={option}"), "r1", tmp_path)
    assert type(runner) is cls and runner.run_id == "r1" and runner.run_dir == tmp_path
    assert runner.units_noun == noun


def test_only_a_container_runner_names_containers(tmp_path):
    assert make_runner(compose_cfg("runner=docker"), "r1", tmp_path).unit_container_name("a_b") == "evt-stress-a-b-r1"
    assert make_runner(compose_cfg("runner=local"), "r1", tmp_path).unit_container_name("a_b") is None


def test_a_target_that_is_no_runner_is_a_usage_error(tmp_path):
    for target in ("evt.runners.nowhere.Runner", "evt.stress.plan.Unit"):
        cfg = compose_cfg("runner=local", f"runner._target_={target}")
        with pytest.raises(UsageError, match=rf"unknown runner 'local' \(_target_ '{target}' is not a runner class\): "
                                             r"use one of runner=docker, runner=local \(the runner config group, conf/runner/\)"):
            make_runner(cfg, "r1", tmp_path)

"""Plugins are built from the config group's `_target_` and their own node, never picked by
name; their schemas and sections are their own (docs/plugins.md)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evt.config.schema import plugin_schema_modules
from evt.config.sections import SECTIONS, plugin_section
from evt.errors import UsageError
from evt.runners.docker import DockerRunner
from evt.runners.local import LocalRunner
from evt.runners.schema import RunnerConfig
from evt.tracers.bpftrace.schema import BpftraceConfig
from helpers import compose_cfg, runner_from, tracer_from


@pytest.mark.parametrize(
    "option, cls, noun", [("docker", DockerRunner, "containers"), ("local", LocalRunner, "process groups")]
)
def test_the_runner_is_the_class_its_yaml_names(tmp_path, option, cls, noun):
    runner = runner_from(compose_cfg(f"runner={option}"), "r1", tmp_path)
    assert type(runner) is cls and runner.run_id == "r1" and runner.run_dir == tmp_path
    assert runner.describe().plural == noun


def test_only_a_container_runner_names_containers(tmp_path):
    assert runner_from(compose_cfg("runner=docker"), "r1", tmp_path).unit_container_name("a_b") == "evt-stress-a-b-r1"
    assert runner_from(compose_cfg("runner=local"), "r1", tmp_path).unit_container_name("a_b") is None


def test_a_target_that_is_no_runner_is_a_usage_error(tmp_path):
    for target in ("evt.runners.nowhere.Runner", "evt.stress.plan.Unit"):
        cfg = compose_cfg("runner=local", f"runner._target_={target}")
        with pytest.raises(
            UsageError,
            match=rf"unknown runner 'local' \(_target_ '{target}' is not a runner class\): "
            r"use one of runner=docker, runner=local \(the runner config group, conf/runner/\)",
        ):
            runner_from(cfg, "r1", tmp_path)


def test_a_runner_keeps_its_own_settings_typed(tmp_path):
    runner = runner_from(compose_cfg("runner=docker", "runner.memory=64m", "runner.tmpfs=[/tmp,/run]"), "r1", tmp_path)
    assert isinstance(runner.settings, RunnerConfig)
    assert runner.settings.memory == "64m" and list(runner.settings.tmpfs) == ["/tmp", "/run"]


def test_every_plugin_schema_module_is_found():
    assert {
        "evt.runners.schema",
        "evt.tracers.schema",
        "evt.tracers.tracee.schema",
        "evt.tracers.bpftrace.schema",
    } <= set(plugin_schema_modules())


@pytest.mark.slow
def test_tool_sections_compose_whichever_tracer_runs():
    """tracee.* and bpftrace.* are top-level sections their plugins declare: a sweep over
    tracer=... with either's keys composes for every job, and a wrong key is still refused."""
    for tracer in ("tracee", "bpftrace", "none", "opensnoop"):
        cfg = compose_cfg(f"tracer={tracer}", "tracee.buffers.kernel_events=512", "bpftrace.mode=stream")
        assert cfg.tracee.buffers.kernel_events == 512 and cfg.bpftrace.mode == "stream"
    with pytest.raises(UsageError, match="buffer_pagez"):
        compose_cfg("bpftrace.buffer_pagez=8")


def test_a_tracer_option_hands_its_section_over_as_settings(tmp_path):
    tracer = tracer_from(compose_cfg("tracer=bpftrace", "bpftrace.buffer_pages=8"), tmp_path, "r1")
    assert tracer.settings.buffer_pages == 8 and tracer.run.run_id == "r1" and tracer.run.runner == "docker"


def test_a_section_declared_twice_is_refused():
    @dataclass
    class Other:
        mode: str = "x"

    with pytest.raises(ValueError, match="declared twice"):
        plugin_section("bpftrace", Other)
    assert SECTIONS["bpftrace"] is BpftraceConfig


def test_a_plugins_own_refusal_reaches_the_user_unwrapped(tmp_path):
    with pytest.raises(UsageError, match=r"bpftrace\.stop_timeout"):
        tracer_from(compose_cfg("tracer=bpftrace", "bpftrace.stop_timeout=soon"), tmp_path)

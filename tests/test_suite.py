"""Suite files (the seed's format), scenario selection and the run's event list."""

from __future__ import annotations

import textwrap

import pytest
from omegaconf import OmegaConf

from evt.errors import UsageError
from evt.spec import EventSpec
from evt.suite import apply_knobs, embedded_scenarios, load_suite, resolve_specs, select_scenarios
from helpers import compose_cfg


def write(tmp_path, text, name="suite.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


SUITE = """
name: example
description: two scenarios
scenarios:
  - name: smoke
    events:
      - security_file_open:ops=10
      - ptrace
  - name: filesystem
    groups:
      - name: open
        events: [security_file_open:instances=2:ops=5]
      - name: links
        events: [security_inode_symlink:ops=3, security_inode_unlink]
"""


def test_suite_loads_events_and_groups_in_order(tmp_path):
    scenarios = load_suite(write(tmp_path, SUITE))
    assert [s.name for s in scenarios] == ["smoke", "filesystem"]
    assert scenarios[0].events == ("security_file_open:ops=10", "ptrace")
    assert scenarios[1].events == ("security_file_open:instances=2:ops=5", "security_inode_symlink:ops=3", "security_inode_unlink")


@pytest.mark.parametrize("text, message", [
    ("name: x\n", "lacks a top-level `scenarios:`"),
    ("scenarios: [\n", "not valid YAML"),
    ("scenarios:\n  - name: a\n    events: [ptrace]\n    groups: [{name: g, events: [ptrace]}]\n", "both `events` and `groups`"),
    ("scenarios:\n  - name: a\n", "neither `events` nor `groups`"),
    ("scenarios:\n  - events: [ptrace]\n", "has no name"),
    ("scenarios:\n  - name: a\n    events: ['ptrace:ops=0']\n", "ops"),
    ("scenarios:\n  - name: a\n    groups: [{events: [ptrace]}]\n", "every group needs `name` and `events`"),
    ("scenarios: []\n", "non-empty list"),
])
def test_bad_suite_files_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_suite(write(tmp_path, text))


def test_missing_suite_file_names_the_path(tmp_path):
    with pytest.raises(UsageError, match="nope.yaml.*not found"):
        load_suite(str(tmp_path / "nope.yaml"))


def test_selection_rules(tmp_path):
    suite = write(tmp_path, SUITE)
    single = write(tmp_path, "scenarios:\n  - name: only\n    events: [ptrace]\n", "single.yaml")
    assert [s.name for s in select_scenarios([single], [], False)] == ["only"]  # implicit
    assert [s.name for s in select_scenarios([suite], ["filesystem"], False)] == ["filesystem"]
    assert [s.name for s in select_scenarios([suite], ["filesystem", "smoke"], False)] == ["filesystem", "smoke"]
    assert [s.name for s in select_scenarios([suite, single], [], True)] == ["smoke", "filesystem", "only"]
    with pytest.raises(UsageError, match="choose with --scenario"):
        select_scenarios([suite], [], False)
    with pytest.raises(UsageError, match="unknown scenario 'nope'.*smoke, filesystem"):
        select_scenarios([suite], ["nope"], False)
    with pytest.raises(UsageError, match="mutually exclusive"):
        select_scenarios([suite], ["smoke"], True)


def test_scenario_names_without_files_come_from_the_embedded_catalog():
    names = {s.name for s in embedded_scenarios()}
    assert {"smoke", "filesystem", "network", "process", "bpf", "all"} <= names
    assert [s.name for s in select_scenarios([], ["network"], False)] == ["network"]


def test_merge_order_is_group_scenario_then_suite_then_cli(tmp_path):
    suite = write(tmp_path, SUITE)
    cfg = compose_cfg("scenario=bpf", f"events_files=['{suite}']", "scenarios=[smoke]", "events=['switch_task_ns:ops=7']")
    specs = resolve_specs(cfg)
    assert [s.event for s in specs] == ["security_bpf_prog", "security_file_open", "ptrace", "switch_task_ns"]
    assert specs[-1].ops == 7


def test_no_event_at_all_is_an_error_listing_scenarios():
    with pytest.raises(UsageError, match="no events to run.*smoke"):
        resolve_specs(compose_cfg())


def test_sweep_knobs_override_every_event():
    cfg = compose_cfg("scenario=smoke", "stress.instances=3", "stress.ops=11", "stress.sleep=1ms", "stress.mode=script")
    specs = resolve_specs(cfg)
    assert specs and all((s.instances, s.ops, s.sleep, s.mode) == (3, 11, "1ms", "script") for s in specs)


def test_knobs_are_validated():
    stress = OmegaConf.create({"instances": 0, "ops": None, "sleep": None, "mode": None})
    with pytest.raises(UsageError, match="stress.instances"):
        apply_knobs(EventSpec("ptrace"), stress)
    stress = OmegaConf.create({"instances": None, "ops": None, "sleep": "fast", "mode": None})
    with pytest.raises(UsageError, match="fast"):
        apply_knobs(EventSpec("ptrace"), stress)

"""Suite files (the seed's format), scenario selection and the run's event list."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from evt.config.spec import EventSpec
from evt.errors import UsageError
from evt.stress.suite import (
    MAX_SUITE_BYTES,
    MAX_SUITE_EVENTS,
    Knobs,
    apply_knobs,
    embedded_scenarios,
    load_suite,
    select_scenarios,
)
from helpers import assert_one_paragraph, compose_cfg


def resolve_specs(cfg) -> list[EventSpec]:
    """The events of a composed config as a run resolves them (evt.stress.request)."""
    from evt.stress import request, suite

    return list(suite.resolve_specs(request.event_sources(cfg), request.knobs(cfg)).specs)


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
    assert scenarios[1].events == (
        "security_file_open:instances=2:ops=5",
        "security_inode_symlink:ops=3",
        "security_inode_unlink",
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\n", "{path}: at least one scenario is required"),
        ("scenarios: []\n", "{path}: at least one scenario is required"),
        ("scenarios: [\n", "{path}: not valid YAML (while parsing"),  # `<path>: <err>`, err as PyYAML words it
        ("scenarios:\n  - name: a\n", '{path}: scenario "a" must have at least one of events or groups'),
        (
            "scenarios:\n  - name: a\n    groups: [{name: g, events: []}]\n",  # an empty group does not count
            '{path}: scenario "a" must have at least one of events or groups',
        ),
        (
            "scenarios:\n  - name: a\n    events: [ptrace]\n  - events: [ptrace]\n",
            "{path}: scenario at index 1 has no name",
        ),
        (
            "scenarios:\n  - name: a\n    events: [ptrace]\n  - name: a\n    events: [ptrace]\n",
            '{path}: duplicate scenario name "a"',
        ),
        (
            "scenarios:\n  - name: a\n    events: ['ptrace:ops=0']\n",
            'invalid event spec "ptrace:ops=0": ops must be greater than 0, got 0',
        ),
    ],
)
def test_bad_suite_files_are_refused_with_the_originals_words(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_suite(path)
    assert str(err.value).startswith(message.format(path=path))


def test_events_and_groups_together_and_unknown_keys(tmp_path):
    path = write(
        tmp_path,
        "scenarios:\n  - name: a\n    owner: me\n    events: [ptrace]\n"
        "    groups: [{name: g, events: [security_file_open]}]\n",
    )
    assert load_suite(path)[0].events == ("ptrace", "security_file_open")


def test_missing_suite_file_names_the_path(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(UsageError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: No such file or directory")


def test_selection_rules(tmp_path):
    suite = write(tmp_path, SUITE)
    single = write(tmp_path, "scenarios:\n  - name: only\n    events: [ptrace]\n", "single.yaml")
    assert [s.name for s in select_scenarios([single], [], False)] == ["only"]  # implicit
    assert [s.name for s in select_scenarios([suite], ["filesystem"], False)] == ["filesystem"]
    assert [s.name for s in select_scenarios([suite], ["filesystem", "smoke"], False)] == ["filesystem", "smoke"]
    assert [s.name for s in select_scenarios([suite, single], [], True)] == ["smoke", "filesystem", "only"]
    with pytest.raises(
        UsageError,
        match=r"^multiple scenarios available: specify --scenario or --all-scenarios "
        r"\(e\.g\. --scenario smoke, filesystem\)$",
    ):
        select_scenarios([suite], [], False)
    with pytest.raises(UsageError, match=r'^scenario "nope" not found\nScenarios loaded: smoke, filesystem'):
        select_scenarios([suite], ["nope"], False)
    with pytest.raises(UsageError, match=r"^--scenario and --all-scenarios are mutually exclusive$"):
        select_scenarios([suite], ["smoke"], True)


def test_across_files_the_last_loaded_wins_in_first_appearance_order(tmp_path):
    first = write(tmp_path, SUITE, "first.yaml")
    second = write(
        tmp_path,
        "scenarios:\n  - name: extra\n    events: [ptrace]\n  - name: smoke\n    events: [switch_task_ns]\n",
        "second.yaml",
    )
    chosen = select_scenarios([first, second], [], True)
    assert [s.name for s in chosen] == ["smoke", "filesystem", "extra"]
    assert chosen[0].events == ("switch_task_ns",) and chosen[0].source == second
    assert select_scenarios([first, second], ["smoke"], False)[0].source == second
    only = write(tmp_path, "scenarios:\n  - name: smoke\n    events: [ptrace]\n", "only.yaml")
    with pytest.raises(UsageError, match=r"^multiple scenarios available"):  # same-named copies count
        select_scenarios([only, only], [], False)


def test_scenario_names_without_files_come_from_the_embedded_catalog():
    names = {s.name for s in embedded_scenarios()}
    assert {"smoke", "filesystem", "network", "process", "bpf", "all"} <= names
    assert [s.name for s in select_scenarios([], ["network"], False)] == ["network"]


def test_the_scenarios_the_events_came_from_are_named_once_in_order(tmp_path):
    from evt.stress import request, suite

    cfg = compose_cfg("scenario=bpf", "scenarios=[smoke,bpf]", "events=['ptrace:ops=1']")
    resolved = suite.resolve_specs(request.event_sources(cfg), request.knobs(cfg))
    assert resolved.scenario_names == ("bpf", "smoke") == tuple(request.scenario_names(cfg))
    assert suite.resolve_specs(suite.EventSources(events=("ptrace",)), Knobs()).scenario_names == ()


def test_merge_order_is_group_scenario_then_suite_then_cli(tmp_path):
    suite = write(tmp_path, SUITE)
    cfg = compose_cfg(
        "scenario=bpf", f"events_files=['{suite}']", "scenarios=[smoke]", "events=['switch_task_ns:ops=7']"
    )
    specs = resolve_specs(cfg)
    assert [s.event for s in specs] == ["security_bpf_prog", "security_file_open", "ptrace", "switch_task_ns"]
    assert specs[-1].ops == 7


def test_no_event_at_all_is_an_error_listing_scenarios():
    with pytest.raises(
        UsageError,
        match=r"^at least one event must be specified \(use --events and/or "
        r"--events-file with --scenario or --all-scenarios\)\n.*smoke",
    ):
        resolve_specs(compose_cfg())


def test_sweep_knobs_override_every_event():
    cfg = compose_cfg("scenario=smoke", "stress.instances=3", "stress.ops=11", "stress.sleep=1ms", "stress.mode=script")
    specs = resolve_specs(cfg)
    assert specs and all((s.instances, s.ops, s.sleep, s.mode) == (3, 11, "1ms", "script") for s in specs)


def test_rate_knob_replaces_every_sleep_and_a_sleep_knob_every_rate():
    cfg = compose_cfg("events=['ptrace:sleep=1ms','security_file_open:rate=10']", "stress.rate=2500")
    assert [(s.rate, s.pace_args) for s in resolve_specs(cfg)] == [(2500.0, ["--rate", "2500.0"])] * 2
    cfg = compose_cfg("events=['security_file_open:rate=10']", "stress.sleep=2ms")
    assert [(s.rate, s.pace_args) for s in resolve_specs(cfg)] == [(None, ["--sleep", "2ms"])]


def test_max_lag_knob_goes_with_a_rate():
    cfg = compose_cfg("events=['security_file_open:rate=10']", "stress.max_lag=50ms")
    assert [s.pace_args for s in resolve_specs(cfg)] == [["--rate", "10.0", "--max-lag", "50ms"]]
    with pytest.raises(UsageError, match=r"stress.max_lag=50ms given without a rate"):
        resolve_specs(compose_cfg("events=[ptrace]", "stress.max_lag=50ms"))
    with pytest.raises(UsageError, match=r"stress.max_lag"):
        resolve_specs(compose_cfg("events=['ptrace:rate=5']", "stress.max_lag=soon"))


def test_rate_and_sleep_knobs_together_are_an_error():
    with pytest.raises(UsageError, match=r"stress.rate=100.0 and stress.sleep=1ms given together"):
        resolve_specs(compose_cfg("events=[ptrace]", "stress.rate=100", "stress.sleep=1ms"))
    with pytest.raises(UsageError, match=r"stress.rate must be a positive number"):
        resolve_specs(compose_cfg("events=[ptrace]", "stress.rate=-1"))


def test_knobs_are_validated():
    stress = Knobs(instances=0)
    with pytest.raises(UsageError, match=r"stress\.instances"):
        apply_knobs(EventSpec("ptrace"), stress)
    stress = Knobs(sleep="fast")
    with pytest.raises(UsageError, match="fast"):
        apply_knobs(EventSpec("ptrace"), stress)


# -- properties (Hypothesis) ----------------------------------------------------------------


_specs = st.sampled_from(["ptrace", "security_file_open:ops=10", "ptrace:i=2:o=3:s=1ms:m=script", "x:ops=0", "Bad", ""])
_yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10), _specs),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["name", "description", "events", "groups", "scenarios", "x"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
_scenario = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=10).filter(str.strip)},
    optional={
        "description": st.text(max_size=20),
        "events": st.lists(_specs, max_size=3),
        "groups": st.lists(
            st.fixed_dictionaries({"name": st.text(min_size=1, max_size=5), "events": st.lists(_specs, max_size=3)}),
            max_size=2,
        ),
    },
)
_suites = st.one_of(
    _yaml_values, st.fixed_dictionaries({"scenarios": st.lists(st.one_of(_scenario, _yaml_values), max_size=3)})
)


def load_or_refusal(tmp_path, data: bytes):
    path = tmp_path / "suite.yaml"
    path.write_bytes(data)
    try:
        return load_suite(str(path))
    except UsageError as err:
        assert_one_paragraph(str(err))
        return None


@pytest.mark.property
@given(_suites)
def test_any_suite_document_loads_to_its_events_or_is_refused(tmp_path_factory, document):
    scenarios = load_or_refusal(tmp_path_factory.mktemp("s"), yaml.safe_dump(document, allow_unicode=True).encode())
    if scenarios is None:
        return
    raw = list(document["scenarios"])
    assert [s.name for s in scenarios] == [r["name"].strip() for r in raw]
    for scenario, entry in zip(scenarios, raw, strict=True):  # round trip: exactly the listed specs, in order
        # its events, then its groups' events (the module's rule), both when both are given
        expected = [*(entry.get("events") or []), *(e for g in entry.get("groups") or [] for e in g["events"])]
        assert list(scenario.events) == expected


@pytest.mark.property
@given(st.binary(max_size=300))
@example(b"scenarios:\n  - name: a\n    events: [pt\xffrace]\n")  # not UTF-8: was a UnicodeDecodeError traceback
@example(b"\xef\xbb\xbfscenarios: [{name: a, events: [ptrace]}]\n")  # a UTF-8 BOM
@example(b"scenarios: [{name: a, events: [ptrace]}]\x00")
@example(b"scenarios: !!python/object:os.system [x]\n")
@example(b"scenarios: [{name: !!binary aGVsbG8=, events: [ptrace]}]\n")
def test_any_bytes_load_as_a_suite_or_are_refused(tmp_path_factory, data):
    scenarios = load_or_refusal(tmp_path_factory.mktemp("b"), data)
    if scenarios is not None:
        assert all(isinstance(s.name, str) and s.events for s in scenarios)


@pytest.mark.property
@given(st.text(alphabet=st.sampled_from("scenario:nameevtp -[]{}&*!\n#'\"\\,"), max_size=200))
def test_any_yaml_like_text_loads_as_a_suite_or_is_refused(tmp_path_factory, text):
    load_or_refusal(tmp_path_factory.mktemp("t"), text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "scenarios: " + "[" * 5000 + "]" * 5000,
        "scenarios:\n  " + "- " * 3000 + "x\n",
        "scenarios: " + "{a: " * 3000 + "x" + "}" * 3000,
    ],
)
def test_deep_nesting_is_refused(tmp_path, text):
    message = refused_suite(tmp_path, text.encode())
    assert "not valid YAML" in message or "nested too deeply" in message


def refused_suite(tmp_path, data: bytes) -> str:
    path = tmp_path / "suite.yaml"
    path.write_bytes(data)
    with pytest.raises(UsageError) as err:
        load_suite(str(path))
    return assert_one_paragraph(str(err.value))


def test_alias_bombs_are_refused_quickly_with_a_short_message(tmp_path):
    # each level doubles the value: a billion leaves from 30 short lines
    lines = ["a0: &a0 [ptrace, ptrace]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    bomb = "\n".join(lines) + "\nscenarios:\n  - name: x\n    groups: [*a29]\n"
    assert "every group is a mapping {name, events}, got [[" in refused_suite(tmp_path, bomb.encode())
    bomb = "\n".join(lines) + "\nscenarios:\n  - name: x\n    description: *a29\n    events: [ptrace]\n"
    assert "`description` must be text" in refused_suite(tmp_path, bomb.encode())


def test_aliases_that_repeat_events_are_counted(tmp_path):
    fine = (
        "e: &e [ptrace, ptrace]\nscenarios:\n  - name: x\n    groups: [{name: a, events: *e}, {name: b, events: *e}]\n"
    )
    assert load_suite(write(tmp_path, fine))[0].events == ("ptrace",) * 4
    many = (
        f"e: &e [{', '.join(['ptrace'] * 1000)}]\nscenarios:\n  - name: x\n    groups: ["
        + ", ".join(f"{{name: g{i}, events: *e}}" for i in range(MAX_SUITE_EVENTS // 1000 + 1))
        + "]\n"
    )
    assert f"more than {MAX_SUITE_EVENTS:,} events" in refused_suite(tmp_path, many.encode())


def test_suite_files_over_the_size_bound_and_non_files_are_refused(tmp_path):
    big = b"scenarios: [{name: a, events: [ptrace]}]\n" + b"#" * MAX_SUITE_BYTES
    assert "over the limit of 1,048,576" in refused_suite(tmp_path, big)
    with pytest.raises(UsageError, match="not a regular file"):
        load_suite(str(tmp_path))
    with pytest.raises(UsageError, match="not a regular file"):
        load_suite("/dev/zero")


def test_non_utf8_suite_names_the_byte(tmp_path):
    message = refused_suite(tmp_path, b"scenarios:\n  - name: a\n    events: [pt\xffrace]\n")
    assert "not UTF-8 text (invalid byte 0xff at offset 38)" in message

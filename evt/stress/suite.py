"""Suite files in the format of Tracee's PR #5238, scenario selection and the run's event list.

A suite is `{name?, description?, scenarios: [{name, description?, events, groups}]}`
where `groups` is a list of `{name, events}`; a scenario's events are its `events`, then
each group's. Loading, selection and their error texts follow Tracee's PR #5238
(docs/tracee.md, "Suite files"); evt's hints follow on their own lines. Events come, in this order, from the
Hydra `scenario` group, the scenarios selected from suite files (or, without suite
files, from the embedded conf/scenario/ catalog), then `-e`; the sweep knobs
`stress.instances/ops/sleep/rate/mode` then override every event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evt.config import yamlfile
from evt.config.spec import (
    DEFAULT_SLEEP,
    INT32_MAX,
    EventSpec,
    go_quote,
    parse_duration,
    parse_rate,
    parse_spec,
    positive_int,
    validate_mode,
)
from evt.errors import UsageError, brief
from evt.paths import CONF_DIR

MAX_SUITE_BYTES = 1 << 20  # far above any hand-written suite (the embedded `all` is 2 KB)
# More events than any host runs as units; counted while loading, because YAML aliases let
# a small file list the same events many times over.
MAX_SUITE_EVENTS = 10_000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    events: tuple[str, ...]
    source: str


def _scenario(raw: object, source: str, index: int, budget: list[int] | None = None) -> Scenario:
    """One scenario as PR #5238 reads it: `name` required, `events` and/or `groups`
    (a group with no events does not count), unknown keys ignored; `budget` (events
    still allowed) is shared by a file's scenarios."""
    budget = [MAX_SUITE_EVENTS] if budget is None else budget
    if not isinstance(raw, dict):
        raise UsageError(
            f"{source}: scenario at index {index} is not a mapping\n"
            "Write `- name: ...` with `events:` and/or `groups:`."
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{source}: scenario at index {index} has no name")
    name = name.strip()
    where = f"{source}: scenario {go_quote(name)}"
    events = _spec_list(raw.get("events") or [], f"{where} events", budget)
    groups = raw.get("groups") or []
    if not isinstance(groups, list):
        raise UsageError(f"{where}: `groups` must be a list of {{name, events}}")
    for group in groups:
        if not isinstance(group, dict):
            raise UsageError(f"{where}: every group is a mapping {{name, events}}, got {brief(group)}")
        events += _spec_list(group.get("events") or [], f"{where} group {_group_name(group)}", budget)
    if not events:
        raise UsageError(f"{where} must have at least one of events or groups")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise UsageError(f"{where}: `description` must be text, got {brief(description)}")
    return Scenario(name, description or "", tuple(events), source)


def _group_name(group: dict) -> str:
    """A group's name for messages: quoted as Go does; anything but text as errors.brief
    shows it (a YAML alias can stand for a value too long to print)."""
    name = group.get("name", "")
    return go_quote(name) if isinstance(name, str) else brief(name)


def _spec_list(value: object, where: str, budget: list[int]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a list of event specs such as security_file_open:ops=100")
    budget[0] -= len(value)
    if budget[0] < 0:
        raise UsageError(
            f"{where}: the file lists more than {MAX_SUITE_EVENTS:,} events in all, more than any host "
            "runs at once\nSplit the suite."
        )
    for spec in value:
        parse_spec(spec)  # fail here, naming the spec, before anything starts
    return list(value)


def load_suite(path: str | Path) -> list[Scenario]:
    """The scenarios of one suite file, validated as PR #5238 validates them (its messages),
    within evt's bounds (size, encoding, nesting, event count)."""
    source = str(path)
    if not Path(path).exists():
        raise UsageError(
            f"{source}: No such file or directory\nGive the path of a YAML suite file "
            "(see conf/scenario/ for examples)."
        )
    raw = yamlfile.load(Path(path), source, MAX_SUITE_BYTES, UsageError)
    scenarios = raw.get("scenarios") if isinstance(raw, dict) else None
    if not isinstance(scenarios, list) or not scenarios:
        raise UsageError(f"{source}: at least one scenario is required")
    budget = [MAX_SUITE_EVENTS]
    loaded: list[Scenario] = []
    for index, item in enumerate(scenarios):
        scenario = _scenario(item, source, index, budget)
        if any(s.name == scenario.name for s in loaded):
            raise UsageError(f"{source}: duplicate scenario name {go_quote(scenario.name)}")
        loaded.append(scenario)
    return loaded


def embedded_scenarios() -> list[Scenario]:
    """conf/scenario/*.yaml: the scenarios evt ships (Hydra's `scenario` group)."""
    scenarios = []
    for path in sorted((CONF_DIR / "scenario").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        raw.pop("defaults", None)
        scenarios.append(_scenario(raw, str(path.relative_to(CONF_DIR.parent)), 0))
    return scenarios


def select_scenarios(events_files: list[str], names: list[str], all_scenarios: bool) -> list[Scenario]:
    """PR #5238's selection: files loaded and validated first; across files a name may
    repeat and the last loaded file wins; --all-scenarios in first-appearance order of
    names; --scenario in the order given; neither flag: the one scenario there is.
    Without files, --scenario/--all-scenarios pick from evt's own conf/scenario/."""
    if names and all_scenarios:
        raise UsageError("--scenario and --all-scenarios are mutually exclusive")
    if events_files:
        loaded = [s for path in events_files for s in load_suite(path)]
    elif names or all_scenarios:
        loaded = embedded_scenarios()
    else:
        return []
    by_name: dict[str, Scenario] = {}
    for scenario in loaded:
        by_name[scenario.name] = scenario  # the last loaded wins; first appearance keeps its place
    if all_scenarios:
        return list(by_name.values())
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UsageError(f"scenario {go_quote(missing[0])} not found\nScenarios loaded: {', '.join(by_name)}.")
        return [by_name[n] for n in names]
    if not loaded:
        raise UsageError("no scenarios in loaded files")
    if len(loaded) > 1:  # same-named copies count
        raise UsageError(
            "multiple scenarios available: specify --scenario or --all-scenarios "
            f"(e.g. --scenario {', '.join(by_name)})"
        )
    return loaded


@dataclass(frozen=True)
class EventSources:
    """Where a run's events come from, in PR #5238's merge order: the `scenario` group (as
    plain data), the scenarios selected from suite files (or evt's catalog), then `-e`."""

    scenario: dict[str, Any] | None = None
    events_files: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()  # --scenario names
    all_scenarios: bool = False
    events: tuple[str, ...] = ()  # the -e/--events specs


@dataclass(frozen=True)
class Knobs:
    """stress.instances/ops/sleep/rate/max_lag/mode as given (None: not set): the sweep knobs."""

    instances: Any = None
    ops: Any = None
    sleep: Any = None
    rate: Any = None
    max_lag: Any = None
    mode: Any = None


@dataclass(frozen=True)
class ResolvedEvents:
    specs: tuple[EventSpec, ...]
    scenario_names: tuple[str, ...]  # the scenarios the events came from (none for -e only)


def resolve_specs(sources: EventSources, knobs: Knobs) -> ResolvedEvents:
    """Every event of the run in PR #5238's merge order, the knobs applied, and the names of
    the scenarios they came from."""
    texts: list[str] = []
    names: list[str] = []
    if sources.scenario is not None:
        scenario = _scenario(sources.scenario, "scenario group", 0)
        texts += scenario.events
        names.append(str(sources.scenario.get("name")))
    for scenario in select_scenarios(list(sources.events_files), list(sources.scenarios), sources.all_scenarios):
        texts += scenario.events
        names.append(scenario.name)
    texts += list(sources.events)
    specs = [parse_spec(t) for t in texts]
    if not specs:
        names_known = ", ".join(s.name for s in embedded_scenarios())
        raise UsageError(
            "at least one event must be specified (use --events and/or --events-file with --scenario or "
            f"--all-scenarios)\nevt also runs its own scenarios: scenario=<name> or --scenario <name> ({names_known})."
        )
    return ResolvedEvents(tuple(apply_knobs(spec, knobs) for spec in specs), tuple(dict.fromkeys(names)))


def apply_knobs(spec: EventSpec, stress: Knobs) -> EventSpec:
    """stress.instances/ops/sleep/rate/mode, when set, override the spec (the sweep knobs);
    a rate replaces the spec's sleep and a sleep its rate."""
    changes: dict[str, Any] = {}  # EventSpec fields of several types
    if stress.rate is not None and stress.sleep is not None:
        raise UsageError(
            f"stress.rate={stress.rate} and stress.sleep={stress.sleep} given together: a rate sets the time "
            "between ops itself; set only one of them."
        )
    if stress.instances is not None:
        changes["instances"] = positive_int(stress.instances, "stress.instances")
    if stress.ops is not None:
        changes["ops"] = positive_int(stress.ops, "stress.ops", INT32_MAX)
    if stress.sleep is not None:
        parse_duration(stress.sleep, "stress.sleep")
        changes.update(sleep=str(stress.sleep), rate=None, max_lag=None)
    if stress.rate is not None:
        changes.update(rate=parse_rate(stress.rate, "stress.rate"), sleep=DEFAULT_SLEEP)
    if stress.max_lag is not None:
        parse_duration(stress.max_lag, "stress.max_lag")
        if changes.get("rate", spec.rate) is None:
            raise UsageError(
                f"stress.max_lag={stress.max_lag} given without a rate (stress.rate or rate= in the "
                "spec): it bounds how far a rate's schedule is caught up after a stall; set a rate too."
            )
        changes["max_lag"] = str(stress.max_lag)
    if stress.mode is not None:
        changes["mode"] = validate_mode(stress.mode)
    return dataclasses.replace(spec, **changes) if changes else spec

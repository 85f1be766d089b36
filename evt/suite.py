"""Suite files in the seed's format, scenario selection and the run's event list.

A suite is `{name?, description?, scenarios: [{name, description?, events | groups}]}`
where `groups` is a list of `{name, events}`. Events come, in this order, from the
Hydra `scenario` group, the scenarios selected from suite files (or, without suite
files, from the embedded conf/scenario/ catalog), then `-e`; the sweep knobs
`stress.instances/ops/sleep/rate/mode` then override every event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from evt import yamlfile
from evt.errors import UsageError, brief
from evt.paths import CONF_DIR
from evt.spec import DEFAULT_SLEEP, EventSpec, parse_duration, parse_rate, parse_spec, positive_int, validate_mode

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
    """One validated scenario; `budget` (events still allowed) is shared by a file's scenarios."""
    budget = [MAX_SUITE_EVENTS] if budget is None else budget
    where = f"{source}: scenario #{index + 1}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where} is not a mapping: write `- name: ...` with `events:` or `groups:`.")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{where} has no name: every scenario needs `name:`.")
    where = f"{source}: scenario {brief(name)}"
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise UsageError(f"{where}: `description` must be text, got {brief(description)}.")
    has_events, has_groups = bool(raw.get("events")), bool(raw.get("groups"))
    if has_events and has_groups:
        raise UsageError(f"{where} has both `events` and `groups`: use one of them.")
    if not has_events and not has_groups:
        raise UsageError(f"{where} has neither `events` nor `groups`: list its event specs under one of them.")
    events: list[str] = []
    if has_events:
        events = _spec_list(raw["events"], f"{where} events", budget)
    else:
        groups = raw["groups"]
        if not isinstance(groups, list):
            raise UsageError(f"{where}: `groups` must be a list of {{name, events}}.")
        for group in groups:
            if not isinstance(group, dict) or not group.get("name") or "events" not in group:
                raise UsageError(f"{where}: every group needs `name` and `events`, got {brief(group)}.")
            events += _spec_list(group["events"], f"{where} group {brief(group['name'])}", budget)
    return Scenario(name.strip(), description or "", tuple(events), source)


def _spec_list(value: object, where: str, budget: list[int]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a list of event specs such as security_file_open:ops=100.")
    budget[0] -= len(value)
    if budget[0] < 0:
        raise UsageError(f"{where}: the file lists more than {MAX_SUITE_EVENTS:,} events in all, more than any host "
                         "runs at once: split the suite.")
    for spec in value:
        parse_spec(spec)  # fail here, naming the spec, before anything starts
    return list(value)


def load_suite(path: str | Path) -> list[Scenario]:
    """The scenarios of one suite file, validated."""
    path = Path(path)
    raw = yamlfile.load(path, f"events file {str(path)!r}", MAX_SUITE_BYTES, UsageError)
    if not isinstance(raw, dict) or "scenarios" not in raw:
        raise UsageError(f"events file {str(path)!r} lacks a top-level `scenarios:` list; see conf/scenario/ and the README for the format.")
    if not isinstance(raw["scenarios"], list) or not raw["scenarios"]:
        raise UsageError(f"events file {str(path)!r}: `scenarios` must be a non-empty list.")
    budget = [MAX_SUITE_EVENTS]
    return [_scenario(s, str(path), i, budget) for i, s in enumerate(raw["scenarios"])]


def embedded_scenarios() -> list[Scenario]:
    """conf/scenario/*.yaml: the scenarios evt ships (Hydra's `scenario` group)."""
    scenarios = []
    for path in sorted((CONF_DIR / "scenario").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        raw.pop("defaults", None)
        scenarios.append(_scenario(raw, str(path.relative_to(CONF_DIR.parent)), 0))
    return scenarios


def select_scenarios(events_files: list[str], names: list[str], all_scenarios: bool) -> list[Scenario]:
    if names and all_scenarios:
        raise UsageError("--scenario and --all-scenarios are mutually exclusive: name scenarios, or take them all.")
    if events_files:
        loaded = [s for path in events_files for s in load_suite(path)]
        origin = "the loaded suite file(s)"
    else:
        if not names and not all_scenarios:
            return []
        loaded = embedded_scenarios()
        origin = "conf/scenario/"
    if all_scenarios:
        return loaded
    if not names:
        if len(loaded) == 1:  # a file with one scenario selects it implicitly
            return loaded
        raise UsageError(
            f"{len(loaded)} scenarios in {origin} ({', '.join(s.name for s in loaded)}): "
            "choose with --scenario <name> (repeatable) or --all-scenarios."
        )
    by_name = {}
    for scenario in loaded:
        by_name.setdefault(scenario.name, scenario)
    chosen = []
    for name in names:
        if name not in by_name:
            raise UsageError(f"unknown scenario {name!r}; available in {origin}: {', '.join(by_name)}.")
        chosen.append(by_name[name])
    return chosen


def resolve_specs(cfg) -> list[EventSpec]:
    """Every event of the run, from the composed config, in the seed's merge order."""
    texts: list[str] = []
    if cfg.get("scenario") is not None:
        scenario = _scenario(_plain(cfg.scenario), "scenario group", 0)
        texts += scenario.events
    for scenario in select_scenarios(list(cfg.events_files), list(cfg.scenarios), bool(cfg.all_scenarios)):
        texts += scenario.events
    texts += list(cfg.events)
    specs = [parse_spec(t) for t in texts]
    if not specs:
        names = ", ".join(s.name for s in embedded_scenarios())
        raise UsageError(
            "no events to run: give --events/-e <spec>, --events-file <suite.yaml>, "
            f"or a scenario (scenario=<name>; available: {names})."
        )
    return [apply_knobs(spec, cfg.stress) for spec in specs]


def apply_knobs(spec: EventSpec, stress) -> EventSpec:
    """stress.instances/ops/sleep/rate/mode, when set, override the spec (the sweep knobs);
    a rate replaces the spec's sleep and a sleep its rate."""
    changes: dict[str, object] = {}
    if stress.get("rate") is not None and stress.get("sleep") is not None:
        raise UsageError(
            f"stress.rate={stress.rate} and stress.sleep={stress.sleep} given together: a rate sets the time "
            "between ops itself; set only one of them."
        )
    if stress.get("instances") is not None:
        changes["instances"] = positive_int(stress.instances, "stress.instances")
    if stress.get("ops") is not None:
        changes["ops"] = positive_int(stress.ops, "stress.ops")
    if stress.get("sleep") is not None:
        parse_duration(stress.sleep, "stress.sleep")
        changes.update(sleep=str(stress.sleep), rate=None)
    if stress.get("rate") is not None:
        changes.update(rate=parse_rate(stress.rate, "stress.rate"), sleep=DEFAULT_SLEEP)
    if stress.get("mode") is not None:
        changes["mode"] = validate_mode(stress.mode)
    return dataclasses.replace(spec, **changes) if changes else spec


def _plain(node) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]

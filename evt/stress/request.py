"""The entrance of `evt stress`: the composed Hydra config turned, once, into a validated
and typed run request. Below it (the session, the planner, the plugins' factory,
provenance) nothing reads the root config: they get the request's values, and each
plugin its own node (evt.plugins.PluginOption).

Checked in the order a user fixes them: the stress.* settings (and runner.ready_timeout,
run_id, stress.max_loss_pct), then the events; every refusal is a UsageError (exit 2)
raised before anything starts.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from evt.config.spec import EventSpec, format_duration, parse_duration
from evt.errors import UsageError
from evt.plugins import PluginOption
from evt.stress import runstate
from evt.stress.plan import RunContext
from evt.stress.suite import EventSources, Knobs, resolve_specs, select_scenarios

KNOBS = ("instances", "ops", "sleep", "rate", "max_lag", "mode")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class Duration:
    """A duration setting as the user gave it (messages quote it) and its length."""

    text: str
    ns: int

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    @classmethod
    def parse(cls, value: object, what: str) -> Duration:
        return cls(str(value), parse_duration(value, what))


@dataclass(frozen=True)
class StressSettings:
    """The stress.* settings a run needs (and the runner's ready timeout), parsed once."""

    timeout: Duration  # the whole run
    stress_end_cooldown: Duration
    signal_timeout: Duration
    progress_interval: Duration
    ready_timeout: Duration  # runner.ready_timeout: every unit waiting at the barrier
    dry_run: bool = False
    wait_before_trigger: bool = False
    max_loss_pct: float | None = None  # exceeded: exit 1 (a CI gate)

    @classmethod
    def from_config(cls, cfg) -> StressSettings:
        """The settings of the composed config `cfg`; UsageError naming the first bad one."""
        stress = cfg.stress
        durations = {
            key: Duration.parse(stress[key], f"stress.{key}")
            for key in ("timeout", "stress_end_cooldown", "signal_timeout", "progress_interval")
        }
        ready = Duration.parse(cfg.runner.ready_timeout, "runner.ready_timeout")
        if cfg.get("run_id"):  # checked with the settings, before the events, as it always was
            runstate.validate_run_id(cfg.run_id)
        max_loss = stress.get("max_loss_pct")
        if max_loss is not None and not 0 <= float(max_loss) <= 100:
            raise UsageError(f"stress.max_loss_pct={max_loss} is not a percentage: give a number from 0 to 100.")
        return cls(
            **durations,
            ready_timeout=ready,
            dry_run=bool(stress.dry_run),
            wait_before_trigger=bool(stress.wait_before_trigger),
            max_loss_pct=None if max_loss is None else float(max_loss),
        )

    @property
    def unit_signal_timeout(self) -> str:
        """The signal timeout as each unit's `evt trigger --signal-timeout` gets it."""
        return format_duration(self.signal_timeout.ns)


@dataclass(frozen=True)
class RunRequest:
    """What one `evt stress` run is asked to do: its events, settings and plugins."""

    run_id: str
    specs: tuple[EventSpec, ...]
    settings: StressSettings
    runner: PluginOption
    tracer: PluginOption
    scenarios: tuple[str, ...] = ()  # the scenarios its events came from (summary.json's provenance)

    @classmethod
    def from_config(cls, cfg) -> RunRequest:
        """The request of the composed config `cfg` (the job's, without the `hydra` node)."""
        settings = StressSettings.from_config(cfg)
        events = resolve_specs(event_sources(cfg), knobs(cfg))
        return cls(
            run_id=str(cfg.get("run_id") or new_run_id()),
            specs=events.specs,
            settings=settings,
            runner=PluginOption.of(cfg.runner),
            tracer=PluginOption.of(cfg.tracer),
            scenarios=events.scenario_names,
        )

    def context(self, run_dir: Path) -> RunContext:
        """What the run's plugins are told of it, beside their own nodes."""
        return RunContext(run_id=self.run_id, run_dir=Path(run_dir), runner=self.runner.name)


def event_sources(cfg) -> EventSources:
    """Where the composed config takes its events from."""
    scenario = cfg.get("scenario")
    plain = OmegaConf.to_container(scenario, resolve=True) if scenario is not None else None
    assert plain is None or isinstance(plain, dict)  # the scenario group's node is a mapping
    return EventSources(
        scenario=None if plain is None else {str(key): value for key, value in plain.items()},
        events_files=tuple(str(f) for f in cfg.events_files),
        scenarios=tuple(str(n) for n in cfg.scenarios),
        all_scenarios=bool(cfg.all_scenarios),
        events=tuple(str(e) for e in cfg.events),
    )


def knobs(cfg) -> Knobs:
    """The sweep knobs (stress.instances/ops/sleep/rate/max_lag/mode) as the config sets them."""
    return Knobs(**{key: cfg.stress.get(key) for key in KNOBS})


def scenario_names(cfg) -> list[str]:
    """The scenarios a composed config's events come from, for a job that never got as far as
    a request (evt.results.writers.write_failure_summary)."""
    sources = event_sources(cfg)
    names = [str(sources.scenario.get("name"))] if sources.scenario is not None else []
    names += [
        s.name for s in select_scenarios(list(sources.events_files), list(sources.scenarios), sources.all_scenarios)
    ]
    return list(dict.fromkeys(names))

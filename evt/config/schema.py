"""Structured configs: the typed schema of the root config and the scenario group.

The YAMLs in conf/ name their schema (`defaults: [<schema name>]`), so a wrong key or
type in a YAML or an override fails at composition, with Hydra's message. The plugins'
schemas are their own: every `schema.py` under evt/tracers/ and evt/runners/ registers its
options in the ConfigStore and may declare a top-level section (evt.config.sections);
register() imports them all (they are small and import no plugin) and builds the root
config from EvtConfig plus those sections.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from evt.config.sections import SECTIONS
from evt.runners.schema import RunnerConfig
from evt.tracers.schema import TracerConfig

HYDRA_VERSION_BASE = "1.3"


def quote_override(value: str) -> str:
    """A Hydra quoted string: any value reaches the config verbatim, never parsed.

    Two grammars read it: OmegaConf resolves `${...}` inside quoted strings (a literal `${`
    is written `\\${`, and backslashes before it are doubled), and Hydra's override parser
    unescapes backslashes only before a quote or at the end of the string."""
    value = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    value = re.sub(r"(\\*)('|\Z)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return "'" + value + "'"


@dataclass
class GroupConfig:
    name: str = MISSING
    events: list[str] = field(default_factory=list)


@dataclass
class ScenarioConfig:
    """A scenario in the suite schema of Tracee's PR #5238: `events` or `groups`, not both."""

    name: str = MISSING
    description: str = ""
    events: list[str] = field(default_factory=list)
    groups: list[GroupConfig] = field(default_factory=list)


@dataclass
class StressConfig:
    # Sweep knobs: when set they override every event's value.
    instances: int | None = None
    ops: int | None = None
    sleep: str | None = None
    rate: float | None = None  # ops/s per instance, instead of the sleep
    max_lag: str | None = None  # with a rate: schedule caught up after a stall at most (default 10ms)
    mode: str | None = None
    signal_timeout: str = "15m"
    stress_end_cooldown: str = "10s"
    timeout: str = "60m"  # whole run
    wait_before_trigger: bool = False
    dry_run: bool = False
    max_loss_pct: float | None = None  # exceeded: exit 1 (a CI gate)
    progress_interval: str = "500ms"


@dataclass
class BenchConfig:
    """`evt bench`: rounds of stress runs at growing target rates (see evt/bench/session.py)."""

    round_duration: str = "5s"  # each round's ops are this long at its target rate
    start_rate: float = 20000.0  # total events/s of the first round
    max_loss_pct: float = 1.0  # a round losing more is over the limit
    precision: float = 10.0  # % : bisection stops when the bad rate is within this of the good one
    max_rounds: int = 20  # rounds at most, confirmations included (a round: the rate with the tracer and without)
    reach: float = 0.95  # a round reached its target when the workload made at least this share of it
    confirm: int = 2  # more rounds at the last good and the first bad rate, each decided by majority
    cooldown: str = "1s"  # after a round's units end, before its tracer is stopped (stress.stress_end_cooldown)
    baseline_tracer: Any = None  # the tracer of the workload-cost rounds (conf/bench.yaml: tracer none)


@dataclass
class RemoteConfig:
    """Sweeps on many hosts (`-m hydra/launcher=ray`): placement and what comes home."""

    host_resource: str = "evt_host"  # each evt host joins the Ray cluster advertising 1 of it
    hosts: int | None = None  # hosts the sweep needs at once; more than the cluster has: exit 2
    staging_dir: str = "/tmp/evt-ray-jobs"  # on each host: where its jobs run before going home
    max_file_mb: float = 64  # a larger file (e.g. Tracee's events.json) stays on its host
    max_job_mb: float = 256


@dataclass
class EvtConfig:
    scenario: ScenarioConfig | None = None
    tracer: TracerConfig = MISSING
    runner: RunnerConfig = MISSING
    events: list[str] = field(default_factory=list)  # the -e/--events specs
    events_files: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)  # more scenarios, by name
    all_scenarios: bool = False
    stress: StressConfig = field(default_factory=StressConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    run_id: str | None = None
    remote: RemoteConfig = field(default_factory=RemoteConfig)


PLUGIN_PACKAGES = ("tracers", "runners")  # under evt/: where plugins keep their schema.py


def plugin_schema_modules() -> list[str]:
    """The plugins' schema modules (evt/tracers/**/schema.py, evt/runners/**/schema.py)."""
    evt_dir = Path(__file__).resolve().parents[1]
    found = (path for package in PLUGIN_PACKAGES for path in (evt_dir / package).rglob("schema.py"))
    return sorted(".".join(path.relative_to(evt_dir.parent).with_suffix("").parts) for path in found)


def root_schema() -> type:
    """EvtConfig plus a section per plugin that declared one (tracee, bpftrace, ...)."""
    for module in plugin_schema_modules():
        importlib.import_module(module)
    sections = [(key, node, field(default_factory=node)) for key, node in sorted(SECTIONS.items())]
    return make_dataclass("RootConfig", sections, bases=(EvtConfig,))


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="evt_schema", node=root_schema())
    cs.store(group="scenario", name="scenario_schema", node=ScenarioConfig)


register()

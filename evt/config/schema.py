"""Structured configs: the typed schema of every Hydra config group.

The YAMLs in conf/ name their schema (`defaults: [<schema name>]`), so a wrong key or
type in a YAML or an override fails at composition, with Hydra's message.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

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
    mode: str | None = None
    signal_timeout: str = "15m"
    stress_end_cooldown: str = "10s"
    timeout: str = "60m"  # whole run
    wait_before_trigger: bool = False
    dry_run: bool = False
    max_loss_pct: float | None = None  # exceeded: exit 1 (a CI gate)
    progress_interval: str = "500ms"


@dataclass
class RunnerConfig:
    name: str = MISSING
    _target_: str = MISSING  # the Runner class (evt.plugins.make_runner builds it)
    image: str = "${oc.env:EVT_TRIGGER_RUNNER_IMAGE,evt-trigger-runner:latest}"
    network: str = "none"
    # auto: privileged where the daemon can grant it, else every capability it holds
    privileged: str = "auto"  # auto | true | false
    cap_add: list[str] = field(default_factory=list)  # used when not privileged
    security_opt: list[str] = field(default_factory=lambda: ["seccomp=unconfined", "apparmor=unconfined"])
    ready_timeout: str = "60s"  # every unit waiting at the barrier
    # runner=docker: each unit's memory limit (docker's form: 64m, 1g); a unit that needs
    # more is ended by the kernel's OOM killer, and the run says so
    memory: str | None = None
    # docker: directories mounted as tmpfs in each unit container. The markers live in
    # /tmp; an open on the container's overlay filesystem costs about half again as much
    # as on the host's (benchmarks/bench_container.py). [] keeps them on the overlay.
    tmpfs: list[str] = field(default_factory=lambda: ["/tmp"])


@dataclass
class TracerConfig:
    """The tracer group (conf/tracer/<name>.yaml): its name and the class built for it."""

    name: str = MISSING
    _target_: str = MISSING  # a evt.tracers.base.Tracer subclass, built by evt.plugins


@dataclass
class ProcessTracerConfig:
    """What every tracer that runs a program shares (tracee.*, bpftrace.*)."""

    binary: str = MISSING
    template: str = MISSING  # the Jinja template under templates/ it renders
    ready_timeout: str = "60s"  # start -> ready, at most
    init_cooldown: str = "0s"  # settling time after ready, before the units are released
    stop_timeout: str = "10s"  # first signal -> SIGKILL


@dataclass
class CommandTracerConfig(TracerConfig):
    """A streaming tracer run as a command and read line by line (evt/tracers/command.py)."""

    _target_: str = "evt.tracers.command.CommandTracer"
    binary: str = ""  # the executable, looked up on PATH (`{{ binary }}` in the command)
    command: list[str] = field(default_factory=list)  # argv, each item a Jinja template
    env: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # the evt events whose units it counts
    line: str | None = None  # an event line: named groups, those in `match` required
    # line group -> the unit's value (a Jinja template over its marker), e.g. comm: "{{ marker.comm }}";
    # no default: a merge would keep a default's keys beside the YAML's
    match: dict[str, str] = field(default_factory=dict)
    event_names: dict[str, str] = field(default_factory=dict)  # an `event` group's value -> evt event
    lost: str | None = None  # its lost-event message, the number in a group named `lost`
    # Ready when it prints a line matching ready_pattern (stdout or stderr), or ready_delay after it started
    ready_pattern: str | None = None
    ready_delay: str | None = None
    ready_timeout: str = "60s"  # ready_pattern must show up within this
    init_cooldown: str = "0s"  # settling time after ready, before the units are released
    stop_signal: str = "SIGINT"  # the signal that makes it flush its output and exit
    stop_timeout: str = "10s"  # then SIGKILL


@dataclass
class TraceeBuffersConfig:
    """tracee.buffers.*: Tracee's buffer sizes; None leaves Tracee's default. Rendered as
    `--buffers kernel.events=N` ... on main, as the older flags on v0.24.x."""

    kernel_events: int | None = None  # pages of the events perf ring
    kernel_artifacts: int | None = None  # pages of the artifacts (blob) perf ring
    kernel_control_plane: int | None = None  # pages of the control-plane ring (main only)
    pipeline: int | None = None  # capacity of each pipeline stage channel


@dataclass
class TraceeStreamConfig:
    """tracee.stream.*: the stream evt declares with tracee.output_syntax=streams."""

    buffer_size: int | None = None  # None: Tracee's default (0, unbuffered)
    buffer_mode: str = "block"  # block | drop


@dataclass
class TraceeConfig(ProcessTracerConfig):
    binary: str = "./dist/tracee"
    template: str = "tracee.cmd.j2"
    init_cooldown: str = "5s"
    auto: bool = True
    keep: bool = False
    output: str = "none"  # none | json:<path> | a destinations.* spec
    output_syntax: str = "auto"  # auto (by flavour) | destinations | streams | legacy (json:<path>)
    flavour: str = "auto"  # auto (asks `tracee version`) | main | v0.24
    buffers: TraceeBuffersConfig = field(default_factory=TraceeBuffersConfig)
    stream: TraceeStreamConfig = field(default_factory=TraceeStreamConfig)
    metrics: bool = True
    pprof: bool = True
    pyroscope: bool = False
    healthz: bool = True
    http_address: str = "127.0.0.1:3366"
    start_grace: str = "3s"  # without /healthz: alive this long counts as started
    drain: str = "1s"  # before the final scrape: lost counters lag
    extra_args: list[str] = field(default_factory=list)
    pidfile: str = "/tmp/tracee/tracee.pid"  # checked for a running Tracee on v0.24.x only
    metrics_interval: str = "5s"  # tracer/metrics_timeseries.txt: a /metrics page this often
    pprof_slice: str = "10s"  # tracee.pprof: CPU profile slices this long in tracer/pprof/
    pprof_heap_every: int = 3  # a heap snapshot every this many CPU slices


@dataclass
class BpftraceConfig(ProcessTracerConfig):
    binary: str = "bpftrace"
    template: str = "bpftrace_count.bt.j2"
    # count: per-CPU count() maps in the kernel, never loses (the reference);
    # stream: also one printf per event through bpftrace's output buffer, counted in userspace
    mode: str = "count"
    buffer_pages: int | None = None  # per-CPU output buffer (BPFTRACE_PERF_RB_PAGES); None: bpftrace's default


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
    tracee: TraceeConfig = field(default_factory=TraceeConfig)
    bpftrace: BpftraceConfig = field(default_factory=BpftraceConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    run_id: str | None = None
    remote: RemoteConfig = field(default_factory=RemoteConfig)


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="evt_schema", node=EvtConfig)
    cs.store(group="scenario", name="scenario_schema", node=ScenarioConfig)
    cs.store(group="runner", name="runner_schema", node=RunnerConfig)
    cs.store(group="tracer", name="tracer_schema", node=TracerConfig)
    cs.store(group="tracer", name="command_tracer_schema", node=CommandTracerConfig)


register()

"""tracer=tracee's schemas: Tracee's settings, the top-level section `tracee` (users type
tracee.pyroscope=true, tracee.buffers.kernel_events=...), and the tracer option that hands
them to TraceeTracer as `settings` (conf/tracer/tracee.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from evt.config.sections import plugin_section
from evt.tracers.schema import ProcessTracerConfig, TracerConfig

SECTION = "tracee"


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
    template: str = "tracee.cmd.j2"  # the Jinja template under templates/ it renders
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
class TraceeTracerConfig(TracerConfig):
    name: str = "tracee"
    _target_: str = "evt.tracers.tracee.tracer.TraceeTracer"
    settings: Any = "${" + SECTION + "}"  # the top-level section


plugin_section(SECTION, TraceeConfig)
ConfigStore.instance().store(group="tracer", name="tracee_schema", node=TraceeTracerConfig)

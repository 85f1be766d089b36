"""tracer=bpftrace's schemas: bpftrace's settings, the top-level section `bpftrace` (users
type bpftrace.mode=stream, bpftrace.buffer_pages=8), and the tracer option that hands them
to BpftraceTracer as `settings` (conf/tracer/bpftrace.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from evt.config.sections import plugin_section
from evt.tracers.schema import ProcessTracerConfig, TracerConfig

SECTION = "bpftrace"


@dataclass
class BpftraceConfig(ProcessTracerConfig):
    binary: str = "bpftrace"
    template: str = "bpftrace_count.bt.j2"  # the Jinja template under templates/ it renders
    # count: per-CPU count() maps in the kernel, never loses (the reference);
    # stream: also one printf per event through bpftrace's output buffer, counted in userspace
    mode: str = "count"
    buffer_pages: int | None = None  # per-CPU output buffer (BPFTRACE_PERF_RB_PAGES); None: bpftrace's default


@dataclass
class BpftraceTracerConfig(TracerConfig):
    name: str = "bpftrace"
    _target_: str = "evt.tracers.bpftrace.tracer.BpftraceTracer"
    settings: Any = "${" + SECTION + "}"  # the top-level section


plugin_section(SECTION, BpftraceConfig)
ConfigStore.instance().store(group="tracer", name="bpftrace_schema", node=BpftraceTracerConfig)

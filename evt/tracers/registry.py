"""Picks the tracer of a run from the composed config (`tracer=tracee|bpftrace|none`).

Tracer modules are imported only when chosen: a host without one tracer's
dependencies can still run the others.
"""

from __future__ import annotations

from pathlib import Path

from evt.errors import UsageError
from evt.tracers.base import Tracer

TRACERS = ("tracee", "bpftrace", "none")


def make_tracer(cfg, run_dir: Path) -> Tracer:
    name = str(cfg.tracer.name)
    if name == "tracee":
        from evt.tracers.tracee import TraceeTracer

        return TraceeTracer(cfg, Path(run_dir))
    if name == "bpftrace":
        from evt.tracers.bpftrace import BpftraceTracer

        return BpftraceTracer(cfg, Path(run_dir))
    if name == "none":
        from evt.tracers.none import NoneTracer

        return NoneTracer(cfg, Path(run_dir))
    raise UsageError(
        f"unknown tracer {name!r}: use tracer=tracee, tracer=bpftrace or tracer=none "
        "(the tracer config group, conf/tracer/)."
    )

"""tracer=none and the tracer registry."""

from __future__ import annotations

import importlib.util

import pytest
from omegaconf import OmegaConf
from tracee_helpers import compose_cfg, make_unit

from evt.errors import UsageError
from evt.tracers.base import TracerReport
from evt.tracers.none import NoneTracer
from evt.tracers.registry import TRACERS, make_tracer


def test_none_tracer_does_nothing(tmp_path):
    cfg = compose_cfg("tracer=none")
    tracer = make_tracer(cfg, tmp_path)
    assert isinstance(tracer, NoneTracer)
    units = [make_unit("security_file_open", container_id="ab" * 32)]
    tracer.check(units)
    assert tracer.command(units) == []
    tracer.start(units)
    tracer.wait_ready()
    assert tracer.poll() is None
    tracer.drain()
    tracer.stop()
    tracer.stop()  # twice is fine
    report = tracer.report(units)
    assert isinstance(report, TracerReport)
    assert report.tracer == "none"
    assert report.observed is None
    assert report.lost == {} and report.lost_total == 0
    assert report.cpu_s is None and report.crashed is None
    assert list(tmp_path.iterdir()) == []  # it writes nothing


def test_registry_picks_tracee(tmp_path):
    from evt.tracers.tracee import TraceeTracer

    tracer = make_tracer(compose_cfg("tracer=tracee"), tmp_path)
    assert isinstance(tracer, TraceeTracer) and tracer.name == "tracee"


def test_registry_picks_bpftrace_lazily(tmp_path):
    if importlib.util.find_spec("evt.tracers.bpftrace") is None:
        pytest.skip("evt.tracers.bpftrace is not in this tree yet (written separately)")
    tracer = make_tracer(compose_cfg("tracer=bpftrace"), tmp_path)
    assert tracer.name == "bpftrace"


def test_registry_unknown_tracer(tmp_path):
    cfg = compose_cfg("tracer=none")
    OmegaConf.update(cfg, "tracer.name", "falco")
    with pytest.raises(UsageError, match="unknown tracer 'falco'.*tracer=tracee, tracer=bpftrace or tracer=none"):
        make_tracer(cfg, tmp_path)
    assert TRACERS == ("tracee", "bpftrace", "none")

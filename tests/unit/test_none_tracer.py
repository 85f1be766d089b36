"""tracer=none, and building the tracer a config names (evt.plugins)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from evt.errors import UsageError
from evt.plugins import tracer_names
from evt.tracers.base import TracerReport
from evt.tracers.none import NoneTracer
from helpers import compose_cfg, make_unit, tracer_from


def test_none_tracer_does_nothing(tmp_path):
    cfg = compose_cfg("tracer=none")
    tracer = tracer_from(cfg, tmp_path)
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


def test_config_picks_tracee(tmp_path):
    from evt.tracers.tracee.tracer import TraceeTracer

    tracer = tracer_from(compose_cfg("tracer=tracee"), tmp_path)
    assert isinstance(tracer, TraceeTracer) and tracer.name == "tracee"


def test_config_picks_bpftrace(tmp_path):
    tracer = tracer_from(compose_cfg("tracer=bpftrace"), tmp_path)
    assert tracer.name == "bpftrace"


def test_unknown_tracer_names_the_valid_ones(tmp_path):
    cfg = compose_cfg("tracer=none")
    OmegaConf.update(cfg, "tracer.name", "falco")
    OmegaConf.update(cfg, "tracer._target_", "evt.tracers.falco.FalcoTracer")
    with pytest.raises(
        UsageError,
        match=r"unknown tracer 'falco'.*use one of tracer=auditd, tracer=bpftrace, "
        r"tracer=execsnoop, tracer=none, tracer=opensnoop, tracer=tracee",
    ):
        tracer_from(cfg, tmp_path)
    OmegaConf.update(cfg, "tracer._target_", "evt.stress.plan.Unit")  # a class, but no tracer
    with pytest.raises(UsageError, match="is not a tracer class"):
        tracer_from(cfg, tmp_path)
    assert tracer_names() == ["auditd", "bpftrace", "execsnoop", "none", "opensnoop", "tracee"]


def test_the_none_tracer_keeps_the_hook_defaults(tmp_path):
    tracer = tracer_from(compose_cfg("tracer=none"), tmp_path)
    assert tracer.start_title() == "Starting tracer none"
    assert tracer.manual_instructions([make_unit("ptrace", pid=1)]) == []
    assert tracer.manual_prompt() is None and tracer.endpoints() == []

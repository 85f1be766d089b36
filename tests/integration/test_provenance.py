"""What a run record says produced it: evt's version and commit, scenario, overrides,
host, tracer; and the record a job leaves when it ends before it has results."""

from __future__ import annotations

import json
import os
import subprocess

import docker
import psutil

from evt.paths import HOME
from evt.results import provenance
from evt.results import writers as results
from evt.stress.request import RunRequest
from helpers import STANDIN, build_tracer, compose_cfg, needs_bpftrace


def test_record_names_evt_scenario_host_and_tracer():
    request = RunRequest.from_config(compose_cfg("scenario=smoke", "tracer=bpftrace", "scenarios=[network]"))
    record = provenance.record(list(request.scenarios), request.tracer.name, tracer_version="bpftrace v0.20.2")
    assert record["schema_version"] == provenance.SCHEMA_VERSION
    head = subprocess.run(["git", "-C", str(HOME), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["evt_version"]["version"] == "0.1.0" and record["evt_version"]["commit"] == head
    assert record["scenario"] == ["smoke", "network"]
    assert record["overrides"] == []  # outside a Hydra job
    host = record["host"]
    assert (host["kernel"], host["cpus"], host["memory_bytes"]) == (
        os.uname().release,
        os.cpu_count(),
        psutil.virtual_memory().total,
    )
    assert host["cpu_model"] and host["docker_version"] == docker.from_env().version()["Version"]
    assert record["tracer"] == {"name": "bpftrace", "version": "bpftrace v0.20.2"}


def test_events_only_runs_have_no_scenario_name():
    assert RunRequest.from_config(compose_cfg("events=['ptrace:ops=1']", "tracer=none")).scenarios == ()


def test_a_job_that_ended_early_still_leaves_its_record(tmp_path):
    cfg = compose_cfg("scenario=smoke", "tracer=none", "run_id=early1")
    results.write_failure_summary(cfg, tmp_path / "job", "error", "RuntimeError: boom", 1)
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert (summary["run_id"], summary["status"], summary["failure"], summary["exit_code"]) == (
        "early1",
        "error",
        "RuntimeError: boom",
        1,
    )
    assert summary["scenario"] == ["smoke"] and summary["tracer"]["name"] == "none"
    assert summary["partial"] is True


@needs_bpftrace
def test_tracers_report_their_version(tmp_path):
    from evt.tracers.bpftrace.tracer import BpftraceTracer
    from evt.tracers.none import NoneTracer
    from evt.tracers.tracee.tracer import TraceeTracer

    reported = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
    assert reported.startswith("bpftrace v")
    assert (
        build_tracer(BpftraceTracer, compose_cfg("tracer=bpftrace", "scenario=smoke"), tmp_path).version() == reported
    )
    tracee = compose_cfg("tracer=tracee", "scenario=smoke", f"tracee.binary={STANDIN}")
    assert build_tracer(TraceeTracer, tracee, tmp_path).version() == "v0.24.1-215-g7c9ec9788 stand-in (NOT TRACEE)"
    missing = compose_cfg("tracer=tracee", "scenario=smoke", f"tracee.binary={tmp_path / 'no-tracee'}")
    assert build_tracer(TraceeTracer, missing, tmp_path).version() is None  # recorded as unknown, never an error
    assert build_tracer(NoneTracer, compose_cfg("tracer=none", "scenario=smoke"), tmp_path).version() is None

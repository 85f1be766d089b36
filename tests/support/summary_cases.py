"""The runs whose summary.json the tests write and compare byte for byte with the files
kept in fixtures/summaries/ (written by the dict-building writer before summary.json
became the typed evt.results.summary.Summary): each case is what the session hands the
writer at the end of a run (plan, unit results, tracer report, window, the session's
record of the run, the loss limit, exit code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evt.stress.plan import Plan
from evt.tracers.base import TracerReport
from evt.workload.marker import Target
from evt.workload.protocol import TriggerResult, WorkerResult
from helpers import make_unit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "summaries"
PROVENANCE = {
    "schema_version": 2,
    "evt_version": {"version": "0.1.0", "commit": "3a7decaa69033a6c0582f03721ddefe381b611c2", "dirty": False},
    "scenario": ["smoke"],
    "overrides": ["scenario=smoke", "stress.max_loss_pct=0.1"],
    "host": {
        "kernel": "6.18.44",
        "arch": "x86_64",
        "cpus": 2,
        "cpu_model": "Intel(R) Xeon(R) Processor",
        "memory_bytes": 25275990016,
        "docker_version": None,
    },
    "tracer": {"name": "bpftrace", "version": "bpftrace v0.21.2"},
}


@dataclass
class Case:
    name: str
    plan: Plan
    results: dict[str, TriggerResult | None]
    report: TracerReport | None
    window: dict | None
    extra: dict[str, Any]  # the session's record of the run (StressSession.extra)
    max_loss_pct: float | None = None
    exit_code: int = 0
    outside_evt: bool = False  # the units run outside evt's process tree (containers)
    status_if_loss: str = "loss_exceeded"
    tags: list[str] = field(default_factory=list)


def _result(unit, oks: list[int], starts: list[int]) -> TriggerResult:
    workers = [
        WorkerResult(i, unit.ops, ok, unit.ops - ok, t, t + 2_000_000_000, 2.0, ok / 2.0, None, 0.25, 0.01, 0.0)
        for i, (ok, t) in enumerate(zip(oks, starts, strict=True))
    ]
    total = sum(oks)
    return TriggerResult(
        unit.event, unit.mode, len(workers), unit.total_ops, total, unit.total_ops - total, 2.0, total / 2.0,
        min(starts), max(starts) + 2_000_000_000, workers,
    )  # fmt: skip


def _plan(tracer: str) -> tuple[Plan, dict[str, TriggerResult | None]]:
    opens = make_unit("security_file_open", mode="native", instances=2, ops=100,
                      target=Target("tracepoint:x:y", "1", 1, True, "exact", ""))  # fmt: skip
    ptrace = make_unit("ptrace", mode="script", instances=1, ops=100,
                       target=Target("tracepoint:x:y", "1", 2, False, "proxy", "a stand-in"))  # fmt: skip
    plan = Plan(run_id="20261202-144414-99ab14", runner="docker", tracer=tracer, units=[opens, ptrace])
    results: dict[str, TriggerResult | None] = {
        opens.name: _result(opens, [100, 90], [1_000_000_000, 1_003_000_000]),
        ptrace.name: _result(ptrace, [100], [1_001_000_000]),
    }
    return plan, results


def _extra(tracer: dict[str, Any], waited: bool = True) -> dict[str, Any]:
    extra: dict[str, Any] = {"run_dir": "/outputs/2026-12-02/20261202-144414-99ab14", "started_at": 1796222655.2348642}
    extra.update({**PROVENANCE, "tracer": tracer})
    if waited:
        extra.update(time_to_waiting_s=2.322940210000013, released_ns=1796222657565939381)
    return extra


def _outcome(extra: dict[str, Any], status: str, failure: str | None, partial: bool = False) -> dict[str, Any]:
    return {**extra, "status": status, "partial": partial, "failure": failure, "wall_s": 3.2853533190000235}


def cases() -> list[Case]:
    plan, results = _plan("tracee")
    tracee = TracerReport(
        "tracee", observed={"security_file_open": 180, "ptrace": 250}, lost={"lost_events": 3, "lost_writes": 0},
        metrics={"bpf_run_time_s": 0.1234, "events_total": 430.0}, cpu_s=1.25, peak_rss_bytes=104857600, wall_s=5.0,
        resources={"peak_rss_kb": 102400, "avg_cpu_pct": 12.5, "p95_cpu_pct": 30.0, "io_read_total_bytes": 4096,
                   "io_write_total_bytes": 0, "resource_samples_count": 10, "pprof_slices_collected": 2,
                   "heap_snapshots_collected": 1, "cpu_profile_status": "ok", "pprof_errors": []},
    )  # fmt: skip
    window = {"cpu_s": 0.4, "wall_s": 2.0, "cpu_avg_pct": 20.0, "cpu_p95_pct": 35.0}
    tracee_id = {"name": "tracee", "version": "v0.24.1"}
    full = Case("loss_exceeded", plan, results, tracee, window, _outcome(_extra(tracee_id), "ok", None), 0.1,
                outside_evt=True)  # fmt: skip
    plan, results = _plan("none")
    none = Case("no_tracer", plan, results, None, None,
                _outcome(_extra({"name": "none", "version": None}), "ok", None), outside_evt=True)  # fmt: skip
    plan, results = _plan("bpftrace")
    crashed = TracerReport("bpftrace", observed=None, cpu_s=0.5, wall_s=1.0, crashed="exit 1: map full")
    interrupted = Case(
        "interrupted", plan, {**results, "ptrace": None}, crashed, None,
        _outcome(_extra(PROVENANCE["tracer"], waited=False), "interrupted", "interrupted by SIGINT", partial=True),
        max_loss_pct=5, exit_code=130,
    )  # fmt: skip
    return [full, none, interrupted]


def early_cases() -> list[dict[str, Any]]:
    """write_failure_summary's arguments: provenance recorded, or not (the config itself was bad)."""
    return [
        {"name": "early_bad_input", "run_id": "20261202-144414-99ab15", "status": "bad_input",
         "failure": "unknown event 'nope'", "exit_code": 2, "provenance": True},
        {"name": "early_error", "run_id": None, "status": "error", "failure": "RuntimeError: boom",
         "exit_code": 1, "provenance": False},
    ]  # fmt: skip

"""Result tables: expected vs observed, loss, start skew, the loss gate, stable columns."""

from __future__ import annotations

import csv

from rich.console import Console

from evt.results import csvio
from evt.results import writers as results
from evt.results.summary import Detection, Summary
from evt.stress.plan import Plan, Unit
from evt.tracers.base import TracerReport
from evt.workload.marker import Target
from evt.workload.protocol import TriggerResult, WorkerResult
from helpers import make_unit


def unit(name: str, per_op: int, exact: bool, instances: int = 1, ops: int = 100) -> Unit:
    relation = ("exact", "") if exact else ("proxy", "a stand-in")
    return make_unit(
        name,
        mode="native" if exact else "script",
        instances=instances,
        ops=ops,
        target=Target("tracepoint:x:y", "1", per_op, exact, *relation),
    )


def state(u: Unit, ok_per_worker: list[int], starts: list[int]) -> TriggerResult:
    workers = [
        WorkerResult(i, u.ops, ok, u.ops - ok, t, t + 2_000_000_000, 2.0, ok / 2.0)
        for i, (ok, t) in enumerate(zip(ok_per_worker, starts, strict=True))
    ]
    return TriggerResult(
        u.event,
        u.mode,
        len(workers),
        u.total_ops,
        sum(ok_per_worker),
        u.total_ops - sum(ok_per_worker),
        2.0,
        sum(ok_per_worker) / 2.0,
        min(starts),
        max(starts) + 2_000_000_000,
        workers,
    )


def make_plan():
    a, b = unit("security_file_open", 1, True, instances=2), unit("ptrace", 2, False)
    plan = Plan(run_id="r1", runner="docker", tracer="bpftrace", units=[a, b])
    states = {a.name: state(a, [100, 90], [1_000_000_000, 1_003_000_000]), b.name: state(b, [100], [1_001_000_000])}
    return plan, states


def test_expected_counts_ok_ops_and_loss_follows_observed():
    plan, states = make_plan()
    report = TracerReport("bpftrace", observed={"security_file_open": 180, "ptrace": 250}, cpu_s=1.0, wall_s=4.0)
    events = results.events_frame(plan, states, report).set_index("unit")
    assert events.loc["security_file_open", "expected"] == 190  # 100 + 90 ops ok, one event each
    assert events.loc["security_file_open", "lost"] == 10
    assert round(events.loc["security_file_open", "loss_pct"], 4) == round(100 * 10 / 190, 4)
    assert (
        events.loc["ptrace", "expected"] == 200 and events.loc["ptrace", "lost"] == 0
    )  # more seen than the lower bound
    assert list(events["count"]) == ["exact", "lower_bound"]
    assert list(events["relation"]) == ["exact", "proxy"]  # from each target, beside count


def test_without_counts_observed_and_loss_stay_empty():
    plan, states = make_plan()
    events = results.events_frame(plan, states, TracerReport("none", observed=None))
    assert events["observed"].isna().all() and events["lost"].isna().all()
    summary = results.summarize(plan, results.workers_frame(plan, states), events, None, states, {})
    assert summary.detection is None


def test_units_a_tracer_does_not_count_have_no_loss_and_stay_out_of_detection():
    """A tracer that sees only some events (opensnoop: opens) reports only their units."""
    plan, states = make_plan()
    report = TracerReport("opensnoop", observed={"security_file_open": 170})
    events = results.events_frame(plan, states, report).set_index("unit")
    assert events.loc["security_file_open", "lost"] == 20
    assert events[["observed", "lost", "loss_pct"]].loc["ptrace"].isna().all()
    summary = results.summarize(plan, results.workers_frame(plan, states), events.reset_index(), report, states, {})
    assert summary.detection is not None and (summary.detection.expected, summary.detection.lost) == (190, 20)


def test_what_the_probe_saw_is_kept_beside_what_userspace_received():
    plan, states = make_plan()
    report = TracerReport(
        "bpftrace", observed={"security_file_open": 120, "ptrace": 200}, seen={"security_file_open": 190, "ptrace": 200}
    )
    events = results.events_frame(plan, states, report).set_index("unit")
    assert events.loc["security_file_open", "seen"] == 190 and events.loc["security_file_open", "lost"] == 70
    assert events["seen"].notna().all()
    assert results.events_frame(plan, states, TracerReport("bpftrace", observed={}))["seen"].isna().all()


def test_summary_totals_skew_and_detection():
    plan, states = make_plan()
    report = TracerReport("bpftrace", observed={"security_file_open": 190, "ptrace": 200}, cpu_s=1.0, wall_s=4.0)
    workers = results.workers_frame(plan, states)
    summary = results.summarize(
        plan, workers, results.events_frame(plan, states, report), report, states, {"status": "ok", "x": 1}
    )
    assert summary.ok == 290 and summary.errors == 10 and summary.workers == 3
    assert summary.start_skew_ms == 1.0  # units' first ops at 1.000 s and 1.001 s
    assert summary.detection is not None and summary.detection.to_dict() == {
        "expected": 390,
        "observed": 390,
        "lost": 0,
        "extra": 0,
        "loss_pct": 0.0,
        "exact": False,
        "why_not_exact": "ptrace: its count is a lower bound; ptrace: its count's relation to the event is proxy",
    }
    assert summary.tracer_cost is not None and summary.tracer_cost.cpu_share == 0.25
    assert summary.status == "ok" and summary.to_dict()["x"] == 1  # the session's keys, known or not, are kept


def test_an_exact_unit_that_over_counts_is_miscounted_and_detection_not_exact(caplog):
    """190 exact events made, 200 observed: 10 dropped and 20 double-counted would show
    0 lost; the 10 extra are shown, the unit is `miscounted`, and detection is not exact.
    A lower-bound unit may see more than its bound: extra, but not miscounted."""
    plan, states = make_plan()
    report = TracerReport("bpftrace", observed={"security_file_open": 200, "ptrace": 250})
    events = results.events_frame(plan, states, report)
    rows = events.set_index("unit")
    assert (rows.loc["security_file_open", "lost"], rows.loc["security_file_open", "extra"]) == (0, 10)
    assert rows.loc["security_file_open", "check"] == "miscounted"
    assert (rows.loc["ptrace", "extra"], rows.loc["ptrace", "check"]) == (50, "ok")
    summary = results.summarize(
        plan, results.workers_frame(plan, states), events, report, states, {"status": "ok", "run_dir": "d"}
    )
    detection = summary.detection
    assert detection is not None and detection.exact is False and detection.extra == 60
    assert "security_file_open: observed 200 events where exactly 190 were made (10 extra: miscounted)" in (
        detection.why_not_exact or ""
    )
    console = Console(record=True, width=200)
    with caplog.at_level("INFO", logger="evt.results.writers"):
        results.print_summary(console, events, summary)
    table = console.export_text()
    line = next(line for line in table.splitlines() if "security_file_open" in line)
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    assert (cells[7], cells[11]) == ("10", "miscounted")  # the extra and check columns
    assert "detection is not exact: " in caplog.text


def test_an_exact_unit_that_counts_exactly_is_ok_and_exact():
    plan, states = make_plan()
    plan.units.pop()  # only the exact unit
    report = TracerReport("bpftrace", observed={"security_file_open": 190})
    events = results.events_frame(plan, states, report)
    assert list(events["check"]) == ["ok"] and list(events["extra"]) == [0]
    detection = results.summarize(plan, results.workers_frame(plan, states), events, report, states, {}).detection
    assert detection is not None and detection.exact is True and detection.why_not_exact is None


def test_workers_report_the_ops_cpu_apart_from_pacing():
    plan, states = make_plan()
    for w in states["security_file_open"].per_worker:
        w.cpu_s, w.pace_cpu_s, w.late_s = 0.5, 0.05, 0.01
    workers = results.workers_frame(plan, states)
    summary = results.summarize(plan, workers, results.events_frame(plan, states, None), None, states, {})
    assert (summary.workers_cpu_s, summary.workers_pace_cpu_s, summary.workers_late_s) == (1.0, 0.1, 0.02)


def test_loss_gate():
    assert results.apply_loss_gate(Summary(detection=Detection(loss_pct=0.5)), None)
    summary = Summary(detection=Detection(loss_pct=0.5))
    assert not results.apply_loss_gate(summary, 0.1)
    assert summary.max_loss_pct is not None and summary.max_loss_pct.to_dict() == {"limit": 0.1, "passed": False}
    summary = Summary(detection=Detection(loss_pct=0.5))
    assert results.apply_loss_gate(summary, 1) and summary.max_loss_pct is not None
    assert summary.max_loss_pct.passed is True
    summary = Summary(detection=None)
    assert results.apply_loss_gate(summary, 0) and summary.max_loss_pct is not None
    assert summary.max_loss_pct.passed is None


def test_files_have_the_stable_columns_first(tmp_path):
    plan, states = make_plan()
    report = TracerReport("bpftrace", observed={}, lost={"bpftrace_lost_events": 3}, metrics={"m": 1.0})
    workers = results.workers_frame(plan, states)
    events = results.events_frame(plan, states, report)
    tracer = results.tracer_frame(plan, report)
    results.write_all(tmp_path, workers, events, tracer, Summary(run_id="r1"))
    for name, columns in (
        ("workers.csv", csvio.WORKER_COLUMNS),
        ("events.csv", csvio.EVENT_COLUMNS),
        ("tracer.csv", csvio.TRACER_COLUMNS),
    ):
        with open(tmp_path / name) as f:
            header = next(csv.reader(f))
        assert header[: len(columns)] == columns
    with open(tmp_path / "tracer.csv") as f:
        row = next(csv.DictReader(f))
    assert row["lost.bpftrace_lost_events"] == "3" and row["metric.m"] == "1.0" and row["lost_total"] == "3"


def test_events_name_the_run_and_count_total_ops():
    plan, states = make_plan()
    events = results.events_frame(plan, states, None, scenario="smoke+network").set_index("unit")
    row = events.loc["security_file_open"]
    assert (row["scenario"], row["tracer"], row["runner"], row["sleep"]) == (
        "smoke+network",
        "bpftrace",
        "docker",
        "0s",
    )
    assert (row["instances"], row["total_ops"]) == (2, 200)  # 2 workers x 100 ops; per-worker ops in workers.csv
    assert "ops" not in events.columns


def test_the_measured_window_sits_beside_the_whole_run():
    plan, states = make_plan()
    report = TracerReport("bpftrace", observed={}, cpu_s=1.0, wall_s=4.0)
    window = {"cpu_s": 0.4, "wall_s": 2.0, "cpu_avg_pct": 20.0, "cpu_p95_pct": 35.0}
    summary = results.summarize(
        plan,
        results.workers_frame(plan, states),
        results.events_frame(plan, states, report),
        report,
        states,
        {},
        window=window,
    )
    assert summary.tracer_cost is not None and summary.tracer_cost.cpu_s == 1.0
    assert summary.tracer_cost.window is not None and summary.tracer_cost.window.to_dict() == window
    row = results.tracer_frame(plan, report, window).iloc[0]
    assert (row["cpu_s"], row["window_cpu_s"], row["window_cpu_p95_pct"]) == (1.0, 0.4, 35.0)


def test_detection_is_exact_only_when_every_count_and_relation_is():
    """A count that is exact per op but made at a stand-in (relation unverified/proxy) does
    not measure the event itself: the run's detection is not exact."""
    exact = unit("security_file_open", 1, True)
    stand_in = make_unit(
        "device_add",
        mode="script",
        instances=1,
        ops=100,
        target=Target("tracepoint:x:y", "1", 1, True, "unverified", "depends on the kernel build"),
    )
    for units, expected in (([exact], True), ([exact, stand_in], False)):
        plan = Plan(run_id="r1", runner="docker", tracer="bpftrace", units=units)
        states = {u.name: state(u, [100], [1_000_000_000]) for u in units}
        report = TracerReport("bpftrace", observed={u.name: 100 for u in units})
        summary = results.summarize(
            plan, results.workers_frame(plan, states), results.events_frame(plan, states, report), report, states, {}
        )
        assert summary.detection is not None and summary.detection.exact is expected
    assert summary.detection.why_not_exact == "device_add: its count's relation to the event is unverified"

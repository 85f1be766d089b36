"""`evt compare` as a CI gate: every gated figure is compared or named (with the reason),
a candidate run that did not end ok fails the gate, a record that cannot be read is exit 2
naming the file, `off` turns off any threshold. Run directories are written in the layout
`evt stress` writes (tests/support/run_records.py); the command line runs in-process
(tests/support/inprocess.py), with its arguments, exit codes and messages as a user gets them."""

from __future__ import annotations

import csv
import json

import pytest

from evt.analysis import compare, perfgate
from evt.analysis.thresholds import parse
from evt.errors import UsageError
from evt.results import rundirs
from inprocess import evt_main
from run_records import write_failed_job, write_run, write_sweep

EVENTS = {"ptrace": (1000, 0.0)}  # 1,000 events in 1 s


def _compare(base, cand, items=(), allow_failed=False, loss_stat="worst"):
    return compare.compare(
        rundirs.locate(str(base)), rundirs.locate(str(cand)), parse(list(items), None, loss_stat), allow_failed
    )


def _cli(tmp_path, base, cand, *extra):
    out = tmp_path / "cmp"
    return evt_main("compare", str(base), str(cand), "--out", str(out), *extra), out


def rows_of(comparison):
    return comparison.rows.set_index("metric")


# -- 1. every gated figure is compared or named --------------------------------------------


def test_tracee_default_output_still_gates_tracer_cpu_from_the_events_generated(tmp_path):
    """tracee.output=none: no detection, observed empty; CPU per million events comes from
    events.csv's expected totals, so a tripled CPU is a regression."""
    write_run(tmp_path / "a", EVENTS, tracer="tracee", counted=False, cpu_s=0.5)
    write_run(tmp_path / "b", EVENTS, tracer="tracee", counted=False, cpu_s=1.5)
    result, out = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "REGRESSION: tracer_cpu_per_mevents regressed (scenario=smoke): baseline 500, candidate 1,500 "
        "(+200.0%; threshold +25%)"
    ) in result.stdout
    with open(out / "compare.csv") as f:
        loss = next(r for r in csv.DictReader(f) if r["metric"] == "loss_pct")
    assert loss["verdict"] == "missing"
    assert loss["reason"].startswith("on both sides, the tracer tracee did not count ptrace (observed is empty")


def test_a_figure_under_the_cpu_floor_is_a_row_named_with_the_reason(tmp_path):
    write_run(tmp_path / "a", EVENTS, cpu_s=0.12)
    write_run(tmp_path / "b", EVENTS, cpu_s=0.36)
    result, out = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 0, result.stdout + result.stderr  # the baseline lacks it: named, not failed
    assert (
        "not compared: tracer_cpu_per_mevents (scenario=smoke) — the baseline's tracer used 0.12 s of CPU, "
        "under the 0.2 s floor"
    ) in result.stdout
    assert "the baseline's tracer used 0.12 s of CPU, under the 0.2 s floor" in (out / "compare.md").read_text()
    assert json.loads((out / "compare.json").read_text())["missing"] == [
        f"{name} (scenario=smoke) — the baseline's tracer used 0.12 s of CPU, under the 0.2 s floor"
        for name in ("tracer_cpu_per_mevents", "tracer_cpu_avg_pct")
    ]  # the average CPU % is shown, not gated


def test_a_candidate_under_the_floor_is_compared_against_a_baseline_above_it(tmp_path):
    # a relative change is scaled by the baseline: 10 ms ticks are under 10% of 0.3 s
    write_run(tmp_path / "a", EVENTS, cpu_s=0.3)
    write_run(tmp_path / "b", EVENTS, cpu_s=0.1)
    row = rows_of(_compare(tmp_path / "a", tmp_path / "b")).loc["tracer_cpu_per_mevents"]
    assert row["verdict"] == compare.IMPROVEMENT and row["change"] == pytest.approx(-66.67, abs=0.01)


def test_a_gated_figure_the_candidate_lacks_fails_the_gate(tmp_path):
    write_run(tmp_path / "a", EVENTS, cpu_s=1.0)
    write_run(tmp_path / "b", EVENTS, cpu_s=None, peak_rss=None)
    comparison = _compare(tmp_path / "a", tmp_path / "b")
    assert comparison.exit_code == 1 and len(comparison.regressions) == 0
    assert set(comparison.lost_figures["metric"]) == {"tracer_cpu_per_mevents", "peak_rss_bytes"}
    reason = rows_of(comparison).loc["peak_rss_bytes", "reason"]
    assert reason == "the candidate's tracer bpftrace's peak RSS was not recorded"
    result, _ = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1 and "2 gated figure(s) missing from the candidate" in result.stdout


def test_a_gated_figure_neither_side_has_is_still_a_row(tmp_path):
    write_run(tmp_path / "a", EVENTS, tracer="none", cpu_s=None, peak_rss=None)
    write_run(tmp_path / "b", EVENTS, tracer="none", cpu_s=None, peak_rss=None)
    comparison = _compare(tmp_path / "a", tmp_path / "b")
    assert (
        rows_of(comparison).loc["tracer_cpu_per_mevents", "reason"]
        == "on both sides, the run had no tracer (tracer=none)"
    )
    assert comparison.exit_code == 0
    assert "tracer_cpu_avg_pct" not in set(comparison.rows["metric"])  # not gated and nowhere measured: left out


def test_tracer_cpu_includes_its_bpf_programs_in_kernel_run_time(tmp_path):
    write_run(tmp_path / "a", EVENTS, cpu_s=0.1, bpf_s=0.4)  # 0.1 s in bpftrace, 0.4 s in its programs
    write_run(tmp_path / "b", EVENTS, cpu_s=0.1, bpf_s=1.4)
    row = rows_of(_compare(tmp_path / "a", tmp_path / "b")).loc["tracer_cpu_per_mevents"]
    assert (row["baseline_median"], row["candidate_median"]) == (pytest.approx(500.0), pytest.approx(1500.0))
    assert row["verdict"] == compare.REGRESSION


def test_some_runs_of_a_side_without_the_figure_are_named(tmp_path):
    for i, cpu in enumerate([1.0, 0.05, 1.1]):
        write_run(tmp_path / "base" / f"run{i}", EVENTS, cpu_s=cpu)
    write_run(tmp_path / "cand", EVENTS, cpu_s=1.0)
    row = rows_of(_compare(tmp_path / "base", tmp_path / "cand")).loc["tracer_cpu_per_mevents"]
    assert row["baseline_n"] == 2 and row["verdict"] == compare.SAME
    assert row["reason"] == (
        "1 of 3 baseline runs not counted: tracer used 0.05 s of CPU, under the 0.2 s floor (run run1)"
    )


# -- 2. a broken candidate fails -----------------------------------------------------------


@pytest.mark.parametrize(
    "status, failure, partial, named",
    [
        ("tracer_crashed", None, False, "status tracer_crashed"),
        ("failed", "units not removed: engine gone", True, "status failed: units not removed: engine gone"),
        ("interrupted", "interrupted by SIGTERM", True, "status interrupted: interrupted by SIGTERM"),
        ("loss_exceeded", None, False, "status loss_exceeded"),
        ("error", "KeyError: 'x'", True, "status error: KeyError: 'x'"),
        ("ok", None, True, "status ok, partial"),
    ],
)
def test_a_candidate_run_that_did_not_end_ok_fails_the_gate(tmp_path, status, failure, partial, named):
    write_run(tmp_path / "a", EVENTS)
    write_run(tmp_path / "b" / "run0", EVENTS)
    write_run(tmp_path / "b" / "run1", EVENTS, status=status, failure=failure, partial=partial)
    result, out = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED: candidate run {tmp_path / 'b' / 'run1'} did not end ok: {named}" in result.stdout
    assert "compare: 1 candidate run(s) did not end ok" in result.stdout
    assert named in json.loads((out / "compare.json").read_text())["failed_candidates"][0]
    allowed, _ = _cli(tmp_path, tmp_path / "a", tmp_path / "b", "--allow-failed")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert f"note: candidate run {tmp_path / 'b' / 'run1'} did not end ok: {named}" in allowed.stdout


def test_a_single_failed_candidate_fails_and_allowed_leaves_nothing_to_compare(tmp_path):
    write_run(tmp_path / "a", EVENTS)
    write_run(tmp_path / "b", EVENTS, status="tracer_crashed")
    assert _cli(tmp_path, tmp_path / "a", tmp_path / "b")[0].returncode == 1
    allowed, _ = _cli(tmp_path, tmp_path / "a", tmp_path / "b", "--allow-failed")
    assert allowed.returncode == 2 and "nothing to compare" in allowed.stderr


def test_a_crashed_job_in_a_candidate_sweep_fails_the_gate(tmp_path):
    write_sweep(tmp_path / "base", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    write_sweep(tmp_path / "cand", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    summary_path = tmp_path / "cand" / "1" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary.update(status="tracer_crashed", exit_code=1)
    summary["tracer_cost"]["crashed"] = "bpftrace was killed by signal 9 while the units ran"
    summary_path.write_text(json.dumps(summary))
    comparison = _compare(tmp_path / "base", tmp_path / "cand")
    assert comparison.exit_code == 1
    assert comparison.failed == [
        f"candidate run {tmp_path / 'cand' / '1'} did not end ok: status tracer_crashed: "
        "bpftrace was killed by signal 9 while the units ran"
    ]
    assert comparison.unmatched == []  # named once, as a failure, not also as "only in the baseline"
    assert set(comparison.rows["stress.instances"]) == {"1"}


def test_a_candidate_job_that_failed_before_it_had_results_fails_the_gate(tmp_path):
    write_run(tmp_path / "a", EVENTS)
    write_failed_job(tmp_path / "b", "bad_input", "events: unknown event 'ptrac'")  # no events.csv
    result, _ = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not end ok: status bad_input: events: unknown event 'ptrac'" in result.stdout


def test_a_row_whose_baseline_runs_all_failed_has_no_usable_baseline(tmp_path):
    write_sweep(tmp_path / "base", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    write_sweep(tmp_path / "cand", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    summary_path = tmp_path / "base" / "1" / "summary.json"
    summary_path.write_text(json.dumps({**json.loads(summary_path.read_text()), "status": "interrupted"}))
    with pytest.raises(
        UsageError, match=r"no usable baseline for scenario=smoke stress.instances=2: .*status interrupted"
    ):
        _compare(tmp_path / "base", tmp_path / "cand")


# -- 3. input compare cannot read: exit 2, the file named ------------------------------------


def _drop_column(path, column):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, [c for c in rows[0] if c != column], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _set_cell(path, column, value):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    rows[0][column] = value
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda run: _drop_column(run / "events.csv", "unit"), "events.csv has no unit column"),
        (lambda run: _drop_column(run / "events.csv", "expected"), "events.csv has no expected column"),
        (
            lambda run: _set_cell(run / "events.csv", "events_per_s", "fast"),
            "events.csv line 2: events_per_s is 'fast', not a number",
        ),
        (lambda run: (run / "summary.json").write_text('{"status": '), "summary.json is not valid JSON"),
        (lambda run: (run / "summary.json").write_bytes(b"\xff\xfe{}"), "summary.json is not text"),
        (lambda run: (run / "summary.json").write_text("[1, 2]"), "summary.json holds [1, 2], not a JSON object"),
        (
            lambda run: (run / "summary.json").write_text(
                json.dumps({**json.loads((run / "summary.json").read_text()), "tracer_cost": {"cpu_s": "lots"}})
            ),
            "summary.json: tracer_cost.cpu_s is 'lots', not a number",
        ),
        (lambda run: (run / "events.csv").unlink(), "has a summary.json but no events.csv"),
    ],
)
def test_a_candidate_record_that_cannot_be_read_exits_2_naming_the_file(tmp_path, damage, needle):
    write_run(tmp_path / "a", EVENTS)
    write_run(tmp_path / "b", EVENTS)
    damage(tmp_path / "b")
    result, out = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr and str(tmp_path / "b") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_damaged_job_of_a_sweep_exits_2_naming_its_file(tmp_path):
    write_sweep(tmp_path / "base", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    write_sweep(tmp_path / "cand", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    (tmp_path / "cand" / "1" / "events.csv").unlink()  # an ok job without its events
    (tmp_path / "base" / "multirun.yaml").write_text("hydra: [unclosed")
    with pytest.raises(UsageError, match=r"multirun.yaml is not valid YAML"):
        _compare(tmp_path / "base", tmp_path / "cand")
    write_sweep(tmp_path / "base", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)})
    with pytest.raises(
        UsageError, match=rf"{tmp_path / 'cand' / '1'} has a summary.json of status ok but no events.csv"
    ):
        _compare(tmp_path / "base", tmp_path / "cand")


# -- 4. statistics and thresholds --------------------------------------------------------------


@pytest.mark.slow
def test_loss_is_judged_on_the_worst_run_by_default(tmp_path):
    for i in range(3):
        write_run(tmp_path / "base" / f"run{i}", {"ptrace": (1000, 0.0)})
        write_run(tmp_path / "cand" / f"run{i}", {"ptrace": (1000, 3.0 if i == 1 else 0.0)})
    row = rows_of(_compare(tmp_path / "base", tmp_path / "cand")).loc["loss_pct"]
    assert (row["stat"], row["candidate_value"], row["candidate_median"]) == ("worst", 3.0, 0.0)
    assert row["verdict"] == compare.REGRESSION  # one run of three lost 3%: a finding, not noise
    median = rows_of(_compare(tmp_path / "base", tmp_path / "cand", loss_stat="median")).loc["loss_pct"]
    assert median["verdict"] == compare.SAME and median["stat"] == "median"
    result, _ = _cli(tmp_path, tmp_path / "base", tmp_path / "cand")
    assert "worst 3.00, median 0 [0–3.00] n=3" in result.stdout
    assert (
        "loss_pct regressed (scenario=smoke event=ptrace): baseline (worst run) 0, candidate (worst run) 3.00"
        in result.stdout
    )


def test_loss_with_ties_three_against_three_gives_p_005_and_a_regression(tmp_path):
    for i in range(3):
        write_run(tmp_path / "base" / f"run{i}", {"ptrace": (1000, 0.0)})
        write_run(tmp_path / "cand" / f"run{i}", {"ptrace": (1000, 2.0)})
    for loss_stat in ("worst", "median"):
        row = rows_of(_compare(tmp_path / "base", tmp_path / "cand", loss_stat=loss_stat)).loc["loss_pct"]
        assert row["p_value"] == pytest.approx(0.05) and row["verdict"] == compare.REGRESSION


def test_off_turns_off_a_perf_gate_threshold(tmp_path):
    arch = "x86_64"
    gate = tmp_path / f"{arch}-smoke.json"
    gate.write_text(json.dumps({"peak_rss_kb": 100_000, "avg_cpu_pct": 40.0, "p95_cpu_pct": 80.0}))
    write_run(
        tmp_path / "cand", EVENTS, arch=arch, gate={"peak_rss_kb": 200_000, "avg_cpu_pct": 40.0, "p95_cpu_pct": 80.0}
    )
    cand = rundirs.locate(str(tmp_path / "cand"))
    assert rows_of(perfgate.compare(str(gate), cand, parse([]))).loc["peak_rss_kb", "verdict"] == compare.REGRESSION
    off = perfgate.compare(str(gate), cand, parse(["peak_rss_kb=off"]))
    assert rows_of(off).loc["peak_rss_kb", "verdict"] == compare.INFO and off.exit_code == 0
    assert off.settings.describe("peak_rss_kb") == "off"


def test_compare_csv_keeps_its_columns_and_adds_new_ones_at_the_end(tmp_path):
    write_run(tmp_path / "a", EVENTS)
    write_run(tmp_path / "b", EVENTS)
    _, out = _cli(tmp_path, tmp_path / "a", tmp_path / "b")
    with open(out / "compare.csv") as f:
        header = next(csv.reader(f))
    assert header == [
        "scope",
        "scenario",
        "event",
        "metric",
        "baseline_median",
        "baseline_min",
        "baseline_max",
        "baseline_n",
        "candidate_median",
        "candidate_min",
        "candidate_max",
        "candidate_n",
        "change",
        "change_unit",
        "threshold",
        "p_value",
        "verdict",
        "stat",
        "baseline_value",
        "candidate_value",
        "reason",
    ]

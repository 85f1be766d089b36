"""`evt compare`: verdicts at and beyond each threshold, the statistics of repeated runs,
matching of runs, sweeps and repeat sets, the files written, bad input; and a real pair of
bpftrace-counted run sets compared end to end."""

from __future__ import annotations

import csv
import json

import pytest

from evt.analysis import compare
from evt.analysis.thresholds import METRICS, parse
from evt.errors import UsageError
from evt.results import rundirs
from helpers import needs_bpftrace, run_evt
from run_records import write_run, write_sweep

EVENTS = METRICS["events_per_s"]
LOSS = METRICS["loss_pct"]
RSS = METRICS["peak_rss_bytes"]


@pytest.mark.parametrize(
    "base, cand, verdict",
    [
        ([1000.0], [900.0], compare.SAME),  # exactly -10%: inside the threshold
        ([1000.0], [899.0], compare.REGRESSION),  # -10.1%
        ([1000.0], [1200.0], compare.IMPROVEMENT),
        ([1000.0], [1050.0], compare.SAME),
    ],
)
def test_events_per_s_is_judged_relative_to_the_baseline(base, cand, verdict):
    assert compare.judge(EVENTS, base, cand, 10.0, 0.05).verdict == verdict


@pytest.mark.parametrize(
    "base, cand, verdict, change",
    [
        ([0.0], [1.0], compare.SAME, 1.0),  # +1.0 point: at the threshold
        ([0.5], [1.6], compare.REGRESSION, 1.1),
        ([3.0], [0.5], compare.IMPROVEMENT, -2.5),
    ],
)
def test_loss_is_judged_in_points(base, cand, verdict, change):
    judgement = compare.judge(LOSS, base, cand, 1.0, 0.05)
    assert judgement.verdict == verdict
    assert judgement.change == pytest.approx(change)


def test_a_zero_baseline_has_no_relative_change():
    assert compare.judge(RSS, [0.0], [0.0], 20.0, 0.05).verdict == compare.SAME
    judgement = compare.judge(RSS, [0.0], [5.0], 20.0, 0.05)
    assert judgement.change is None and judgement.verdict == compare.INFO


def test_a_metric_without_threshold_is_information_only():
    judgement = compare.judge(METRICS["total_ops_per_s"], [1000.0], [10.0], None, 0.05)
    assert judgement.verdict == compare.INFO and judgement.change == pytest.approx(-99.0)


def test_a_side_without_values_is_missing():
    judgement = compare.judge(EVENTS, [1000.0], [], 10.0, 0.05)
    assert judgement.verdict == compare.MISSING and judgement.baseline_median == 1000.0


def test_repeats_inside_the_noise_are_not_a_regression():
    # medians 1000 vs 850 (-15%) but the samples overlap: the U test does not find a shift
    judgement = compare.judge(EVENTS, [1000.0, 700.0, 1300.0], [850.0, 1250.0, 650.0], 10.0, 0.05)
    assert judgement.verdict == compare.NOISE
    assert judgement.p_value is not None and judgement.p_value > 0.05


def test_a_consistent_shift_over_three_runs_each_is_a_regression():
    judgement = compare.judge(EVENTS, [1000.0, 1010.0, 990.0], [800.0, 810.0, 790.0], 10.0, 0.05)
    assert judgement.verdict == compare.REGRESSION
    assert judgement.p_value == pytest.approx(0.05)  # 1 of the 20 orderings of 3 vs 3
    assert judgement.baseline_median == 1000.0 and judgement.candidate_median == 800.0


def test_with_fewer_than_three_runs_on_a_side_only_the_threshold_decides():
    judgement = compare.judge(EVENTS, [1000.0], [800.0, 1250.0, 600.0], 10.0, 0.05)
    assert judgement.p_value is None and judgement.verdict == compare.REGRESSION


def _compare(tmp_path, base_path, cand_path, items=()):
    return compare.compare(rundirs.locate(str(base_path)), rundirs.locate(str(cand_path)), parse(list(items)))


def test_runs_match_by_scenario_and_event_and_name_what_does_not(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0), "security_file_open": (5000, 0.0)})
    write_run(tmp_path / "b", {"ptrace": (800, 0.0), "sched_process_exec": (100, 0.0)})
    comparison = _compare(tmp_path, tmp_path / "a", tmp_path / "b")
    assert comparison.exit_code == 1
    regressed = comparison.regressions
    assert list(zip(regressed["event"], regressed["metric"], strict=True)) == [("ptrace", "events_per_s")]
    assert comparison.unmatched == [
        "only in the baseline: scenario=smoke event=security_file_open",
        "only in the candidate: scenario=smoke event=sched_process_exec",
    ]


def test_per_run_figures_gate_on_cpu_per_million_events_and_peak_rss(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)}, cpu_s=2.0, peak_rss=100 * 2**20)
    write_run(tmp_path / "b", {"ptrace": (1000, 0.0)}, cpu_s=2.6, peak_rss=121 * 2**20)
    rows = _compare(tmp_path, tmp_path / "a", tmp_path / "b").rows.set_index("metric")
    assert rows.loc["tracer_cpu_per_mevents", "verdict"] == compare.REGRESSION  # +30%
    assert rows.loc["tracer_cpu_per_mevents", "baseline_median"] == pytest.approx(
        2.0 / 1000 * 1e6
    )  # 2 s / 1,000 events
    assert rows.loc["peak_rss_bytes", "verdict"] == compare.REGRESSION  # +21%
    assert rows.loc["tracer_cpu_avg_pct", "verdict"] == compare.INFO


def test_tracer_cpu_below_the_tick_resolution_is_not_compared_and_says_why(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)}, cpu_s=0.01)
    write_run(tmp_path / "b", {"ptrace": (1000, 0.0)}, cpu_s=0.05)  # +400%, but 4 clock ticks
    comparison = _compare(tmp_path, tmp_path / "a", tmp_path / "b")
    row = comparison.rows.set_index("metric").loc["tracer_cpu_per_mevents"]
    assert row["verdict"] == compare.MISSING and row["candidate_n"] == 1 and row["baseline_n"] == 0
    assert row["reason"] == "the baseline's tracer used 0.01 s of CPU, under the 0.2 s floor"
    assert comparison.exit_code == 0  # the baseline lacks it: named, not a failure


def test_repeat_sets_compare_medians_with_spread(tmp_path):
    for i, rate in enumerate([1000, 1100, 900]):
        write_run(tmp_path / "base" / f"run{i}", {"ptrace": (rate, 0.0)})
    for i, rate in enumerate([700, 720, 680]):
        write_run(tmp_path / "cand" / f"run{i}", {"ptrace": (rate, 0.0)})
    comparison = _compare(tmp_path, tmp_path / "base", tmp_path / "cand")
    assert (comparison.baseline.kind, len(comparison.baseline.run_dirs)) == ("repeats", 3)
    row = comparison.rows.set_index("metric").loc["events_per_s"]
    assert (row["baseline_median"], row["baseline_min"], row["baseline_max"], row["baseline_n"]) == (1000, 900, 1100, 3)
    assert row["verdict"] == compare.REGRESSION and row["p_value"] == pytest.approx(0.05)


def test_sweeps_match_by_swept_values(tmp_path):
    write_sweep(tmp_path / "base", "stress.instances", [1, 2, 4], lambda n: {"ptrace": (1000 * n, 0.0)})
    write_sweep(
        tmp_path / "cand", "stress.instances", [1, 2, 8], lambda n: {"ptrace": (1000 * n, 2.5 if n == 2 else 0.0)}
    )
    comparison = _compare(tmp_path, tmp_path / "base", tmp_path / "cand")
    assert comparison.keys == ["stress.instances"]
    regressed = comparison.regressions
    assert list(zip(regressed["stress.instances"], regressed["metric"], strict=True)) == [("2", "loss_pct")]
    assert comparison.unmatched == [
        "only in the baseline: scenario=smoke stress.instances=4",
        "only in the candidate: scenario=smoke stress.instances=8",
    ]


def test_failed_baseline_runs_are_left_out_with_a_note(tmp_path):
    for i, status in enumerate(["ok", "failed"]):
        write_run(tmp_path / "base" / f"run{i}", {"ptrace": (1000 if status == "ok" else 1, 0.0)}, status=status)
    write_run(tmp_path / "cand", {"ptrace": (1000, 0.0)})
    comparison = _compare(tmp_path, tmp_path / "base", tmp_path / "cand")
    assert comparison.exit_code == 0
    assert comparison.rows.set_index("metric").loc["events_per_s", "baseline_n"] == 1
    assert comparison.skipped == [f"baseline run {tmp_path / 'base' / 'run1'} left out: status failed"]


def test_nothing_in_common_is_bad_input(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)}, scenario="smoke")
    write_run(tmp_path / "b", {"ptrace": (1000, 0.0)}, scenario="network")
    with pytest.raises(UsageError, match=r"nothing to compare.*baseline: scenario=smoke; candidate: scenario=network"):
        _compare(tmp_path, tmp_path / "a", tmp_path / "b")


def test_cli_writes_the_table_files_and_names_each_regression(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)})
    write_run(tmp_path / "b", {"ptrace": (500, 0.0)})
    out = tmp_path / "cmp"
    result = run_evt("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "REGRESSION: events_per_s regressed (scenario=smoke event=ptrace): baseline 1,000, candidate 500 "
        "(-50.0%; threshold -10%)"
    ) in result.stdout
    with open(out / "compare.csv") as f:
        rows = {(r["event"], r["metric"]): r for r in csv.DictReader(f)}
    assert rows[("ptrace", "events_per_s")]["verdict"] == "regression"
    assert rows[("", "peak_rss_bytes")]["verdict"] == "same"
    markdown = (out / "compare.md").read_text()
    assert markdown.startswith("# evt compare: ❌ 1 regression\n")
    assert "| smoke | ptrace | events_per_s | 1,000 | 500 | -50.0% | -10% | - | ❌ regression |" in markdown
    assert json.loads((out / "compare.json").read_text())["exit_code"] == 1


def test_cli_thresholds_change_the_verdict(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)})
    write_run(tmp_path / "b", {"ptrace": (500, 0.0)})
    gate = tmp_path / "gate.yaml"
    gate.write_text("events_per_s: 60\n")
    result = run_evt(
        "compare",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        "--thresholds-file",
        str(gate),
        "--out",
        str(tmp_path / "cmp"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compare: no regression" in result.stdout


@pytest.mark.parametrize(
    "make, args, needle",
    [
        (None, ["{tmp}/nope", "{tmp}/a"], "{tmp}/nope does not exist"),
        ("empty", ["{tmp}/empty", "{tmp}/a"], "{tmp}/empty is not an evt result: it has no summary.json"),
        (None, ["{tmp}/a", "{tmp}/a/events.csv"], "is a file, not a directory"),
        (None, ["{tmp}/a", "{tmp}/a", "-t", "rss=5"], "unknown threshold 'rss'; valid names: events_per_s"),
        ("other", ["{tmp}/a", "{tmp}/other"], "nothing to compare"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, make, args, needle):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)})
    if make == "empty":
        (tmp_path / "empty").mkdir()
    elif make == "other":
        write_run(tmp_path / "other", {"ptrace": (1000, 0.0)}, scenario="network")
    out = tmp_path / "cmp"
    result = run_evt("compare", *[a.format(tmp=tmp_path) for a in args], "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle.format(tmp=tmp_path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


# -- real runs: bpftrace counts real triggers --------------------------------------------


def _paced_run(run_dir, ops: int, sleep: str) -> None:
    result = run_evt(
        "stress",
        "tracer=bpftrace",
        "stress.stress_end_cooldown=0s",
        f"hydra.run.dir={run_dir}",
        "-e",
        f"security_file_open:ops={ops}:sleep={sleep}",
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def paced_runs(tmp_path_factory):
    """Three baseline and three candidate runs of one paced scenario (interleaved, so a
    change in the host's load hits both sides), and one run paced ten times slower."""
    root = tmp_path_factory.mktemp("paced")
    for i in range(3):
        _paced_run(root / "baseline" / f"run{i}", 5000, "100us")
        _paced_run(root / "candidate" / f"run{i}", 5000, "100us")
    _paced_run(root / "slow", 500, "1ms")
    return root


@pytest.mark.integration
@needs_bpftrace
def test_real_runs_of_the_same_paced_scenario_do_not_regress(paced_runs, tmp_path):
    result = run_evt("compare", str(paced_runs / "baseline"), str(paced_runs / "candidate"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "compare.csv") as f:
        rows = {(r["event"], r["metric"]): r for r in csv.DictReader(f)}
    events = rows[("security_file_open", "events_per_s")]
    assert (events["baseline_n"], events["candidate_n"]) == ("3", "3")
    assert rows[("security_file_open", "loss_pct")]["candidate_median"] == "0.0"  # bpftrace saw every event
    summary = json.loads((paced_runs / "candidate" / "run0" / "summary.json").read_text())
    assert summary["tracer"]["name"] == "bpftrace" and summary["tracer"]["version"].startswith("bpftrace v")
    window = summary["tracer_cost"]["window"]  # bpftrace's CPU from the release to the units' end
    assert (
        0 < window["wall_s"] < summary["tracer_cost"]["wall_s"] and window["cpu_s"] <= summary["tracer_cost"]["cpu_s"]
    )
    with open(paced_runs / "candidate" / "run0" / "timeseries.csv") as f:
        samples = list(csv.DictReader(f))
    assert int(samples[-1]["done.security_file_open"]) == 5000 and int(samples[-1]["tracer_rss_bytes"]) > 0


@pytest.mark.integration
@needs_bpftrace
def test_a_real_run_paced_ten_times_slower_regresses_on_events_per_s(paced_runs, tmp_path):
    result = run_evt("compare", str(paced_runs / "baseline" / "run0"), str(paced_runs / "slow"), "--out", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(t for t in result.stdout.splitlines() if t.startswith("REGRESSION: events_per_s regressed"))
    assert "event=security_file_open" in line and "threshold -10%" in line
    with open(tmp_path / "compare.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["metric"] == "events_per_s")
    assert float(row["candidate_median"]) < 0.5 * float(row["baseline_median"])

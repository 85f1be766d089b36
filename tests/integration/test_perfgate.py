"""`evt compare` against a Tracee perf-gate baseline file (`<arch>-<scenario>.json`): the
gate's thresholds (RSS +20 %, average and p95 CPU +25 %), matching by scenario and
architecture, sweeps, bad baseline files; and a real bpftrace run gated end to end.

No perf-gate baseline file exists in the shared fixtures (the perf-gate branch commits
none), so the files here are written from the format docs/tracee.md documents:
`peak_rss_kb`, `avg_cpu_pct`, `p95_cpu_pct`, plus `updated_at`, `commit_sha`, `notes`."""

from __future__ import annotations

import csv
import json
import os

import pytest

from evt.analysis import perfgate
from evt.analysis.compare import IMPROVEMENT, REGRESSION, SAME
from evt.analysis.thresholds import parse
from evt.errors import UsageError
from evt.results import rundirs
from helpers import needs_bpftrace, run_evt
from run_records import write_run, write_sweep

ARCH = os.uname().machine
BASE = {"peak_rss_kb": 100_000, "avg_cpu_pct": 40.0, "p95_cpu_pct": 80.0}


def baseline_file(directory, name=f"{ARCH}-smoke.json", **figures) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        json.dumps(
            {
                **BASE,
                **figures,
                "updated_at": "2026-03-18T00:00:00Z",
                "commit_sha": "5245550de",
                "notes": "constructed from the documented format",
            }
        )
    )
    return str(path)


def candidate(tmp_path, name="cand", **figures):
    write_run(tmp_path / name, {"ptrace": (1000, 0.0)}, gate={**BASE, **figures}, arch=ARCH)
    return rundirs.locate(str(tmp_path / name))


def verdicts(comparison) -> dict[str, str]:
    return dict(zip(comparison.rows["metric"], comparison.rows["verdict"], strict=True))


@pytest.mark.parametrize(
    "figures, expected",
    [
        ({"peak_rss_kb": 120_000}, SAME),  # x 1.20: the gate passes
        ({"peak_rss_kb": 120_001}, REGRESSION),  # beyond x 1.20
        ({"avg_cpu_pct": 50.0}, SAME),  # x 1.25
        ({"avg_cpu_pct": 50.1}, REGRESSION),
        ({"p95_cpu_pct": 100.0}, SAME),
        ({"p95_cpu_pct": 100.5}, REGRESSION),
        ({"peak_rss_kb": 50_000}, IMPROVEMENT),
    ],
)
def test_the_gates_thresholds_apply(tmp_path, figures, expected):
    comparison = perfgate.compare(baseline_file(tmp_path / "b"), candidate(tmp_path, **figures), parse([]))
    (metric,) = figures
    assert verdicts(comparison)[metric] == expected
    assert comparison.exit_code == (1 if expected == REGRESSION else 0)
    others = {m: v for m, v in verdicts(comparison).items() if m != metric}
    assert others == {m: SAME for m in perfgate.GATE_THRESHOLDS if m != metric}


def test_a_threshold_given_replaces_the_gates(tmp_path):
    gate = baseline_file(tmp_path / "b")
    cand = candidate(tmp_path, peak_rss_kb=130_000)
    assert verdicts(perfgate.compare(gate, cand, parse([])))["peak_rss_kb"] == REGRESSION
    assert verdicts(perfgate.compare(gate, cand, parse(["peak_rss_kb=40"])))["peak_rss_kb"] == SAME


def test_repeated_candidate_runs_are_judged_by_their_median(tmp_path):
    for i, rss in enumerate([110_000, 130_000, 150_000]):
        write_run(tmp_path / "cands" / f"run{i}", {"ptrace": (1000, 0.0)}, gate={**BASE, "peak_rss_kb": rss}, arch=ARCH)
    comparison = perfgate.compare(baseline_file(tmp_path / "b"), rundirs.locate(str(tmp_path / "cands")), parse([]))
    row = comparison.rows.set_index("metric").loc["peak_rss_kb"]
    assert (row["baseline_median"], row["candidate_median"], row["candidate_n"]) == (100_000, 130_000, 3)
    assert row["verdict"] == REGRESSION


def test_a_sweep_is_gated_per_swept_value(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep",
        "tracee.buffers.kernel_events",
        [256, 4096],
        lambda v: {"ptrace": (1000, 0.0)},
        arch=ARCH,
        gate=BASE,
    )
    summary = json.loads((sweep / "1" / "summary.json").read_text())
    summary["tracer_cost"]["peak_rss_kb"] = 200_000  # the big buffers cost memory
    (sweep / "1" / "summary.json").write_text(json.dumps(summary))
    comparison = perfgate.compare(baseline_file(tmp_path / "b"), rundirs.locate(str(sweep)), parse([]))
    rss = comparison.rows[comparison.rows["metric"] == "peak_rss_kb"]
    assert dict(zip(rss["tracee.buffers.kernel_events"], rss["verdict"], strict=True)) == {
        "256": SAME,
        "4096": REGRESSION,
    }


def test_only_runs_of_the_baselines_scenario_and_architecture_count(tmp_path):
    write_run(tmp_path / "set" / "a", {"ptrace": (1000, 0.0)}, gate=BASE, arch=ARCH)
    write_run(tmp_path / "set" / "b", {"ptrace": (1000, 0.0)}, gate={**BASE, "peak_rss_kb": 900_000}, arch="riscv64")
    write_run(
        tmp_path / "set" / "c",
        {"ptrace": (1000, 0.0)},
        gate={**BASE, "peak_rss_kb": 900_000},
        scenario="network",
        arch=ARCH,
    )
    comparison = perfgate.compare(baseline_file(tmp_path / "b"), rundirs.locate(str(tmp_path / "set")), parse([]))
    assert comparison.exit_code == 0 and set(comparison.rows["candidate_n"]) == {1}
    assert comparison.skipped == [
        f"candidate run {tmp_path / 'set' / 'b'} not compared: it ran on riscv64, the baseline is for {ARCH}"
    ]
    with pytest.raises(UsageError, match=f"no usable run of scenario 'security' on {ARCH}"):
        perfgate.compare(
            baseline_file(tmp_path / "b", f"{ARCH}-security.json"), rundirs.locate(str(tmp_path / "set")), parse([])
        )


def test_cli_gates_and_writes_the_comparison_files(tmp_path):
    gate = baseline_file(tmp_path / "b")
    candidate(tmp_path, avg_cpu_pct=60.0)
    out = tmp_path / "cmp"
    result = run_evt("compare", gate, str(tmp_path / "cand"), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "REGRESSION: avg_cpu_pct regressed (scenario=smoke): baseline 40.00, candidate 60.00 (+50.0%; threshold +25%)"
    ) in result.stdout
    markdown = (out / "compare.md").read_text()
    assert f"- baseline: `{gate}` (Tracee perf-gate baseline)" in markdown
    assert "- thresholds: peak_rss_kb +20%, avg_cpu_pct +25%, p95_cpu_pct +25%" in markdown
    meta = json.loads((out / "compare.json").read_text())
    assert meta["baseline"]["kind"] == "perfgate" and meta["exit_code"] == 1


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("smoke.json", BASE, "a Tracee perf-gate baseline, named <arch>-<scenario>.json"),
        (f"{ARCH}-smoke.json", "not json", "not a perf-gate baseline"),
        (f"{ARCH}-smoke.json", [1, 2], "not a perf-gate baseline: a JSON object"),
        (f"{ARCH}-smoke.json", {"peak_rss_kb": 1, "avg_cpu_pct": 2}, "p95_cpu_pct is missing"),
        (f"{ARCH}-smoke.json", {**BASE, "avg_cpu_pct": "fast"}, "avg_cpu_pct is 'fast'"),
        (f"{ARCH}-smoke.json", {**BASE, "peak_rss_kb": -1}, "peak_rss_kb is -1"),
        (f"{ARCH}-network.json", BASE, "no usable run of scenario 'network'"),
    ],
)
def test_a_bad_baseline_file_exits_2_and_writes_nothing(tmp_path, name, content, needle):
    candidate(tmp_path)
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "cmp"
    result = run_evt("compare", str(path), str(tmp_path / "cand"), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.integration
@needs_bpftrace
def test_a_real_run_is_gated_against_a_baseline_of_its_own_figures(tmp_path):
    run_dir = tmp_path / "run"
    result = run_evt(
        "stress",
        "tracer=bpftrace",
        "runner=local",
        "stress.stress_end_cooldown=0s",
        f"hydra.run.dir={run_dir}",
        "-e",
        "security_file_open:ops=3000:sleep=200us",
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cost = json.loads((run_dir / "summary.json").read_text())["tracer_cost"]
    assert cost["peak_rss_kb"] > 0 and cost["resource_samples_count"] >= 1
    own = {name: cost[name] for name in perfgate.GATE_THRESHOLDS}
    same = run_evt(
        "compare",
        baseline_file(tmp_path / "b", f"{ARCH}-custom.json", **own),
        str(run_dir),
        "--out",
        str(tmp_path / "same"),
    )
    assert same.returncode == 0, same.stdout + same.stderr
    with open(tmp_path / "same" / "compare.csv") as f:
        rows = {r["metric"]: r for r in csv.DictReader(f)}
    assert (
        rows["peak_rss_kb"]["verdict"] == SAME and float(rows["peak_rss_kb"]["candidate_median"]) == cost["peak_rss_kb"]
    )
    half = run_evt(
        "compare",
        baseline_file(tmp_path / "h", f"{ARCH}-custom.json", **{**own, "peak_rss_kb": cost["peak_rss_kb"] // 2}),
        str(run_dir),
        "--out",
        str(tmp_path / "half"),
    )
    assert half.returncode == 1 and "REGRESSION: peak_rss_kb regressed (scenario=custom)" in half.stdout

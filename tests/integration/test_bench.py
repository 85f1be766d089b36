"""`evt bench` (evt/bench/session.py): rounds paced from the workload, run as stress runs, judged,
and end to end with real containers and a real bpftrace."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from evt.bench import rounds
from evt.bench.search import BenchSettings
from evt.config.spec import parse_spec
from evt.errors import UsageError
from helpers import EVT, bpftrace_skip_reason, run_containers, run_evt, unique_run_id


def compose_bench(overrides: list[str]):
    from evt.cli.hydra_app import compose

    return compose(overrides, app="bench")


def test_the_target_is_shared_equally_by_every_worker():
    specs = [parse_spec("security_file_open:instances=3"), parse_spec("ptrace")]
    paced = [parse_spec(text) for text in rounds.paced_specs(specs, 40_000, 5.0)]
    assert [(s.event, s.instances, s.ops, s.rate) for s in paced] == [
        ("security_file_open", 3, 50_000, 10_000.0),
        ("ptrace", 1, 50_000, 10_000.0),
    ]


def test_a_round_config_runs_the_paced_workload_and_nothing_else():
    cfg = compose_bench(
        [
            "tracer=bpftrace",
            "scenario=smoke",
            "stress.sleep=1ms",
            "bench.cooldown=2s",
            "events=['security_file_open:instances=2']",
        ]
    )
    settings = BenchSettings.from_cfg(cfg.bench)
    specs = [parse_spec("security_file_open:instances=2")]
    requests = rounds.RoundRequests.from_config(cfg)
    traced = requests.round(specs, 20_000, settings, "r-01t", baseline=False)
    assert [str(spec) for spec in traced.specs] == ["security_file_open:instances=2:ops=50000:rate=10000"]
    assert traced.scenarios == () and traced.settings.max_loss_pct is None
    assert (traced.tracer.name, traced.settings.stress_end_cooldown.text, traced.run_id) == ("bpftrace", "2s", "r-01t")
    baseline = requests.round(specs, 20_000, settings, "r-01b", baseline=True)
    assert (baseline.tracer.name, baseline.settings.stress_end_cooldown.text) == ("none", "0s")
    assert requests.stress.tracer.name == "bpftrace" and requests.stress.scenarios == ("smoke",)  # the bench's own


def test_the_default_workload_is_counted_exactly():
    def workload(overrides: list[str]):
        return rounds.workload(rounds.RoundRequests.from_config(compose_bench(overrides)).stress.specs)

    specs = workload(["tracer=bpftrace"])
    assert [(s.event, s.instances) for s in specs] == [("security_file_open", 2)]
    with pytest.raises(UsageError, match="counted as a lower bound"):
        workload(["tracer=bpftrace", "events=['security_file_open:mode=script']"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bench.precision=0"], "bench.precision=0.0 must be a percentage above 0"),
        (["bench.start_rate=-5"], "bench.start_rate must be a positive number of events per second"),
        (["bench.round_duration=five"], "invalid bench.round_duration 'five'"),
        (["-e", "security_file_open:mode=script"], "a bench needs exact counts"),
        # device_add is verified exact at its Tracee hook (evt verify); debugfs_create_dir makes no event there
        (["-e", "debugfs_create_dir"], "whose relation to the event is no_event"),
        (["bench.reach=1.5"], "bench.reach=1.5 must be a share above 0 and at most 1"),
        (["bpftrace.binary=/nonexistent/bpftrace"], "bpftrace not found"),
    ],
)
def test_bad_input_exits_2_before_anything_starts(tmp_path, args, needle):
    result = run_evt("bench", "tracer=bpftrace", *args, f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr and result.stderr.count("Error:") == 1
    assert not (tmp_path / "run").exists()


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.integration
@pytest.mark.alone
@pytest.mark.skipif(bpftrace_skip_reason() is not None, reason=str(bpftrace_skip_reason()))
def test_bpftrace_in_count_mode_is_never_limited_by_loss(tmp_path):
    """bpftrace counts in the kernel: every round observes every expected event, so the
    limit it reports is the workload's (overhead or generator), never loss."""
    run_id = unique_run_id("bench")
    result = run_evt(
        "bench",
        "tracer=bpftrace",
        "bench.round_duration=1s",
        "bench.start_rate=40000",
        "bench.max_rounds=2",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_rows(tmp_path / "bench.csv")
    second = 80_000 if rows[0]["verdict"] == "ok" else 20_000  # x2 after a good round, /2 after a bad one
    assert [float(r["target_eps"]) for r in rows] == [40_000, second]
    for r in rows:
        assert int(r["observed"]) == int(r["expected"]) > 0 and r["lost"] == "0" and float(r["loss_pct"]) == 0
        assert r["verdict"] != "loss"
        # the rounds are paced: a round never runs faster than its target (load only slows it)
        assert float(r["achieved_eps"]) <= 1.05 * float(r["target_eps"])
        assert float(r["baseline_eps"]) <= 1.05 * float(r["target_eps"])
        assert float(r["baseline_eps"]) > 0 and float(r["tracer_cpu_s"]) > 0
        assert float(r["kernel_s_per_m_events"]) > 0  # its BPF programs' time, in the traced processes
        assert Path(r["run_dir"], "summary.json").exists() and Path(r["baseline_run_dir"], "summary.json").exists()
        assert float(r["other_cpu_cores"]) >= 0 and float(r["load_avg_1m"]) >= 0
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert summary["status"] == "ok" and summary["tracer"] == "bpftrace" and summary["limited_by"] != "loss"
    assert summary["precision_reached"] is False and "bench.max_rounds=2 stopped the search" in summary["note"]
    if summary["max_sustainable_eps"] is not None:  # measured: what the best good round achieved, at most its target
        best = [r for r in rows if float(r["target_eps"]) == summary["target_eps_at_max"] and r["verdict"] == "ok"]
        assert summary["max_sustainable_eps"] == min(float(best[0]["achieved_eps"]), summary["target_eps_at_max"])
        assert summary["max_sustainable_eps"] <= summary["achieved_eps_at_max"]
    assert isinstance(summary["noisy"], bool) and summary["other_cpu_cores_max"] >= 0
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "evt bench: tracer bpftrace" in result.stdout and "results: " in result.stdout
    for index in (1, 2):
        for tag in "tb":
            assert run_containers(f"{run_id}-{index:02d}{tag}") == []


def started_at(run_dir: str) -> float:
    return json.loads(Path(run_dir, "summary.json").read_text())["started_at"]


@pytest.mark.integration
@pytest.mark.alone
def test_a_bench_shrinks_bisects_and_confirms_with_real_rounds(tmp_path):
    """A start rate no generator makes (10 million events/s from two workers) is over the
    limit, whatever the machine: the bench halves down to a rate it reaches, bisects, and
    repeats both ends, the baseline run first in a rate's first repeat."""
    run_id = unique_run_id("benchbis")
    result = run_evt(
        "bench",
        "tracer=none",
        "bench.round_duration=20ms",
        "bench.start_rate=10000000",
        "bench.precision=50",
        "bench.confirm=1",
        "bench.max_rounds=24",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_rows(tmp_path / "bench.csv")
    phases = [r["phase"] for r in rows]
    assert rows[0]["verdict"] == "generator" and phases[:2] == ["grow", "shrink"]
    assert "bisect" in phases and "confirm" in phases
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert isinstance(summary["precision_reached"], bool) and summary["confirmation_rounds"] >= 1
    for r in rows:
        if r["repeat"] == "1":  # the rate's first repeat: the run without the tracer went first
            assert r["first"] == "baseline" and started_at(r["baseline_run_dir"]) < started_at(r["run_dir"])
        elif r["repeat"] == "0":
            assert r["first"] == "traced" and started_at(r["run_dir"]) < started_at(r["baseline_run_dir"])
    if summary["max_sustainable_eps"] is not None:
        assert summary["max_sustainable_eps"] <= min(summary["achieved_eps_at_max"], summary["target_eps_at_max"])
    assert "precision reached: " in result.stdout
    for r in rows:
        for tag in "tb":
            assert run_containers(f"{run_id}-{int(r['round']):02d}{tag}") == []


@pytest.mark.integration
@pytest.mark.alone
def test_a_sweep_of_tracers_gets_a_bench_each_and_one_table(tmp_path):
    result = run_evt(
        "bench",
        "-m",
        "tracer=bpftrace,none",
        "bench.round_duration=500ms",
        "bench.start_rate=20000",
        "bench.max_rounds=2",
        f"hydra.sweep.dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_rows(tmp_path / "bench_sweep.csv")
    assert [(r["job"], r["tracer"], r["rounds"]) for r in rows] == [("0", "bpftrace", "2"), ("1", "none", "2")]
    assert all((tmp_path / job / "bench.png").exists() for job in ("0", "1"))
    table = (tmp_path / "bench_sweep.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:4]] == ["| bpftrace", "| none"]
    assert (tmp_path / "bench_sweep.png").stat().st_size > 0


@pytest.mark.integration
def test_an_interrupted_bench_writes_what_it_has_and_leaves_nothing_running(tmp_path):
    run_id = unique_run_id("benchint")
    proc = subprocess.Popen(
        [
            EVT,
            "bench",
            "tracer=none",
            "bench.round_duration=20s",
            "bench.start_rate=1000",
            f"run_id={run_id}",
            f"hydra.run.dir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("rounds/01t-*/.barrier")) or not run_containers(f"{run_id}-01t"):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, out + err
    assert json.loads((tmp_path / "bench.json").read_text())["status"] == "interrupted"
    assert run_containers(f"{run_id}-01t") == []

"""What a bench sweep writes beside its jobs (evt/bench/sweep.py): bench_sweep.csv, the
side-by-side table bench_sweep.md and the figure bench_sweep.png, from each job's
bench.json and bench.csv."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from PIL import Image
from test_bench_report import row, summary_of

from evt.bench import report as bench_report
from evt.bench import sweep as bench_sweep


def make_job(sweep_dir, job: str, overrides: list[str], tracer: str, rounds: list[dict]) -> None:
    (sweep_dir / job / ".hydra").mkdir(parents=True)
    (sweep_dir / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (sweep_dir / job / "bench.json").write_text(json.dumps(summary_of(rounds) | {"tracer": tracer}))
    pd.DataFrame(rounds, columns=bench_report.BENCH_COLUMNS).to_csv(sweep_dir / job / "bench.csv", index=False)


def test_a_sweep_of_tracers_gets_one_table_and_one_figure(tmp_path):
    make_job(
        tmp_path,
        "0",
        ["tracer=bpftrace", "bench.round_duration=3s"],
        "bpftrace",
        [row(10_000, "ok", slowdown_pct=4.0, achieved_eps=9_800), row(20_000, "generator")],
    )
    make_job(
        tmp_path,
        "1",
        ["tracer=auditd", "auditd.backlog_wait_time=0", "bench.round_duration=3s"],
        "auditd",
        [
            row(5_000, "ok", 0.2, cpu_s_per_m_events=31.5, slowdown_pct=12.5, achieved_eps=4_900),
            row(10_000, "loss", 40.0),
        ],
    )
    (tmp_path / "2").mkdir()  # a job that wrote nothing is left out
    rows = bench_sweep.write(tmp_path, (3.5, 2.25, 1.0))  # labels: what tells the jobs apart
    assert [(r["label"], r["max_sustainable_eps"], r["target_eps_at_max"], r["limited_by"]) for r in rows] == [
        ("bpftrace", 9_800, 10_000, "generator"),
        ("auditd auditd.backlog_wait_time=0", 4_900, 5_000, "loss"),
    ]
    csv_rows = pd.read_csv(tmp_path / "bench_sweep.csv")
    assert list(csv_rows["tracer"]) == ["bpftrace", "auditd"] and list(csv_rows["job"]) == [0, 1]
    table = (tmp_path / "bench_sweep.md").read_text().splitlines()
    assert table[0].startswith(
        "| tracer | max sustainable events/s (achieved) | target events/s | limited by | "
        "CPU s per million events at the limit | workload slowdown % at the limit |"
    )
    assert table[2].startswith("| bpftrace | 9,800 | 10,000 | generator | 2.00 | 4.0 | 2 |")
    assert table[3].startswith("| auditd auditd.backlog_wait_time=0 | 4,900 | 5,000 | loss | 31.50 | 12.5 | 2 |")
    assert "Load average at the start of the sweep: 3.50, 2.25, 1.00" in table[-1]
    with Image.open(tmp_path / "bench_sweep.png") as image:
        assert image.size[0] > 500


def test_an_empty_sweep_still_writes_its_files(tmp_path):
    assert bench_sweep.write(tmp_path) == []
    assert (tmp_path / "bench_sweep.md").read_text().count("\n") >= 3
    assert (tmp_path / "bench_sweep.png").exists()

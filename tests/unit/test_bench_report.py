"""What `evt bench` writes (evt/bench/report.py): the summary, bench.csv/json/png, the sweep table."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from omegaconf import OmegaConf
from rich.console import Console

from evt.bench import report as bench_report
from evt.bench.search import BenchSettings
from evt.config.schema import BenchConfig

SETTINGS = BenchSettings.from_cfg(OmegaConf.structured(BenchConfig))


def row(target: float, verdict: str, loss_pct: float | None = 0.0, baseline_eps: float | None = None, **extra) -> dict:
    base = dict.fromkeys(bench_report.BENCH_COLUMNS)
    base.update(target_eps=target, achieved_eps=target, baseline_eps=baseline_eps or target, loss_pct=loss_pct,
                tracer_cpu_pct=target / 1000, cpu_s_per_m_events=2.0, verdict=verdict, expected=int(target * 5))
    base.update(extra)
    return base


def summary_of(rows: list[dict], status: str = "ok") -> dict:
    return bench_report.summarize("bpftrace", SETTINGS, ["security_file_open:instances=2"], rows, "bisect",
                                  status, None, 12.5)


def test_the_limit_is_the_highest_good_target_and_the_lowest_bad_one_says_why():
    rows = [row(10_000, "ok"), row(20_000, "ok"), row(40_000, "loss", 7.0, baseline_eps=39_000),
            row(28_284, "ok", 0.5, slowdown_pct=3.0), row(33_636, "loss", 2.0)]
    summary = summary_of(rows)
    assert summary["max_sustainable_eps"] == 28_284
    assert (summary["limited_by"], summary["first_bad_eps"]) == ("loss", 33_636)
    assert summary["loss_pct_at_max"] == 0.5 and summary["slowdown_pct_at_max"] == 3.0
    assert summary["generator_max_eps"] == 39_000
    assert summary["loss_measured"] and summary["note"] is None and summary["rounds"] == 5


def test_no_bad_round_and_no_good_round_are_explained():
    never_bad = summary_of([row(10_000, "ok"), row(20_000, "ok")])
    assert never_bad["limited_by"] is None and "bench.max_rounds" in never_bad["note"]
    never_good = summary_of([row(10_000, "overhead"), row(5_000, "overhead")])
    assert never_good["max_sustainable_eps"] is None and "lower bench.start_rate" in never_good["note"]
    assert never_good["limited_by"] == "overhead" and never_good["first_bad_eps"] == 5_000
    no_counts = summary_of([row(10_000, "ok", None)])
    assert no_counts["loss_measured"] is False


def test_write_all_writes_csv_json_and_a_png(tmp_path):
    rows = [row(10_000, "ok"), row(20_000, "ok"), row(40_000, "overhead"), row(28_284, "ok")]
    summary = summary_of(rows)
    bench_report.write_all(tmp_path, rows, summary)
    frame = pd.read_csv(tmp_path / "bench.csv")
    assert list(frame.columns) == bench_report.BENCH_COLUMNS
    assert list(frame["target_eps"]) == [10_000, 20_000, 40_000, 28_284]
    assert json.loads((tmp_path / "bench.json").read_text())["max_sustainable_eps"] == 28_284
    from matplotlib import image

    png = image.imread(tmp_path / "bench.png")
    assert png.shape[0] > 300 and png.shape[1] > 400  # a drawn figure, not an empty file


def test_a_bench_without_rounds_still_writes_its_files(tmp_path):
    summary = summary_of([], status="interrupted")
    bench_report.write_all(tmp_path, [], summary)
    assert pd.read_csv(tmp_path / "bench.csv").empty
    assert json.loads((tmp_path / "bench.json").read_text())["status"] == "interrupted"
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_the_live_table_shows_every_round():
    console = Console(record=True, width=200, force_terminal=False)
    with bench_report.LiveTable(console, "bpftrace", SETTINGS) as live:
        live.running(1, 20_000, "bpftrace")
        live.add(row(20_000, "ok", expected=100_000, observed=100_000, lost=0))
        live.add(row(40_000, "loss", 3.25))
    text = console.export_text()
    assert "evt bench: tracer bpftrace" in text
    assert "20,000" in text and "100,000" in text and "3.25" in text and "loss" in text


def test_sweep_rows_one_per_bench(tmp_path):
    for job, tracer in (("0", "bpftrace"), ("1", "none")):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"tracer={tracer}"]))
        summary = summary_of([row(10_000, "ok"), row(20_000, "generator")]) | {"tracer": tracer}
        (tmp_path / job / "bench.json").write_text(json.dumps(summary))
    (tmp_path / "2").mkdir()  # a job that wrote nothing is left out
    rows = bench_report.sweep_rows(tmp_path)
    assert [(r["job"], r["overrides"], r["tracer"], r["max_sustainable_eps"], r["limited_by"]) for r in rows] == [
        ("0", "tracer=bpftrace", "bpftrace", 10_000, "generator"), ("1", "tracer=none", "none", 10_000, "generator")]

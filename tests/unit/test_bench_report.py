"""What `evt bench` writes (evt/bench/report.py): the summary, bench.csv/json/png, the sweep table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf
from rich.console import Console

from evt.bench import report as bench_report
from evt.bench import sweep as bench_sweep
from evt.bench.search import BenchSettings, RateSearch
from evt.config.schema import BenchConfig

SETTINGS = BenchSettings.from_cfg(OmegaConf.structured(BenchConfig))


def row(target: float, verdict: str, loss_pct: float | None = 0.0, baseline_eps: float | None = None, **extra) -> dict:
    """A round of bench.csv; a round within the limit achieved 97% of its target (a paced
    workload falls a little short of it, and the headline must say what it achieved)."""
    base = dict.fromkeys(bench_report.BENCH_COLUMNS)
    base.update(
        target_eps=target,
        achieved_eps=target * (0.97 if verdict == "ok" else 0.8),
        baseline_eps=baseline_eps or target,
        loss_pct=loss_pct,
        tracer_cpu_pct=target / 1000,
        cpu_s_per_m_events=2.0,
        verdict=verdict,
        expected=int(target * 5),
        repeat=0,
    )
    base.update(extra)
    return base


def search_of(rows: list[dict], settings: BenchSettings = SETTINGS) -> RateSearch:
    search = RateSearch(settings)
    for r in rows:
        search.record(r["target_eps"], r["verdict"] == "ok")
    return search


def summary_of(rows: list[dict], status: str = "ok", settings: BenchSettings = SETTINGS) -> dict:
    return bench_report.summarize(
        "bpftrace", settings, ["security_file_open:instances=2"], rows, search_of(rows, settings), status, None, 12.5
    )


def confirmed(target: float, verdicts: str, **extra) -> list[dict]:
    names = {"g": "ok", "l": "loss", "o": "overhead"}
    return [row(target, names[v], repeat=i, **extra) for i, v in enumerate(verdicts)]


def test_the_limit_is_what_the_best_good_round_achieved_and_the_lowest_bad_rate_says_why():
    rows = [
        row(10_000, "ok"),
        row(20_000, "ok"),
        row(40_000, "loss", 7.0, baseline_eps=39_000),
        *confirmed(28_284, "ggg", loss_pct=0.5, slowdown_pct=3.0),
        *confirmed(30_000, "lll", loss_pct=2.0),
    ]
    summary = summary_of(rows)
    assert summary["max_sustainable_eps"] == pytest.approx(0.97 * 28_284)  # achieved, not the target
    assert summary["target_eps_at_max"] == 28_284 and summary["achieved_eps_at_max"] == pytest.approx(0.97 * 28_284)
    assert (summary["limited_by"], summary["first_bad_eps"], summary["first_bad_decision"]) == ("loss", 30_000, "over")
    assert summary["loss_pct_at_max"] == 0.5 and summary["slowdown_pct_at_max"] == 3.0
    assert summary["generator_max_eps"] == 39_000 and summary["precision_reached"] is True
    assert summary["loss_measured"] and summary["note"] is None and summary["rounds"] == 9
    assert summary["confirmation_rounds"] == 4
    assert summary["last_good"]["rounds"] == 3 and summary["first_bad"]["verdicts"] == ["loss"] * 3
    assert [r["rate_decision"] for r in rows] == ["ok", "ok", "over"] + ["ok"] * 3 + ["over"] * 3


def test_a_round_that_ran_faster_than_its_target_counts_its_target():
    summary = summary_of([row(10_000, "ok", achieved_eps=10_400), row(20_000, "overhead")])
    assert summary["max_sustainable_eps"] == 10_000 and summary["achieved_eps_at_max"] == 10_400


def test_an_unstable_rate_is_reported_with_its_spread_and_is_not_the_limit():
    rows = [
        row(10_000, "ok"),
        *confirmed(14_000, "ggg"),
        *confirmed(20_000, "glg"),
        row(20_000, "ok", achieved_eps=19_900),
    ]
    rows[5]["achieved_eps"] = 15_000  # the round over the limit
    summary = summary_of(rows)
    assert [u["target_eps"] for u in summary["unstable"]] == [20_000]
    assert summary["unstable"][0]["achieved_eps"] == [15_000, 19_900]
    assert summary["target_eps_at_max"] == 14_000 and summary["first_bad_decision"] == "unstable"


def test_no_bad_round_and_no_good_round_are_explained():
    never_bad = summary_of([row(10_000, "ok"), row(20_000, "ok")])
    assert never_bad["limited_by"] is None and "bench.max_rounds" in never_bad["note"]
    assert never_bad["precision_reached"] is False
    never_good = summary_of([row(10_000, "overhead"), row(5_000, "overhead")])
    assert never_good["max_sustainable_eps"] is None and "lower bench.start_rate" in never_good["note"]
    assert never_good["limited_by"] == "overhead" and never_good["first_bad_eps"] == 5_000
    no_counts = summary_of([row(10_000, "ok", None)])
    assert no_counts["loss_measured"] is False


def test_other_work_on_the_machine_makes_the_bench_noisy():
    quiet = summary_of([row(10_000, "ok", other_cpu_cores=0.1, load_avg_1m=0.3)])
    assert quiet["noisy"] is False and quiet["other_cpu_cores_max"] == 0.1
    busy = summary_of([row(10_000, "ok", other_cpu_cores=0.1), row(20_000, "ok", other_cpu_cores=0.7, load_avg_1m=2.5)])
    assert busy["noisy"] is True and busy["other_cpu_cores_max"] == 0.7 and busy["load_avg_1m_max"] == 2.5


VERDICTS = st.sampled_from(["ok", "ok", "loss", "overhead", "generator"])


@pytest.mark.property
@given(
    rounds=st.lists(
        st.tuples(st.sampled_from([5_000.0, 10_000.0, 14_142.0, 20_000.0, 40_000.0]), st.floats(0.0, 1.2), VERDICTS),
        max_size=20,
    )
)
def test_the_headline_is_never_above_what_the_workload_achieved(rounds):
    rows = [row(target, v, achieved_eps=share * target) for target, share, v in rounds]
    summary = summary_of(rows)
    headline, search = summary["max_sustainable_eps"], search_of(rows)
    if headline is None:  # only when no round within the limit is at a rate decided within it
        assert not any(
            r["verdict"] == "ok"
            and search.decision(r["target_eps"]) == "ok"
            and (search.bad is None or r["target_eps"] < search.bad)
            for r in rows
        )
        return
    assert headline <= summary["achieved_eps_at_max"] and headline <= summary["target_eps_at_max"]
    assert any(r["verdict"] == "ok" and math.isclose(min(r["achieved_eps"], r["target_eps"]), headline) for r in rows)
    if summary["first_bad_eps"] is not None:
        assert summary["target_eps_at_max"] < summary["first_bad_eps"]


@pytest.mark.slow
def test_write_all_writes_csv_json_and_a_png(tmp_path):
    rows = [
        row(10_000, "ok"),
        row(20_000, "ok"),
        row(40_000, "overhead"),
        *confirmed(28_284, "ggo"),
        *confirmed(33_636, "ooo"),
    ]
    summary = summary_of(rows)
    bench_report.write_all(tmp_path, rows, summary)
    frame = pd.read_csv(tmp_path / "bench.csv")
    assert list(frame.columns) == bench_report.BENCH_COLUMNS
    assert list(frame["target_eps"]) == [10_000, 20_000, 40_000] + [28_284] * 3 + [33_636] * 3
    assert list(frame["repeat"]) == [0, 0, 0, 0, 1, 2, 0, 1, 2]
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["max_sustainable_eps"] == pytest.approx(0.97 * 20_000)  # 28,284 is unstable
    assert written["unstable"][0]["target_eps"] == 28_284
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
    rows = bench_sweep.sweep_rows(tmp_path)
    assert [(r["job"], r["overrides"], r["tracer"], r["max_sustainable_eps"], r["limited_by"]) for r in rows] == [
        ("0", "tracer=bpftrace", "bpftrace", 9_700, "generator"),
        ("1", "tracer=none", "none", 9_700, "generator"),
    ]
    assert [(r["precision_reached"], r["noisy"]) for r in rows] == [(False, False)] * 2

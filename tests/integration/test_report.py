"""`evt report`: report.md and the plots of a run, a sweep and a comparison (constructed
and real), and bad input."""

from __future__ import annotations

import re

import pytest
from matplotlib.image import imread

from helpers import needs_bpftrace, run_evt
from run_records import write_run, write_sweep


def images_of(out_dir) -> list[str]:
    """The plots report.md shows; each must be a readable PNG of a useful size."""
    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out_dir / "report.md").read_text())
    for name in names:
        height, width = imread(out_dir / name).shape[:2]
        assert width >= 500 and height >= 300, name
    return names


def test_run_report_has_the_plots_over_time_and_per_event(tmp_path):
    write_run(tmp_path / "run", {"ptrace": (1000, 0.0), "security_file_open": (5000, 2.0)}, timeseries=True)
    result = run_evt("report", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "run" / "report"
    assert images_of(out) == ["events.png", "ops_rate.png", "tracer_usage.png"]
    text = (out / "report.md").read_text()
    assert "| security_file_open | native | 5,000 | 5,000 | 4,900 | 2.00 | exact |" in text
    assert "tracer: bpftrace (bpftrace v0.0)" in text


def test_run_without_timeseries_says_so(tmp_path):
    write_run(tmp_path / "run", {"ptrace": (1000, 0.0)})
    assert run_evt("report", str(tmp_path / "run"), "--out", str(tmp_path / "r")).returncode == 0
    assert images_of(tmp_path / "r") == ["events.png"]
    assert "no timeseries.csv in this run" in (tmp_path / "r" / "report.md").read_text()


def test_sweep_report_plots_against_each_swept_key(tmp_path):
    write_sweep(tmp_path / "sweep", "stress.instances", [1, 2, 4, 8], lambda n: {"ptrace": (1000 * n, n / 4)})
    result = run_evt("report", str(tmp_path / "sweep"), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert images_of(tmp_path / "r") == ["sweep_stress.instances.png"]
    assert "| 3 | 8 | ok |" in (tmp_path / "r" / "report.md").read_text()


def test_comparison_report_has_a_plot_per_compared_figure(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)})
    write_run(tmp_path / "b", {"ptrace": (500, 0.0)})
    assert run_evt("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")).returncode == 1
    result = run_evt("report", str(tmp_path / "cmp"))
    assert result.returncode == 0, result.stdout + result.stderr
    names = images_of(tmp_path / "cmp" / "report")
    assert {
        "compare_events_per_s.png",
        "compare_loss_pct.png",
        "compare_peak_rss_bytes.png",
        "compare_tracer_cpu_per_mevents.png",
    } <= set(names)
    assert "REGRESSION: events_per_s regressed" in (tmp_path / "cmp" / "report" / "report.md").read_text()


@pytest.mark.parametrize(
    "make, needle",
    [
        (None, "does not exist"),
        ("repeats", "holds 2 separate runs"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, make, needle):
    if make == "repeats":
        for i in range(2):
            write_run(tmp_path / "x" / f"run{i}", {"ptrace": (1000, 0.0)})
    result = run_evt("report", str(tmp_path / "x"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and needle in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.integration
@needs_bpftrace
def test_reports_of_a_real_sweep_its_run_and_a_comparison(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_evt(
        "stress",
        "-m",
        "tracer=bpftrace",
        "stress.stress_end_cooldown=0s",
        f"hydra.sweep.dir={sweep_dir}",
        "-e",
        "security_file_open:ops=3000:sleep=100us",
        "stress.instances=1,2",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (sweep_dir / "0" / ".barrier").exists()  # the start barrier goes with the run
    assert run_evt("report", str(sweep_dir)).returncode == 0
    assert images_of(sweep_dir / "report") == ["sweep_stress.instances.png"]
    assert run_evt("report", str(sweep_dir / "1")).returncode == 0
    assert "events.png" in images_of(sweep_dir / "1" / "report")
    compared = run_evt("compare", str(sweep_dir), str(sweep_dir), "--out", str(tmp_path / "cmp"))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert run_evt("report", str(tmp_path / "cmp")).returncode == 0
    assert "compare_events_per_s.png" in images_of(tmp_path / "cmp" / "report")

"""`evt report` never shows a "-" or leaves a point out without saying why, counts a
tracer's BPF programs' in-kernel run time in its cost, and exits 2 naming a record it
cannot read."""

from __future__ import annotations

import json

from inprocess import evt_main
from run_records import write_failed_job, write_run, write_sweep


def report_text(out_dir) -> str:
    return (out_dir / "report.md").read_text()


def test_a_sweep_report_names_each_value_it_cannot_show(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep", "stress.instances", [1, 2, 4], lambda n: {"ptrace": (1000 * n, 0.0)}, cpu_s=0.12
    )
    summary_path = sweep / "2" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["tracer_cost"].update(cpu_s=3.0, peak_rss_bytes=None)
    summary_path.write_text(json.dumps(summary))
    result = evt_main("report", str(sweep), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    text = report_text(tmp_path / "r")
    assert "| 2 | 4 | ok | 4,000 | 750.00 | - |" in text  # 3 s for 4,000 events; no RSS recorded
    assert "- tracer CPU s / M events not shown for runs 0, 1: tracer used 0.12 s of CPU, under the 0.2 s floor" in text
    assert "- peak RSS not shown for run 2: tracer bpftrace's peak RSS was not recorded" in text


def test_a_sweep_report_names_a_job_that_failed(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep", "stress.instances", [1, 2], lambda n: {"ptrace": (1000 * n, 0.0)}, cpu_s=1.0
    )
    write_failed_job(
        sweep / "2",
        "failed",
        "bpftrace did not attach its probes within 30s",
        overrides=["stress.instances=4", "tracer=bpftrace"],
    )
    result = evt_main("report", str(sweep), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "- tracer CPU s / M events not shown for run 2: the run did not end ok (status failed: bpftrace did not "
        "attach its probes within 30s)"
    ) in report_text(tmp_path / "r")


def test_a_run_report_counts_the_bpf_programs_in_the_tracers_cpu(tmp_path):
    write_run(tmp_path / "run", {"ptrace": (1000, 0.0)}, cpu_s=0.1, bpf_s=0.4)
    result = evt_main("report", str(tmp_path / "run"), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    text = report_text(tmp_path / "r")
    assert "its BPF programs ran 0.400 s in the kernel" in text
    assert "500.00 s per million events (process and BPF programs)" in text  # (0.1 + 0.4) s / 1,000 events


def test_a_run_report_says_why_the_tracers_figures_are_missing(tmp_path):
    write_run(tmp_path / "run", {"ptrace": (1000, 0.0)}, tracer="tracee", counted=False, cpu_s=0.05, peak_rss=None)
    assert evt_main("report", str(tmp_path / "run"), "--out", str(tmp_path / "r")).returncode == 0
    text = report_text(tmp_path / "r")
    assert "per million events not shown: tracer used 0.05 s of CPU, under the 0.2 s floor" in text
    assert "peak RSS: not shown: tracer tracee's peak RSS was not recorded" in text
    assert "observed and loss % of ptrace: tracer tracee did not count ptrace (observed is empty" in text


def test_a_comparison_report_names_the_rows_it_cannot_plot(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)}, cpu_s=0.12)
    write_run(tmp_path / "b", {"ptrace": (1000, 0.0)}, cpu_s=0.36)
    assert evt_main("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")).returncode == 0
    result = evt_main("report", str(tmp_path / "cmp"), "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout + result.stderr
    text = report_text(tmp_path / "r")
    assert "- not compared: tracer_cpu_per_mevents (scenario=smoke) — the baseline's tracer used 0.12 s" in text
    assert "Not plotted for tracer_cpu_per_mevents (a side has no value):" in text
    assert "compare_tracer_cpu_per_mevents.png" not in text


def test_a_damaged_record_exits_2_naming_the_file_and_writes_nothing(tmp_path):
    write_run(tmp_path / "a", {"ptrace": (1000, 0.0)})
    write_run(tmp_path / "b", {"ptrace": (500, 0.0)})
    assert evt_main("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")).returncode == 1
    csv_path = tmp_path / "cmp" / "compare.csv"
    csv_path.write_text(csv_path.read_text().replace(",verdict,", ",judgement,", 1))
    result = evt_main("report", str(tmp_path / "cmp"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and f"{csv_path} has no verdict column" in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()
    events = tmp_path / "b" / "events.csv"
    events.write_text(events.read_text().replace(",500,exact", ",lots,exact", 1))
    result = evt_main("report", str(tmp_path / "b"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and f"{events} line 2: events_per_s is 'lots', not a number" in result.stderr
    assert not (tmp_path / "r").exists()

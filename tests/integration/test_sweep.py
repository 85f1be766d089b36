"""Sweep tables: a column per swept key, a row per job (failed and unrecorded ones too),
sweep_events.csv; with a real multirun and with constructed job directories."""

from __future__ import annotations

import csv
import shutil
import socket

import pytest

from evt.results import sweep
from helpers import run_evt
from run_records import write_sweep


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tables_from_job_directories_include_a_job_without_a_record(tmp_path):
    write_sweep(
        tmp_path, "stress.instances", [1, 2, 4], lambda n: {"ptrace": (1000 * n, 0.0), "sched_process_exec": (10, 0.0)}
    )
    shutil.rmtree(tmp_path / "2")
    (tmp_path / "2" / ".hydra").mkdir(parents=True)  # a job killed before it wrote anything
    (tmp_path / "2" / ".hydra" / "overrides.yaml").write_text("- stress.instances=4\n")
    sweep.write_tables(tmp_path, ["stress.instances=1,2,4", "tracer=bpftrace"])
    rows = read(tmp_path / "sweep.csv")
    assert list(rows[0])[:6] == ["job", "host", "status", "error", "overrides", "stress.instances"]
    assert {r["host"] for r in rows} == {socket.gethostname()}  # a local sweep ran here
    assert [(r["job"], r["status"], r["stress.instances"]) for r in rows] == [
        ("0", "ok", "1"),
        ("1", "ok", "2"),
        ("2", "no_record", "4"),
    ]
    assert [r["expected"] for r in rows] == ["1010", "2010", ""]
    events = read(tmp_path / "sweep_events.csv")
    assert [(r["job"], r["stress.instances"], r["unit"], r["events_per_s"]) for r in events] == [
        ("0", "1", "ptrace", "1000"),
        ("0", "1", "sched_process_exec", "10"),
        ("1", "2", "ptrace", "2000"),
        ("1", "2", "sched_process_exec", "10"),
    ]


@pytest.mark.integration
def test_a_real_sweep_with_failing_jobs_has_a_row_for_each(tmp_path):
    result = run_evt(
        "stress",
        "-m",
        "runner=local",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "-e",
        "security_file_open:ops=200",
        "stress.instances=1,2",
        "stress.mode=native,bogus",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 2, result.stdout + result.stderr  # the worst job's code
    rows = read(tmp_path / "sweep.csv")
    assert [(r["stress.instances"], r["stress.mode"], r["status"]) for r in rows] == [
        ("1", "native", "ok"),
        ("1", "bogus", "bad_input"),
        ("2", "native", "ok"),
        ("2", "bogus", "bad_input"),
    ]
    assert rows[1]["error"] == "invalid mode 'bogus': use native or script."
    assert [r["ok"] for r in rows] == ["200", "", "400", ""]
    for job in range(4):  # every job left its record, the failed ones included
        assert (tmp_path / str(job) / "summary.json").is_file()
    events = read(tmp_path / "sweep_events.csv")
    assert [(r["job"], r["stress.instances"], r["total_ops"], r["ops_ok"]) for r in events] == [
        ("0", "1", "200", "200"),
        ("2", "2", "400", "400"),
    ]

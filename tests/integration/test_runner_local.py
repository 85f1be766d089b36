"""runner=local: units as host process groups, each in its own cgroup."""

from __future__ import annotations

import csv
import json

import psutil
import pytest

from evt import host
from helpers import run_evt, unique_run_id, unit_log_is_whole

pytestmark = pytest.mark.integration


def test_local_units_run_and_leave_nothing_behind(tmp_path):
    run_id = unique_run_id("local")
    result = run_evt(
        "stress",
        "runner=local",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "-e",
        "security_file_open:instances=2:ops=300",
        "-e",
        "security_socket_bind:ops=100",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "workers.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["ok"]) for r in rows) == 700
    plan = json.loads((tmp_path / "plan.json").read_text())
    pids = [u["pid"] for u in plan["units"]]
    assert all(pids) and not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
    )
    root = host.cgroup2_root()
    if root is not None:
        cgroups = [u["cgroup_path"] for u in plan["units"]]
        assert all(c and c.startswith(str(root / f"evt-{run_id}")) for c in cgroups)
        assert not (root / f"evt-{run_id}").exists()


def test_a_sweep_writes_one_row_per_job(tmp_path):
    result = run_evt(
        "stress",
        "-m",
        "runner=local",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "-e",
        "security_file_open:ops=200",
        "stress.instances=1,2",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert ["stress.instances=1" in r["overrides"].split() for r in rows] == [True, False]
    assert ["stress.instances=2" in r["overrides"].split() for r in rows] == [False, True]
    assert [int(r["ok"]) for r in rows] == [200, 400]
    assert all(r["status"] == "ok" for r in rows)


def test_each_units_whole_output_is_saved(tmp_path):
    result = run_evt(
        "stress",
        "runner=local",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "stress.progress_interval=0.005s",
        "-e",
        "security_file_open:ops=300:sleep=10ms",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unit_log_is_whole(tmp_path / "units" / "security_file_open.log", 300)

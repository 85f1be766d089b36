"""`evt cleanup` (evt/stress/cleanup.py) with real processes and a real cgroup: what a killed run
left is removed (processes by pid *and* start time, cgroups by path), cleanup returns only
once those processes have exited, and runs whose orchestrator lives are left alone.

Every call names its run (`--run-id`) and uses its own state directory: other engineers'
runs on this host are never in reach."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from evt import host
from helpers import EVT, run_evt, unique_run_id

pytestmark = pytest.mark.integration


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def record(state_dir: Path, run_id: str, orchestrator: int, procs: list[psutil.Process], cgroups=(), skew: float = 0.0):
    state_dir.mkdir(exist_ok=True)
    state = {
        "run_id": run_id,
        "orchestrator": orchestrator,
        "run_dir": "/nonexistent",
        "processes": [{"pid": p.pid, "create_time": p.create_time() + skew, "role": "test"} for p in procs],
        "cgroups": [str(c) for c in cgroups],
    }
    (state_dir / f"{run_id}.json").write_text(json.dumps(state))


def exited(proc: subprocess.Popen) -> bool:
    return proc.poll() is not None  # reaps: a killed child of ours is gone once polled


def test_cleanup_kills_recorded_processes_removes_cgroups_and_returns_after_they_exited(tmp_path):
    state_dir, run_id = tmp_path / "state", unique_run_id("killed")
    victim, in_cgroup, impostor = sleeper(), sleeper(), sleeper()
    cgroup = None
    root = host.cgroup2_root()
    try:
        if root is not None:
            cgroup = root / f"evt-test-{run_id}"
            (cgroup / "unit").mkdir(parents=True)
            (cgroup / "unit" / "cgroup.procs").write_text(str(in_cgroup.pid))
        # the impostor's pid is recorded with another start time: a reused pid, never touched
        record(state_dir, run_id, dead_pid(), [psutil.Process(victim.pid)], [cgroup] if cgroup else [])
        state = json.loads((state_dir / f"{run_id}.json").read_text())
        state["processes"].append(
            {"pid": impostor.pid, "create_time": psutil.Process(impostor.pid).create_time() - 100, "role": "reused pid"}
        )
        (state_dir / f"{run_id}.json").write_text(json.dumps(state))
        result = run_evt("cleanup", "--run-id", run_id, env={"EVT_STATE_DIR": str(state_dir)})
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"1 processes, {1 if cgroup else 0} cgroups" in result.stdout
        # returned only once the process had exited: already a zombie awaiting our wait()
        assert psutil.Process(victim.pid).status() == psutil.STATUS_ZOMBIE
        assert exited(victim)
        if cgroup:
            assert not cgroup.exists()
            deadline = time.monotonic() + 5
            while not exited(in_cgroup) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert exited(in_cgroup)
        assert not exited(impostor)
        assert not (state_dir / f"{run_id}.json").exists()
    finally:
        for proc in (victim, in_cgroup, impostor):
            proc.kill()
            proc.wait()
        if cgroup is not None and cgroup.exists():
            for child in sorted(cgroup.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
            cgroup.rmdir()


def test_cleanup_leaves_a_live_run_alone(tmp_path):
    state_dir, run_id = tmp_path / "state", unique_run_id("live")
    orchestrator, unit = sleeper(), sleeper()
    try:
        record(state_dir, run_id, orchestrator.pid, [psutil.Process(unit.pid)])
        result = run_evt("cleanup", "--run-id", run_id, env={"EVT_STATE_DIR": str(state_dir)})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "removed 0 containers, 0 processes, 0 cgroups; left 1 active runs alone" in result.stdout
        assert not exited(unit) and not exited(orchestrator)
        assert (state_dir / f"{run_id}.json").exists()
    finally:
        for proc in (orchestrator, unit):
            proc.kill()
            proc.wait()


def test_a_run_whose_orchestrator_is_a_zombie_is_cleaned_up(tmp_path):
    """The orchestrator exited and its parent (this test) has not reaped it: its pid still
    exists, as a zombie, but the run is over and cleanup removes what it left."""
    state_dir, run_id = tmp_path / "state", unique_run_id("zombie")
    orchestrator, unit = subprocess.Popen([str(EVT), "list"], stdout=subprocess.DEVNULL), sleeper()
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(orchestrator.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not waited for
            assert time.monotonic() < deadline, "evt list did not exit"
            time.sleep(0.02)
        record(state_dir, run_id, orchestrator.pid, [psutil.Process(unit.pid)])
        result = run_evt("cleanup", "--run-id", run_id, env={"EVT_STATE_DIR": str(state_dir)})
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("removed 0 containers, 1 processes, 0 cgroups\n"), result.stdout
        assert psutil.Process(orchestrator.pid).status() == psutil.STATUS_ZOMBIE  # not ours to reap
        assert exited(unit) and not (state_dir / f"{run_id}.json").exists()
    finally:
        for proc in (orchestrator, unit):
            proc.kill()
            proc.wait()


def test_a_reused_orchestrator_pid_is_not_a_run_in_progress(tmp_path):
    """The recorded orchestrator pid now belongs to another process (its start time differs)."""
    state_dir, run_id = tmp_path / "state", unique_run_id("reused")
    other, unit = sleeper(), sleeper()
    try:
        record(state_dir, run_id, other.pid, [psutil.Process(unit.pid)])
        state = json.loads((state_dir / f"{run_id}.json").read_text())
        state["orchestrator_create_time"] = psutil.Process(other.pid).create_time() - 100
        (state_dir / f"{run_id}.json").write_text(json.dumps(state))
        result = run_evt("cleanup", "--run-id", run_id, env={"EVT_STATE_DIR": str(state_dir)})
        assert result.returncode == 0 and "1 processes" in result.stdout, result.stdout + result.stderr
        assert exited(unit) and not exited(other)
    finally:
        for proc in (other, unit):
            proc.kill()
            proc.wait()

"""A small record of what a run started, so `evt cleanup` can remove what a killed run
left behind: containers by the run's label, processes by pid *and* start time (a pid
reused by an unrelated process is never touched), cgroup directories by path, and host
settings a tracer changed (what to put back, by kind: see evt/stress/cleanup.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import psutil

from evt.errors import UsageError, brief

STATE_DIR = Path(os.environ.get("EVT_STATE_DIR", "/tmp/evt-runs"))
# A run id names files here, cgroup directories and containers: docker's name alphabet.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def validate_run_id(run_id: str) -> str:
    """A run id usable in paths and container names, and not that of a live run (whose
    containers and processes this run's cleanup would otherwise remove)."""
    if not RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"invalid run_id {brief(run_id)}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (or leave it unset for a generated one)."
        )
    if run_id in active_run_ids():
        raise UsageError(
            f"run_id {run_id} belongs to a run still in progress (pid {load(run_id).get('orchestrator')}): "
            "use another run_id, or leave it unset for a generated one."
        )
    return run_id


def _path(run_id: str) -> Path:
    return STATE_DIR / f"{run_id}.json"


def load(run_id: str) -> dict:
    try:
        return json.loads(_path(run_id).read_text())
    except (OSError, ValueError):
        return {"run_id": run_id, "processes": [], "cgroups": []}


def _save(state: dict) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = _path(state["run_id"]).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(_path(state["run_id"]))


def begin(run_id: str, run_dir: str) -> None:
    state = load(run_id)
    state.update(orchestrator=os.getpid(), orchestrator_create_time=psutil.Process().create_time(), run_dir=run_dir)
    _save(state)


def add_process(run_id: str, pid: int, role: str) -> None:
    state = load(run_id)
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return
    state["processes"].append({"pid": pid, "create_time": created, "role": role})
    _save(state)


def add_cgroup(run_id: str, path: str) -> None:
    state = load(run_id)
    state["cgroups"].append(path)
    _save(state)


def set_restore(run_id: str, kind: str, data: dict) -> None:
    """What `evt cleanup` must put back for this kind of host state (replaces the last record)."""
    state = load(run_id)
    state.setdefault("restore", {})[kind] = data
    _save(state)


def clear_restore(run_id: str, kind: str) -> None:
    """The tracer put it back itself: nothing of this kind is left for `evt cleanup`."""
    state = load(run_id)
    if kind in state.get("restore", {}):
        del state["restore"][kind]
        _save(state)


def finish(run_id: str) -> None:
    try:
        _path(run_id).unlink()
    except FileNotFoundError:
        pass


def _states() -> list[dict]:
    states = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        try:
            states.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return states


def _running(state: dict) -> bool:
    """The run's orchestrator still runs: its pid exists, is not a zombie (an `evt` that
    has exited, its parent yet to reap it, runs nothing) and, where its start time was
    recorded, is the same process (not a reused pid)."""
    orchestrator = state.get("orchestrator")
    if not orchestrator or orchestrator == os.getpid():
        return False
    try:
        proc = psutil.Process(orchestrator)
        created = state.get("orchestrator_create_time")
        if created is not None and abs(proc.create_time() - created) > 0.01:
            return False
    except psutil.NoSuchProcess:
        return False
    return _alive(proc)


def leftovers() -> list[dict]:
    """States of runs whose orchestrator is gone."""
    return [s for s in _states() if not _running(s)]


def active_run_ids() -> set[str]:
    """Runs whose orchestrator still lives: `evt cleanup` leaves them alone."""
    return {s["run_id"] for s in _states() if _running(s)}


def kill_recorded(state: dict, timeout_s: float = 10.0) -> tuple[list[int], list[int]]:
    """SIGKILL the recorded processes (and their process groups) that still are who we
    started, then wait until they have exited. Returns (killed, still alive at the deadline)."""
    killed: list[psutil.Process] = []
    for entry in state.get("processes", []):
        try:
            proc = psutil.Process(entry["pid"])
            if abs(proc.create_time() - entry["create_time"]) > 0.01:
                continue  # the pid now belongs to someone else
        except psutil.NoSuchProcess:
            continue
        try:
            os.killpg(entry["pid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        killed.append(proc)
    deadline = time.monotonic() + timeout_s
    alive = [p for p in killed if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return [p.pid for p in killed], [p.pid for p in alive]


def _alive(proc: psutil.Process) -> bool:
    """Still running: a zombie has exited (its parent has yet to reap it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

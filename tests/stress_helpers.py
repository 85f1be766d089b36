"""Helpers shared by the stress tests: composing configs and running `evt stress`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVT = str(Path(sys.executable).parent / "evt")


def compose(overrides: list[str]):
    from evt.hydra_app import compose as evt_compose

    return evt_compose(overrides)


def run_evt(args: list[str], timeout: float = 300, env_extra: dict[str, str] | None = None,
            **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", **(env_extra or {}))
    return subprocess.run([EVT, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env, **kwargs)


def run_containers(run_id: str) -> list:
    import docker

    return docker.from_env().containers.list(all=True, filters={"label": f"evt.run_id={run_id}"})


def unit_log_is_whole(log: Path, ops: int) -> None:
    """units/<unit>.log holds the unit's whole output: from its waiting line through
    every progress record to its result (far more lines than any in-memory tail kept)."""
    from evt.protocol import Progress, Result, Waiting, decode

    lines = log.read_text().splitlines()
    records = [decode(line) for line in lines]
    assert lines[0].endswith(")") and "Waiting at start barrier" in lines[0]
    assert records[1] == Waiting()
    assert "Starting triggering" in lines[2] and any("Finished triggering" in line for line in lines)
    assert sum(isinstance(r, Progress) for r in records) > 200, len(lines)
    assert isinstance(records[-1], Result) and records[-1].result.ok == ops

"""The one helpers module of the tests: composed configs, units, running `evt` as a user
does, and the processes, ports and fixtures integration tests need.

Configs are always composed from conf/ exactly as `evt stress` composes them (one way).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from omegaconf import OmegaConf

from evt import host
from evt.catalog import get_trigger
from evt.hydra_app import compose
from evt.marker import Marker, Target
from evt.plan import Unit

ROOT = Path(__file__).resolve().parent.parent
EVT = str(Path(sys.executable).parent / "evt")  # the venv's console script
STANDIN = ROOT / "tests" / "tracee_standin.py"
# ../shared beside the checkout (EVT_SHARED names it elsewhere, e.g. from a git worktree)
FIXTURES = Path(os.environ.get("EVT_SHARED", ROOT.parent / "shared")) / "fixtures" / "tracee"


# -- configs and units ---------------------------------------------------------------------


def compose_cfg(*overrides: str, **updates: object):
    """The composed config (conf/config.yaml) with Hydra overrides, then `updates`
    (dotted keys, e.g. {"tracee.output": "destinations.a.format=json ..."}) for values
    the override grammar would need quoting for."""
    cfg = compose(list(overrides))
    for key, value in updates.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def make_unit(event: str = "security_file_open", *, name: str | None = None, mode: str = "native",
              run_id: str = "test-run", target: Target | None = None, instances: int = 1, ops: int = 10,
              **placement) -> Unit:
    """A unit of the plan; its target is the trigger's own (marker rendered) unless given.
    placement: container_id, pid, cgroup_path, container_name."""
    name = name or event
    marker = Marker.for_run(run_id, event)
    target = target or get_trigger(event).mode(mode).target.rendered(event, marker)
    placement.setdefault("container_name", f"evt-{run_id}-{name}")
    return Unit(name=name, event=event, mode=mode, instances=instances, ops=ops, sleep="0s", marker=marker,
                target=target, argv=["evt", "trigger", "--event", event], **placement)


# -- running evt --------------------------------------------------------------------------


def run_evt(*args: str, timeout: float = 300, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run `evt ARGS...` as a user would (no terminal, no input unless given), capturing its output."""
    if "input" not in kwargs:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([EVT, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, COLUMNS="200", **(env or {})), **kwargs)


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


# -- host and fixtures ----------------------------------------------------------------------


def bpftrace_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpftrace)"
    if not shutil.which("bpftrace"):
        return "bpftrace not installed (make setup)"
    if not host.tracefs_mounted():
        return "tracefs not mounted at /sys/kernel/tracing"
    return None


needs_bpftrace = pytest.mark.skipif(bpftrace_skip_reason() is not None, reason=bpftrace_skip_reason() or "")


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"Tracee reference fixture {path} is absent (shared/ is expected beside the checkout)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def standin_cfg(tmp_path: Path, port: int, *overrides: str, **updates: object):
    """A config whose tracee.binary is the stand-in, fast timings, loopback port, tmp pidfile."""
    base = [
        "tracer=tracee",
        f"tracee.binary={STANDIN}",
        f"tracee.http_address=127.0.0.1:{port}",
        f"tracee.pidfile={tmp_path / 'tracee.pid'}",
        "tracee.init_cooldown=0s",
        "tracee.ready_timeout=10s",
        "tracee.start_grace=300ms",
        "tracee.stop_timeout=2s",
        "tracee.drain=0s",
    ]
    return compose_cfg(*base, *overrides, **updates)


# -- processes we started -------------------------------------------------------------------


def reap(pid: int) -> None:
    """SIGKILL a process group we started (if it still exists) and wait for its leader."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        psutil.Process(pid).wait(timeout=5)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired, ChildProcessError):
        pass


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def group_gone(pgid: int, timeout: float = 5.0) -> bool:
    """True once no live (non-zombie) process is left in process group `pgid`."""
    deadline = time.monotonic() + timeout
    while True:
        live = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    live.append(proc.info["pid"])
            except (ProcessLookupError, PermissionError):
                continue
        if not live or time.monotonic() >= deadline:
            return not live
        time.sleep(0.05)

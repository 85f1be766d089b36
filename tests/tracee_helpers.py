"""Shared helpers of the Tracee tests: composed configs, units, free ports, the stand-in.

(tests/conftest.py belongs to another part of the suite; these live here and are
imported by name.)
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import evt.config  # noqa: F401 - registers the structured configs
from evt.marker import Marker, Target
from evt.config import HYDRA_VERSION_BASE
from evt.paths import CONF_DIR
from evt.plan import Unit

TESTS = Path(__file__).resolve().parent
STANDIN = TESTS / "tracee_standin.py"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "tracee"


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"Tracee reference fixture {path} is absent (shared/ is expected beside the checkout)")
    return path


def compose_cfg(*overrides: str, **updates: object):
    """The composed config (conf/config.yaml) with Hydra overrides, then `updates`
    (dotted keys, e.g. {"tracee.output": "destinations.a.format=json ..."}) for values
    the override grammar would need quoting for."""
    with initialize_config_dir(version_base=HYDRA_VERSION_BASE, config_dir=str(CONF_DIR)):
        cfg = compose("config", overrides=list(overrides))
    for key, value in updates.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_unit(event: str, *, container_id: str | None = None, pid: int | None = None,
              cgroup_path: str | None = None, run_id: str = "test-run") -> Unit:
    return Unit(
        name=event,
        event=event,
        mode="native",
        instances=1,
        ops=10,
        sleep="0s",
        marker=Marker.for_run(run_id, event),
        target=Target(probe="tracepoint:syscalls:sys_enter_openat", filter="1", per_op=1, exact=True),
        argv=["evt", "trigger", "--event", event],
        container_name=f"evt-{run_id}-{event}",
        container_id=container_id,
        pid=pid,
        cgroup_path=cgroup_path,
    )


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

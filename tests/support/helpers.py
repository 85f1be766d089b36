"""The one helpers module of the tests: composed configs, units, running `evt` as a user
does, the processes, ports and fixtures integration tests need, and host triggers that
drive a real tracer.

Configs are always composed from conf/ exactly as `evt stress` composes them (one way).
"""

from __future__ import annotations

import copy
import json
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
from evt.cli.hydra_app import compose
from evt.stress.plan import Unit
from evt.workload.catalog import get_trigger
from evt.workload.marker import Marker, Target

ROOT = Path(__file__).resolve().parents[2]
EVT = str(Path(sys.executable).parent / "evt")  # the venv's console script
STANDIN = Path(__file__).resolve().parent / "tracee_standin.py"
# ../shared beside the checkout (EVT_SHARED names it elsewhere, e.g. from a git worktree)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tracee"  # copies of shared/fixtures/tracee (see its README)


# -- configs and units ---------------------------------------------------------------------


_composed: dict[tuple[str, ...], object] = {}  # compose_cfg's configs, by overrides


def compose_cfg(*overrides: str, **updates: object):
    """The composed config (conf/config.yaml) with Hydra overrides, then `updates`
    (dotted keys, e.g. {"tracee.output": "destinations.a.format=json ..."}) for values
    the override grammar would need quoting for."""
    # composing costs ~0.1 s of CPU, a copy of the same config ~2 ms: the 64 configs used
    # last are kept (the property tests' random overrides pass through without crowding out
    # the ones tests use again and again)
    cfg = _composed.pop(overrides, None)
    if cfg is None:
        cfg = compose(list(overrides))
    _composed[overrides] = cfg  # the most recently used last
    if len(_composed) > 64:
        del _composed[next(iter(_composed))]
    cfg = copy.deepcopy(cfg)
    for key, value in updates.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def plugin_run(cfg, run_dir, run_id: str | None = None):
    """The RunContext a run of `cfg` gives its plugins (evt.stress.request.RunRequest.context)."""
    from evt.stress.plan import RunContext

    run_dir = Path(run_dir)
    return RunContext(
        run_id=str(run_id or cfg.get("run_id") or run_dir.name), run_dir=run_dir, runner=str(cfg.runner.name)
    )


def tracer_from(cfg, run_dir, run_id: str | None = None):
    """The tracer `cfg` chooses, built as a run builds it: from its own node (evt.plugins.make_tracer)."""
    from evt.plugins import PluginOption, make_tracer

    return make_tracer(PluginOption.of(cfg.tracer), plugin_run(cfg, run_dir, run_id))


def runner_from(cfg, run_id: str, run_dir):
    """The runner `cfg` chooses, built as a run builds it: from its own node (evt.plugins.make_runner)."""
    from evt.plugins import PluginOption, make_runner

    return make_runner(PluginOption.of(cfg.runner), plugin_run(cfg, run_dir, run_id))


def build_tracer(cls: type, cfg, run_dir, run_id: str = "test-run"):
    """A tracer of class `cls` built as evt builds it (evt.plugins.make_tracer): from its
    option's node, the one `cfg` chose when it names `cls`, else conf/tracer/<cls.name>.yaml
    put in a copy of `cfg` (so its sections, e.g. cfg.bpftrace, are the ones it reads)."""
    from hydra.utils import get_class

    if get_class(str(cfg.tracer._target_)) is not cls:
        cfg = cfg.copy()
        cfg.tracer = compose([f"tracer={cls.name}"]).tracer
    return tracer_from(cfg, run_dir, run_id)


def make_unit(
    event: str = "security_file_open",
    *,
    name: str | None = None,
    mode: str = "native",
    run_id: str = "test-run",
    target: Target | None = None,
    instances: int = 1,
    ops: int = 10,
    **placement,
) -> Unit:
    """A unit of the plan; its target is the trigger's own (marker rendered) unless given.
    placement: container_id, pid, cgroup_path, container_name."""
    name = name or event
    marker = Marker.for_run(run_id, event)
    target = target or get_trigger(event).mode(mode).target.rendered(event, marker)
    placement.setdefault("container_name", f"evt-{run_id}-{name}")
    return Unit(
        name=name,
        event=event,
        mode=mode,
        instances=instances,
        ops=ops,
        sleep="0s",
        marker=marker,
        target=target,
        argv=["evt", "trigger", "--event", event],
        **placement,
    )


# -- running evt --------------------------------------------------------------------------


def run_evt(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run `evt ARGS...` as a user would (no terminal, no input unless given), capturing its output."""
    if "input" not in kwargs:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [EVT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, COLUMNS="200", **(env or {})),
        **kwargs,
    )


def unique_run_id(prefix: str) -> str:
    """A run id no other run on this host has, also one from another checkout's concurrent suite
    (ids derived from pytest's tmp dir names are the same in every checkout)."""
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_containers(run_id: str) -> list:
    import docker

    return docker.from_env().containers.list(all=True, filters={"label": f"evt.run_id={run_id}"})


def unit_log_is_whole(log: Path, ops: int) -> None:
    """units/<unit>.log holds the unit's whole output: from its waiting line through
    every progress record to its result (far more lines than any in-memory tail kept)."""
    from evt.workload.protocol import Progress, Result, Waiting, decode

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
    assert path.is_file(), f"Tracee reference fixture {path} is missing from the checkout"
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
        "tracee.metrics_interval=1h",  # no scrapes between start and end unless a test asks
        "tracee.pprof_slice=1h",
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


# -- host triggers held at a start barrier while a tracer starts -----------------------------
# Real `evt trigger` units on the host with marker-carrying native workers: how the tracer
# tests drive a real tracer.


class HostTrigger:
    """`evt trigger -e EVENT --run-id RUN --start-fifo FIFO`: workers wait at the barrier."""

    def __init__(
        self,
        fifo: Path,
        run_id: str,
        event: str,
        ops: int,
        workers: int = 1,
        sleep: str = "0",
        name: str | None = None,
        preexec_fn=None,
    ):
        self.event, self.ops, self.workers, self.run_id = event, ops, workers, run_id
        self.marker = Marker.for_run(run_id, event)
        self.name = name or event
        self.proc = subprocess.Popen(
            [
                str(EVT),
                "trigger",
                "-e",
                event,
                "-o",
                str(ops),
                "-p",
                str(workers),
                "-s",
                sleep,
                "--json",
                "--run-id",
                run_id,
                "--start-fifo",
                str(fifo),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,
        )
        line = self.proc.stdout.readline()
        assert "Waiting at start barrier" in line, line + self.proc.stderr.read()

    def unit(self, name: str | None = None, **scope) -> Unit:
        return make_unit(
            self.event, name=name or self.name, run_id=self.run_id, instances=self.workers, ops=self.ops, **scope
        )

    def finish(self, timeout: float = 120) -> dict:
        """The trigger's JSON result; it must have succeeded."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return json.loads(out.splitlines()[-1].split("] ", 1)[1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def barrier(tmp_path: Path) -> Path:
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    return fifo


def release(fifo: Path) -> None:
    """Open and close the barrier: every waiting worker starts."""
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# Host noise released by the same barrier as the units. A near miss: opens of the unit's
# marker file under another comm, then of another file under the unit's marker comm. An
# impostor: opens of the marker file under the marker comm, from outside the unit's scope.
NOISE = """
import ctypes, os, select, sys, time
fifo, path, comm, ops, kind = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
os.makedirs(os.path.dirname(path), exist_ok=True)
open(path, "ab").close()
print("ready", flush=True)
poller = select.poll()
poller.register(fd, select.POLLIN | select.POLLHUP)
poller.poll(60000)
if kind == "impostor":
    ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
for _ in range(ops):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError:
        pass  # the unit removed its marker directory when it ended: the open was still made
    time.sleep(0.0001)  # at the units' pace: noise, not a flood
ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
for _ in range(ops if kind == "near-miss" else 0):
    os.close(os.open(sys.executable, os.O_RDONLY))
    time.sleep(0.0001)
print("done", flush=True)
"""


class Noise:
    def __init__(self, fifo: Path, marker: Marker, ops: int, kind: str = "near-miss"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", NOISE, str(fifo), marker.file, marker.comm, str(ops), kind],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def finish(self) -> None:
        assert self.proc.communicate(timeout=60)[0].strip() == "done"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def trace(
    tracer,
    fifo: Path,
    triggers: list[HostTrigger],
    noise: Noise | None = None,
    units: list[Unit] | None = None,
    frozen: bool = False,
    **scope,
):
    """Start the tracer on the units (by default the triggers' own), release the triggers
    (and the noise), wait until every op succeeded, stop the tracer: its report.
    frozen: the tracer's process is stopped (SIGSTOP) while the triggers run and continued
    after, so its buffer overflows whatever the machine's speed: loss made, not hoped for.
    Everything is stopped whatever happens."""
    units = units or [t.unit(**scope) for t in triggers]
    try:
        tracer.check(units)
        tracer.start(units)
        tracer.wait_ready()
        if frozen:
            os.kill(tracer.process.pid, signal.SIGSTOP)
        release(fifo)
        for trig in triggers:
            assert trig.finish()["ok"] == trig.ops * trig.workers
        if noise is not None:
            noise.finish()
        if frozen:
            os.kill(tracer.process.pid, signal.SIGCONT)
            wait_until_idle(tracer.process.pid)  # it drained what its buffers hold
            open_on_every_cpu()
            wait_until_idle(tracer.process.pid)
        tracer.stop()
        return tracer.report(units)
    finally:
        for proc in [*triggers, *([noise] if noise else [])]:
            proc.kill()
        tracer.stop()


def open_on_every_cpu(opens: int = 20) -> None:
    """Open /dev/null on each CPU in turn. The kernel writes a perf buffer's pending count
    of lost samples only with the next sample that fits, so once a stalled tracer has
    drained its buffers, each CPU needs one more event before the tracer can learn (and
    report) what it lost."""
    allowed = os.sched_getaffinity(0)
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            for _ in range(opens):
                os.close(os.open(os.devnull, os.O_RDONLY))
    finally:
        os.sched_setaffinity(0, allowed)


def wait_until_idle(pid: int, settle: float = 0.5, deadline: float = 15.0) -> None:
    """Return once the process has used no CPU for `settle` seconds (a tracer continued after
    SIGSTOP has drained its buffers and printed its lost-event notices), or at the deadline."""
    proc, end = psutil.Process(pid), time.monotonic() + deadline
    last, quiet_since = sum(proc.cpu_times()[:2]), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        cpu = sum(proc.cpu_times()[:2])
        if cpu != last:
            last, quiet_since = cpu, time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return


def assert_one_paragraph(message: str, max_chars: int = 1000) -> str:
    """A refusal as evt promises it: one paragraph (no blank line, no traceback, bounded)
    whose first line names the problem; evt's hints may follow on their own lines (#10
    keeps the original's first line verbatim)."""
    lines = message.split("\n")
    assert lines[0].strip() and all(line.strip() for line in lines), message
    assert len(message) < max_chars and "Traceback" not in message, message
    return message

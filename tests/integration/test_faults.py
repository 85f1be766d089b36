"""Faults injected into real `evt stress` runs (issue #12): the tracer SIGKILLed mid-run or
never ready, signals twice in every phase, evt itself SIGKILLed then `evt cleanup`, the
run directory's filesystem full, a unit ended by the OOM killer, dockerd stopped mid-run
(a dockerd of the test's own, on its own socket and data root). Each checks the exit code, the messages, what
summary.json says, and that nothing of the run is left (containers by the run's label,
processes by the pids the run recorded)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from evt.stress import runstate
from helpers import EVT, STANDIN, free_port, run_containers, run_evt, unique_run_id

pytestmark = pytest.mark.integration

LONG = ["-e", "ptrace:ops=100000:sleep=1ms"]  # ~100 s if nothing stops it


class Run:
    """`evt stress` in the background, its output collected line by line."""

    def __init__(self, tmp_path: Path, run_id: str, args: list[str], env: dict[str, str] | None = None):
        # unique on the host: other engineers run these tests at the same time
        self.run_id, self.run_dir = f"{run_id}-{uuid.uuid4().hex[:6]}", tmp_path / "run"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [EVT, "stress", *args, f"run_id={self.run_id}", f"hydra.run.dir={self.run_dir}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, COLUMNS="200", **(env or {})),
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert self.proc.poll() is None or needle in self.output, f"exited before {needle!r}:\n{self.output}"
            assert time.monotonic() < deadline, f"{needle!r} not printed in {timeout}s:\n{self.output}"
            time.sleep(0.05)

    def recorded_pids(self) -> dict[int, str]:
        """The processes the run recorded for `evt cleanup` (role by pid)."""
        state = runstate.load(self.run_id)
        return {p["pid"]: p["role"] for p in state.get("processes", [])}

    def wait_for_tracer_pid(self, timeout: float = 30) -> list[int]:
        """Every pid the run recorded, once its tracer is among them."""
        deadline = time.monotonic() + timeout
        while not any(role.startswith("tracer") for role in self.recorded_pids().values()):
            assert time.monotonic() < deadline, f"no tracer recorded in {timeout}s:\n{self.output}"
            time.sleep(0.02)
        return list(self.recorded_pids())

    def finish(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)
        return code

    def summary(self) -> dict:
        return json.loads((self.run_dir / "summary.json").read_text())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def standin(tmp_path: Path) -> list[str]:
    return [
        "tracer=tracee",
        f"tracee.binary={STANDIN}",
        f"tracee.http_address=127.0.0.1:{free_port()}",
        f"tracee.pidfile={tmp_path / 'tracee.pid'}",
        "tracee.init_cooldown=0s",
        "tracee.drain=0s",
        "tracee.stop_timeout=2s",
    ]


def standin_pid(tmp_path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (tmp_path / "standin.pid").exists():
        assert time.monotonic() < deadline, "the stand-in never wrote its pidfile"
        time.sleep(0.05)
    return int((tmp_path / "standin.pid").read_text())


def assert_nothing_left(run: Run, pids: list[int] = ()) -> None:
    assert run_containers(run.run_id) == []
    for pid in pids:
        deadline = time.monotonic() + 10
        while not gone(pid):
            assert time.monotonic() < deadline, f"process {pid} of the run is still there"
            time.sleep(0.05)
    assert not (runstate.STATE_DIR / f"{run.run_id}.json").exists()


def test_tracer_sigkilled_mid_run_is_reported_and_the_run_cleaned_up(tmp_path):
    # a tracer dying does not stop the units: their figures are kept (a run of ~5 s)
    run = Run(
        tmp_path,
        unique_run_id("flt-kill"),
        ["tracer=bpftrace", "stress.stress_end_cooldown=0s", "-e", "ptrace:ops=5000:sleep=1ms"],
    )
    run.wait_for("Phase 5")
    (tracer_pid,) = [pid for pid, role in run.recorded_pids().items() if role.startswith("tracer")]
    os.kill(tracer_pid, signal.SIGKILL)
    code = run.finish()
    assert code == 1, run.output
    assert "tracer bpftrace died mid-run: bpftrace was killed by SIGKILL while the units ran" in run.output
    summary = run.summary()
    assert summary["status"] == "tracer_crashed" and summary["exit_code"] == 1
    assert "SIGKILL" in summary["tracer_cost"]["crashed"]
    assert "Traceback" not in run.output
    assert_nothing_left(run, [tracer_pid])


def test_tracer_never_ready_fails_the_run_before_any_unit_is_released(tmp_path):
    run = Run(
        tmp_path,
        unique_run_id("flt-notready"),
        [*standin(tmp_path), "tracee.ready_timeout=2s", "runner=local", "stress.stress_end_cooldown=0s", *LONG],
        env={"EVT_STANDIN_MODE": "never_ready", "EVT_STANDIN_PIDFILE": str(tmp_path / "standin.pid")},
    )
    pid = standin_pid(tmp_path)
    code = run.finish()
    assert code == 1, run.output
    assert "healthz never answered 200" in run.output and "tracee.ready_timeout" in run.output
    assert "Phase 4" not in run.output  # never released
    summary = run.summary()
    assert summary["status"] == "failed" and summary["ok"] == 0 and "healthz" in summary["failure"]
    assert "Traceback" not in run.output
    assert_nothing_left(run, [pid])


@pytest.mark.parametrize("tracer", ["bpftrace", "tracee-standin"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_before_the_tracer_was_ready_says_interrupted_not_crashed(tmp_path, signum, tracer):
    if tracer == "bpftrace":  # interrupted while bpftrace attaches its probes (it takes a second or more)
        args, env, needle = ["tracer=bpftrace"], None, "Starting bpftrace"
    else:  # a Tracee (stand-in) that never becomes ready
        args, needle = [*standin(tmp_path), "tracee.ready_timeout=60s"], "Phase 3"
        env = {"EVT_STANDIN_MODE": "never_ready", "EVT_STANDIN_PIDFILE": str(tmp_path / "standin.pid")}
    run = Run(
        tmp_path,
        unique_run_id(f"flt-early-{tracer[:4]}-{signum.name.lower()}"),
        [*args, "runner=local", *LONG],
        env=env,
    )
    run.wait_for(needle)
    pids = run.wait_for_tracer_pid()
    run.proc.send_signal(signum)
    code = run.finish()
    assert code == 128 + signum, run.output
    summary = run.summary()
    assert summary["status"] == "interrupted" and summary["tracer_cost"]["crashed"] is None
    assert "crash" not in run.output.lower(), run.output
    assert_nothing_left(run, pids)


# phase: (what is printed when the phase has begun, extra arguments)
PHASES = {
    "start": (
        "Phase 2",
        [
            "tracer=none",
            "stress.stress_end_cooldown=0s",
            "-e",
            "security_file_open:instances=4:ops=100000:sleep=1ms",
            *LONG,
        ],
    ),
    "tracer": ("Phase 3", ["stress.stress_end_cooldown=0s", *LONG]),  # the stand-in, never ready
    "run": ("Phase 5", ["tracer=none", "stress.stress_end_cooldown=0s", *LONG]),
    "cooldown": (
        "=== Stress End Cooldown ===",
        ["tracer=none", "stress.stress_end_cooldown=60s", "-e", "ptrace:ops=10"],
    ),
}


def phase_run(tmp_path: Path, phase: str, name: str, tracer: str = "none", slow_stop: bool = False) -> Run:
    """A run that has reached `phase` (in the tracer phase: a Tracee stand-in never ready).
    `slow_stop`: the tracer is a stand-in that ignores SIGTERM, so that cleanup takes
    tracee.stop_timeout (2 s) once the tracer has started."""
    needle, args = PHASES[phase]
    args = [a for a in args if a != "tracer=none"]
    modes = ["ignore_sigterm"] if slow_stop else []
    if phase == "tracer":
        args = [*standin(tmp_path), "tracee.ready_timeout=60s", *args]
        modes.append("never_ready")
    elif slow_stop and phase != "start":
        args = [*standin(tmp_path), *args]
    else:
        args.append(f"tracer={tracer}")
    env = {"EVT_STANDIN_MODE": ",".join(modes)} if modes else None
    run = Run(tmp_path, unique_run_id(f"{name}"), args, env)
    run.wait_for(needle)
    return run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_a_signal_twice_in_any_phase_still_cleans_up(tmp_path, phase, signum):
    """The second signal arrives while evt cleans up after the first: cleanup completes.
    Once a tracer has started, its stop makes cleanup last 2 s, so the second signal surely
    lands in it; before (the start phase), it may come after, when evt is exiting."""
    run = phase_run(tmp_path, phase, f"flt-2x-{phase}-{signum.name.lower()}", slow_stop=True)
    pids = list(run.recorded_pids())
    run.proc.send_signal(signum)
    run.wait_for("nterrupted")  # "Interrupted by ... (cleaning up)" / "Monitoring interrupted"
    run.proc.send_signal(signum)
    code = run.finish()
    assert code == 128 + signum, run.output
    assert run.summary()["status"] == "interrupted"
    assert "Traceback" not in run.output, run.output
    if phase != "start":
        assert f"{signum.name} again: still cleaning up" in run.output, run.output
    assert_nothing_left(run, pids)


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_evt_sigkilled_in_any_phase_then_evt_cleanup_removes_everything(tmp_path, phase):
    run = phase_run(tmp_path, phase, f"flt-k9-{phase}", tracer="bpftrace")
    pids = run.wait_for_tracer_pid() if phase != "start" else list(run.recorded_pids())
    run.proc.kill()
    run.finish()
    result = run_evt("cleanup", "--run-id", run.run_id, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("removed ")
    assert_nothing_left(run, pids)
    again = run_evt("cleanup", "--run-id", run.run_id, timeout=120)
    assert again.returncode == 0 and "removed 0 containers, 0 processes, 0 cgroups" in again.stdout


def test_a_zombie_evt_does_not_keep_its_run_in_progress(tmp_path):
    """evt SIGKILLed mid-run and not reaped (this test, its parent, does not wait for it):
    the zombie's pid still exists, but it runs nothing, so `evt cleanup` removes what the
    run left (its containers, its processes) instead of leaving an "active run" alone."""
    run = phase_run(tmp_path, "run", "flt-zombie", tracer="bpftrace")
    pids = run.wait_for_tracer_pid()
    assert run_containers(run.run_id)
    run.proc.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(run.proc.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped
        assert time.monotonic() < deadline, "evt did not exit after SIGKILL"
        time.sleep(0.02)
    try:
        assert run.run_id not in runstate.active_run_ids()
        result = run_evt("cleanup", "--run-id", run.run_id, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("removed 1 containers, "), result.stdout  # its one unit
        assert psutil.Process(run.proc.pid).status() == psutil.STATUS_ZOMBIE  # still not reaped
        assert_nothing_left(run, pids)
    finally:
        run.finish()


def test_a_full_run_directory_filesystem_ends_the_run_with_a_message(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        run = Run(
            mount,
            unique_run_id("flt-full"),
            ["tracer=bpftrace", "stress.stress_end_cooldown=0s", "-e", "ptrace:ops=3000:sleep=1ms"],
        )
        run.wait_for("Phase 5")
        with open(mount / "filler", "wb") as filler:  # take whatever space is left
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        pids = list(run.recorded_pids())
        code = run.finish()
        assert code == 1, run.output
        assert "Traceback" not in run.output
        assert "No space left on device" in run.output, run.output
        assert_nothing_left(run, pids)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_unit_over_its_memory_limit_is_ended_by_the_oom_killer_and_the_run_says_so(tmp_path):
    # 16 MiB is less than a unit's Python needs (~25 MiB): the kernel ends it as it starts
    run = Run(
        tmp_path,
        unique_run_id("flt-oom"),
        [
            "tracer=none",
            "stress.stress_end_cooldown=0s",
            "runner.memory=16m",
            "-e",
            "ptrace:ops=10",
            "-e",
            "security_file_open:ops=10",
        ],
    )
    code = run.finish()
    assert code == 1, run.output
    assert "killed by the kernel's OOM killer: the unit needed more than runner.memory=16m" in run.output
    assert "exit code 137" in run.output
    summary = run.summary()
    assert summary["status"] == "failed" and summary["ok"] == 0
    assert "Traceback" not in run.output
    assert_nothing_left(run)


def test_a_memory_limit_is_refused_where_it_cannot_apply(tmp_path):
    bad = run_evt("stress", "-e", "ptrace", "tracer=none", "runner.memory=lots", f"hydra.run.dir={tmp_path / 'a'}")
    assert bad.returncode == 2 and "runner.memory=lots is not a memory size" in bad.stderr
    local = run_evt(
        "stress", "-e", "ptrace", "tracer=none", "runner=local", "runner.memory=64m", f"hydra.run.dir={tmp_path / 'b'}"
    )
    assert local.returncode == 2 and "runner.memory limits containers: use it with runner=docker" in local.stderr


@pytest.fixture(scope="module")
def own_dockerd(tmp_path_factory):
    """A dockerd of this test's own (socket, data root, exec root, pidfile), with the
    trigger-runner image loaded: stopping it touches no one else's containers."""
    import docker

    base = Path(tempfile.mkdtemp(prefix="evt-dockerd-", dir="/tmp"))  # short: socket paths are limited
    socket = f"unix://{base}/docker.sock"
    # Its own default bridge: `--bridge=none` would make dockerd delete the host's docker0,
    # which the shared dockerd uses (moby removes the default bridge interface then).
    bridge = f"evtdk{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.254.254.1/24", "dev", bridge], check=True)
    argv = [
        "dockerd",
        "--host",
        socket,
        "--data-root",
        str(base / "data"),
        "--exec-root",
        str(base / "exec"),
        "--pidfile",
        str(base / "docker.pid"),
        "--iptables=false",
        "--ip6tables=false",
        "--bridge",
        bridge,
    ]
    log = open(base / "dockerd.log", "w")  # noqa: SIM115 - the daemon writes it across restarts; closed at the end

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                docker.DockerClient(base_url=socket, timeout=5).ping()
                return proc
            except Exception:
                assert proc.poll() is None, (base / "dockerd.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "own dockerd did not answer in 60 s"
                time.sleep(0.2)

    daemon = {"proc": start(), "socket": socket, "start": start, "docker0": Path("/sys/class/net/docker0").exists()}
    image = os.environ.get("EVT_TRIGGER_RUNNER_IMAGE", "evt-trigger-runner:latest")
    ours = docker.DockerClient(base_url=socket, timeout=600)
    ours.images.load(docker.from_env(timeout=600).images.get(image).save(named=True))
    yield daemon
    proc = daemon["proc"]
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    subprocess.run(["umount", "-R", "-l", str(base)], stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(base, ignore_errors=True)
    subprocess.run(["ip", "link", "delete", bridge], check=False)


def test_dockerd_stopped_mid_run_fails_the_run_and_cleanup_later_removes_the_rest(tmp_path, own_dockerd):
    import docker

    env = {"DOCKER_HOST": own_dockerd["socket"]}
    run = Run(tmp_path, unique_run_id("flt-dockerd"), ["tracer=none", "stress.stress_end_cooldown=0s", *LONG], env=env)
    run.wait_for("Phase 5")
    own_dockerd["proc"].terminate()  # our own daemon: a stop, as `systemctl stop docker` does
    own_dockerd["proc"].wait(timeout=60)
    code = run.finish()
    assert code == 1, run.output
    assert "Traceback" not in run.output and "could not remove the run's units" in run.output
    assert f"evt cleanup --run-id {run.run_id}" in run.output
    summary = run.summary()
    assert summary["status"] == "failed" and summary["exit_code"] == 1
    own_dockerd["proc"] = own_dockerd["start"]()
    assert Path("/sys/class/net/docker0").exists() == own_dockerd["docker0"]  # the shared dockerd's bridge is untouched
    result = run_evt("cleanup", "--run-id", run.run_id, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    ours = docker.DockerClient(base_url=own_dockerd["socket"])
    assert ours.containers.list(all=True, filters={"label": f"evt.run_id={run.run_id}"}) == []
    assert not (runstate.STATE_DIR / f"{run.run_id}.json").exists()

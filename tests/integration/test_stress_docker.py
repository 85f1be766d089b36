"""`evt stress` end to end with a real dockerd and real containers (runner=docker)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from helpers import EVT, run_containers, run_evt, runner_from, unique_run_id, unit_log_is_whole

pytestmark = pytest.mark.integration

QUICK = ["tracer=none", "stress.stress_end_cooldown=0s"]


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_end_to_end_workers_add_up_to_the_requested_ops(tmp_path):
    run_id = unique_run_id("e2e")
    result = run_evt(
        "stress",
        "-e",
        "security_file_open:instances=2:ops=500",
        "-e",
        "ptrace:ops=300:sleep=0",
        *QUICK,
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = read_csv(tmp_path / "workers.csv")
    assert [(w["event"], w["worker"]) for w in workers] == [
        ("security_file_open", "0"),
        ("security_file_open", "1"),
        ("ptrace", "0"),
    ]
    assert sum(int(w["ok"]) for w in workers) == 1300 and sum(int(w["errors"]) for w in workers) == 0
    assert all(float(w["ops_per_s"]) > 0 and int(w["t_end_ns"]) > int(w["t_start_ns"]) for w in workers)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["partial"] is False and summary["exit_code"] == 0
    assert summary["total_ops"] == 1300 and summary["ok"] == 1300
    # Released at once through the shared barrier, the units' first ops lie within ~1 ms of
    # each other on an idle host (README); 100 ms leaves room for a loaded shared host and
    # still fails a release that reaches units one after another (~100 ms per docker exec).
    assert 0 <= summary["start_skew_ms"] < 100
    assert (tmp_path / ".hydra" / "config.yaml").exists() and (tmp_path / "evt.log").exists()
    events = read_csv(tmp_path / "events.csv")
    assert {e["event"]: int(e["expected"]) for e in events} == {"security_file_open": 1000, "ptrace": 300}
    assert "security_file_open" in result.stdout and "start skew" in result.stdout
    assert run_containers(run_id) == []


def test_each_containers_whole_output_is_saved(tmp_path):
    result = run_evt(
        "stress",
        "-e",
        "security_file_open:ops=300:sleep=10ms",
        "stress.progress_interval=0.005s",
        *QUICK,
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unit_log_is_whole(tmp_path / "units" / "security_file_open.log", 300)


@pytest.fixture
def image_without_strace():
    """The runner image minus strace: a unit of ptrace's script mode refuses to start in it,
    a need the host cannot check before the run (capabilities and kernel it can)."""
    import docker

    client = docker.from_env()
    tag = f"evt-test-nostrace:{uuid.uuid4().hex[:12]}"  # unique: other checkouts run this test too
    container = client.containers.create(
        os.environ.get("EVT_TRIGGER_RUNNER_IMAGE", "evt-trigger-runner:latest"),
        entrypoint=["rm", "-f", "/usr/bin/strace"],
    )
    try:
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 0
        container.commit(*tag.split(":"))
    finally:
        container.remove(force=True)
    yield tag
    client.images.remove(tag, force=True)


def test_a_failing_unit_is_reported_and_the_others_finish(tmp_path, image_without_strace):
    run_id = "fail-" + uuid.uuid4().hex[:12]  # container names: unique across checkouts testing at once
    result = run_evt(
        "stress",
        "-e",
        "ptrace:ops=2:mode=script",
        "-e",
        "security_file_open:ops=200",
        *QUICK,
        "--image",
        image_without_strace,
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 1
    assert "unit ptrace exited before the start (exit code 2); last log lines:" in result.stderr
    assert "strace not installed" in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "ptrace" in summary["failure"]
    rows = {w["event"]: w for w in read_csv(tmp_path / "workers.csv")}
    assert rows["security_file_open"]["ok"] == "200"  # the other unit ran to the end
    assert "ptrace" not in rows
    assert run_containers(run_id) == []


def test_a_unit_lacking_a_needed_capability_is_refused_before_anything_starts(tmp_path):
    # runner.privileged=false without cap_add: Docker's default set, no CAP_SYS_ADMIN
    run_id = "nocap-" + uuid.uuid4().hex[:12]
    result = run_evt(
        "stress",
        "-e",
        "switch_task_ns:ops=5",
        "-e",
        "security_file_open:ops=200",
        *QUICK,
        "runner.privileged=false",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(
        "Error: event 'switch_task_ns' cannot run in its container (native mode): "
        "needs CAP_SYS_ADMIN: grant it with runner.cap_add"
    )
    assert not (tmp_path / "summary.json").exists() and run_containers(run_id) == []
    granted = run_evt(
        "stress",
        "-e",
        "switch_task_ns:ops=5",
        *QUICK,
        "runner.privileged=false",
        "runner.cap_add=[SYS_ADMIN]",
        f"run_id={run_id}-2",
        f"hydra.run.dir={tmp_path}/granted",
    )
    assert granted.returncode == 0, granted.stdout + granted.stderr


def test_dry_run_prints_the_plan_and_creates_nothing(tmp_path):
    run_id = unique_run_id("dry")
    result = run_evt("stress", "scenario=smoke", "--dry-run", *QUICK, f"run_id={run_id}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert f"evt-stress-security-file-open-{run_id}" in result.stdout
    assert "evt trigger --event security_file_open --ops 5000" in result.stdout
    assert "total ops: 14200" in result.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["total_ops"] == 14200 and len(plan["units"]) == 4
    assert not (tmp_path / "summary.json").exists()
    assert run_containers(run_id) == []


def test_dry_run_takes_socket_dup_for_socked_dup(tmp_path):
    result = run_evt("stress", "-e", "socket_dup:ops=5", "--dry-run", *QUICK, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert [u["name"] for u in json.loads((tmp_path / "plan.json").read_text())["units"]] == ["socked_dup"]
    assert "evt trigger --event socked_dup --ops 5" in result.stdout


def test_missing_image_gets_the_original_message_and_fix(tmp_path):
    out = tmp_path / "out"
    result = run_evt("stress", "-e", "ptrace", *QUICK, "--image", "evt-no-such-image:latest", f"hydra.run.dir={out}")
    assert result.returncode == 2
    assert 'container image "evt-no-such-image:latest" not found' in result.stderr
    assert "make evt-trigger-runner" in result.stderr
    assert not out.exists()  # refused before Hydra made a run directory


def start_stress(tmp_path: Path, run_id: str, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [EVT, "stress", *extra, "tracer=none", f"run_id={run_id}", f"hydra.run.dir={tmp_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONFAULTHANDLER="1"),  # SIGABRT prints every thread's stack (see finish)
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    """Its output once it exits; a run that does not exit in time fails the test with the
    stacks of its threads (faulthandler, on SIGABRT) after what it printed."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            output = proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
        pytest.fail(f"evt did not exit within {timeout} s; its output and stacks:\n{output}")


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not printed; got:\n{''.join(seen)}")


LONG_RUN = ["-e", "security_file_open:instances=2:ops=100000:sleep=1ms", "-e", "ptrace:ops=100000:sleep=1ms"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
# the start phase (and a second signal in every phase) is in test_faults.py
@pytest.mark.parametrize(
    "phase, needle, extra",
    [
        ("run", "=== Phase 5: Monitoring ===", ["stress.stress_end_cooldown=0s"]),
        ("cooldown", "=== Stress End Cooldown ===", ["stress.stress_end_cooldown=60s"]),
    ],
)
def test_interrupt_at_any_phase_leaves_no_container(tmp_path, signum, phase, needle, extra):
    run_id = unique_run_id(f"sig-{phase}-{signum.name.lower()}")
    events = LONG_RUN if phase != "cooldown" else ["-e", "ptrace:ops=100"]
    proc = start_stress(tmp_path, run_id, [*events, *extra])
    try:
        wait_for_line(proc, needle)
        if phase == "run":
            time.sleep(0.5)
        proc.send_signal(signum)
        output = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if signum == signal.SIGINT else 143), output
    if phase == "run":
        assert "Monitoring interrupted (containers will be cleaned up)" in output
    assert run_containers(run_id) == []
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["partial"] is True


def test_cleanup_removes_what_a_killed_run_left(tmp_path):
    run_id = unique_run_id("killed")
    proc = start_stress(tmp_path, run_id, [*LONG_RUN, "stress.stress_end_cooldown=0s"])
    try:
        wait_for_line(proc, "=== Phase 5: Monitoring ===")
        proc.kill()  # no chance to clean up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_containers(run_id), "the killed run should have left its containers"
    result = run_evt("cleanup", "--run-id", run_id)
    assert result.returncode == 0, result.stderr
    assert "removed 2 containers" in result.stdout
    assert run_containers(run_id) == []


def test_privileges_auto_follow_what_the_daemon_can_grant(tmp_path):
    from evt import host
    from evt.runners.docker import daemon_capabilities, docker_client
    from helpers import compose_cfg, runner_from

    runner = runner_from(compose_cfg("runner=docker"), unique_run_id("priv"), tmp_path)
    runner.client = docker_client()
    runner.resolve_privileges()
    held = daemon_capabilities()
    assert held is not None, "the test host's dockerd writes /var/run/docker.pid"
    if host.all_capabilities() <= held:
        assert runner.privileged and runner.notice is None
    else:
        missing = sorted(host.all_capabilities() - held)
        assert not runner.privileged
        assert f"it lacks {', '.join(missing)}" in runner.notice
        assert "SYS_ADMIN" in runner.cap_add and "SYS_PTRACE" in runner.cap_add
        assert not {c.removeprefix("CAP_") for c in missing} & set(runner.cap_add)
    # the probe's refused creates (a capability this Docker does not know) were answered:
    # cleanup has no cut-short create to wait for (it waited 5 s after every run when it did)
    assert runner._cut_short is False


def test_the_capability_probe_is_remembered_for_this_daemon_and_image(tmp_path, monkeypatch):
    from evt import host
    from evt.runners.docker import DockerRunner, daemon_capabilities, docker_client
    from helpers import compose_cfg

    if host.all_capabilities() <= (daemon_capabilities() or set()):
        pytest.skip("this daemon runs privileged containers: nothing to probe")
    monkeypatch.setenv("EVT_CACHE_DIR", str(tmp_path / "cache"))

    def resolved() -> tuple[list[str], str | None]:
        runner = runner_from(compose_cfg("runner=docker"), unique_run_id("capcache"), tmp_path)
        runner.client = docker_client()
        runner.resolve_privileges()
        return runner.cap_add, runner.notice

    first = resolved()
    assert (tmp_path / "cache" / "docker-capabilities.json").is_file()
    monkeypatch.setattr(DockerRunner, "_probe_with_containers", lambda self: pytest.fail("probed again"))
    assert resolved() == first  # the same capabilities and the same notice, without a probe container


def test_explicit_privileged_that_the_daemon_refuses_names_the_fix(tmp_path):
    from evt import host
    from evt.runners.docker import daemon_capabilities

    if host.all_capabilities() <= (daemon_capabilities() or set()):
        pytest.skip("this daemon can run privileged containers")
    run_id = unique_run_id("privtrue")
    result = run_evt(
        "stress",
        "-e",
        "ptrace:ops=10",
        *QUICK,
        "runner.privileged=true",
        f"run_id={run_id}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 1
    assert "privileged containers fail on this Docker daemon (unable to apply caps" in result.stderr
    assert "runner.privileged=auto" in result.stderr
    assert run_containers(run_id) == []


def test_stress_timeout_stops_a_run_that_goes_on_too_long(tmp_path):
    run_id = unique_run_id("timeout")
    started = time.monotonic()
    result = run_evt("stress", *LONG_RUN, *QUICK, "stress.timeout=3s", f"run_id={run_id}", f"hydra.run.dir={tmp_path}")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["partial"] is True
    assert summary["failure"] == "run timed out after 3s (stress.timeout)"
    assert elapsed < 60  # not the 300 s the units would have taken
    assert run_containers(run_id) == []


def test_wait_before_trigger_holds_units_at_the_barrier_until_enter(tmp_path):
    """Also what the units' containers are: no network, the unit's argv as PID 1 with no
    shell in between, the run's barrier directory mounted read-only."""
    import docker

    run_id = unique_run_id("wbt")
    proc = subprocess.Popen(
        [
            EVT,
            "stress",
            "-e",
            "ptrace:ops=200",
            *QUICK,
            "--wait-before-trigger",
            f"run_id={run_id}",
            f"hydra.run.dir={tmp_path}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_line(proc, "Press ENTER to start triggering events")
        (container,) = run_containers(run_id)
        attrs = docker.from_env().api.inspect_container(container.id)
        assert attrs["HostConfig"]["NetworkMode"] == "none"
        plan_argv = ["evt", "trigger", "--event", "ptrace", "--ops", "200"]
        assert attrs["Config"]["Entrypoint"] == ["evt"] and attrs["Config"]["Cmd"][:5] == plan_argv[1:]
        pid1 = psutil.Process(attrs["State"]["Pid"])
        nspid = [line for line in Path(f"/proc/{pid1.pid}/status").read_text().splitlines() if line.startswith("NSpid")]
        assert nspid[0].split()[-1] == "1"  # PID 1 in the container
        cmdline = pid1.cmdline()
        assert cmdline[-len(attrs["Config"]["Cmd"]) :] == attrs["Config"]["Cmd"] and "-c" not in cmdline[:2]
        assert os.path.basename(cmdline[0]) not in ("sh", "bash", "dash")
        (mount,) = [m for m in attrs["Mounts"] if m["Destination"] == "/evt-barrier"]
        assert mount["Source"] == str(tmp_path / ".barrier") and mount["RW"] is False
        time.sleep(1.0)  # held: still only waiting, no op made
        logs = container.logs().decode()
        assert "Waiting at start barrier" in logs and "Starting triggering" not in logs
        proc.stdin.write("\n")
        proc.stdin.flush()
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["ok"] == 200
    assert run_containers(run_id) == []


@pytest.mark.parametrize("tmpfs, fs_type", [(None, "tmpfs"), ("[]", "overlayfs")])
def test_units_keep_their_marker_files_on_a_tmpfs(tmp_path, tmpfs, fs_type):
    """An open on the container's overlay filesystem costs about twice as much CPU as on a
    tmpfs (benchmarks/bench_container.py): unit containers get /tmp as a tmpfs, one that
    runs scripts (Docker's default tmpfs is noexec); runner.tmpfs=[] keeps the overlay."""
    from evt.stress.session import StressSession
    from helpers import compose_cfg

    run_id = unique_run_id("tmpfs")
    overrides = ["runner=docker", "tracer=none", "events=[security_file_open]", f"run_id={run_id}"]
    session = StressSession.prepare(compose_cfg(*overrides, *([f"runner.tmpfs={tmpfs}"] if tmpfs else [])), tmp_path)
    runner = session.runner
    try:
        runner.start(session.units)
        runner.wait_until_waiting(60)
        container = runner.client.containers.get(session.units[0].container_id)
        code, out = container.exec_run(["sh", "-c", "stat -f -c %T /tmp && cp /bin/true /tmp/t && /tmp/t && echo ran"])
        assert code == 0 and out.decode().split() == [fs_type, "ran"], out
    finally:
        runner.cleanup()
    assert run_containers(run_id) == []


def test_tmpfs_paths_must_be_absolute(tmp_path):
    result = run_evt("stress", "-e", "ptrace:ops=1", *QUICK, "runner.tmpfs=[tmp]", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert "runner.tmpfs entry 'tmp' is not an absolute directory path" in result.stderr
    assert not (tmp_path / "run").exists()

"""`evt stress` driving Tracee end to end — against tests/support/tracee_standin.py, a stand-in
that imitates Tracee's flags and HTTP endpoints (it is not Tracee)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from helpers import EVT, STANDIN, fixture, free_port, reap, run_evt

pytestmark = pytest.mark.integration


def standin_args(tmp_path, port):
    return [
        "tracer=tracee",
        f"tracee.binary={STANDIN}",
        f"tracee.http_address=127.0.0.1:{port}",
        f"tracee.pidfile={tmp_path / 'tracee.pid'}",
        "tracee.init_cooldown=0s",
        "tracee.drain=0s",
        "runner=local",
        "stress.stress_end_cooldown=0s",
        "-e",
        "ptrace:ops=50",
    ]


def test_auto_managed_tracee_is_started_scoped_scraped_and_stopped(tmp_path):
    port = free_port()
    result = run_evt("stress", *standin_args(tmp_path, port), f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "run"
    command = json.loads((run / "tracer" / "command.json").read_text())
    argv = command["argv"] if isinstance(command, dict) else command
    plan = json.loads((run / "plan.json").read_text())
    assert f"tree={plan['units'][0]['pid']}" in argv and "ptrace" in argv
    assert (run / "tracer" / "metrics-start.prom").exists() and (run / "tracer" / "metrics-end.prom").exists()
    summary = json.loads((run / "summary.json").read_text())
    cost = summary["tracer_cost"]
    assert cost["cpu_s"] is not None and cost["peak_rss_bytes"] > 0
    assert "tracee_events_total" in cost["metrics"]
    assert summary["detection"] is None  # output none: Tracee's counters only, no per-event counts
    log = (run / "evt.log").read_text()  # the tracer's lifecycle is in the run's one log
    for line in ("Starting Tracee: ", "Tracee is ready (PID: ", "Tracer tracee ready", "Stopping Tracee (PID: "):
        assert line in log and line in result.stdout, line


def test_manual_tracee_prints_the_scope_and_measures_the_users_tracee(tmp_path):
    port = free_port()
    users_tracee = subprocess.Popen(
        [
            sys.executable,
            STANDIN,
            "--server",
            "metrics",
            "--server",
            "healthz",
            "--server",
            f"http-address=127.0.0.1:{port}",
            "--output",
            "none",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = subprocess.run(
            [EVT, "stress", *standin_args(tmp_path, port), "--auto-tracee=false", f"hydra.run.dir={tmp_path / 'run'}"],
            input="\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Process tree scope filter: --scope tree=" in proc.stdout
        assert "Please start Tracee in another terminal with:" in proc.stdout
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert "tracee_events_total" in summary["tracer_cost"]["metrics"]
        assert users_tracee.poll() is None  # evt never stops a Tracee it did not start
    finally:
        reap(users_tracee.pid)


def test_tracee_dying_mid_run_marks_the_run_and_results_are_still_written(tmp_path):
    port = free_port()
    args = [*standin_args(tmp_path, port)[:-2], "-e", "ptrace:ops=3000:sleep=1ms"]
    result = run_evt("stress", *args, f"hydra.run.dir={tmp_path / 'run'}", env={"EVT_STANDIN_MODE": "crash_after=0.5"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tracer tracee died mid-run" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "tracer_crashed" and summary["tracer_cost"]["crashed"]
    assert summary["ok"] == 3000  # the units ran to the end and their figures were kept


def test_wait_before_trigger_shows_the_tracers_endpoints(tmp_path):
    port = free_port()
    proc = subprocess.run(
        [EVT, "stress", *standin_args(tmp_path, port), "--wait-before-trigger", f"hydra.run.dir={tmp_path / 'run'}"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert f"Metrics endpoint: http://localhost:{port}/metrics" in lines
    assert lines.index(f"Metrics endpoint: http://localhost:{port}/metrics") < lines.index(
        "Press ENTER to start triggering events..."
    )
    assert "=== Phase 3: Configuring & Starting Tracee ===" in lines and "Tracee is ready (PID: " in proc.stdout
    assert lines.index("=== Waiting Before Triggering ===") < lines.index(
        f"Metrics endpoint: http://localhost:{port}/metrics"
    )


def test_docker_run_against_a_current_tracee_standin(tmp_path):
    """The default path (runner=docker, tracer=tracee) against a stand-in behaving as
    Tracee's main does: refused, then 503, then 200 on /healthz; the fixture scrapes as
    /metrics; HTTP closed at SIGTERM. Nothing here is a Tracee result."""
    port = free_port()
    run = tmp_path / "run"
    env = {
        "EVT_STANDIN_MODE": "slow_ready=0.5",
        "EVT_STANDIN_HEARTBEAT": "0.5",
        "EVT_STANDIN_METRICS_FILES": f"{fixture('metrics-current.prom')},{fixture('metrics-current-end.prom')}",
    }
    result = run_evt(
        "stress",
        "-e",
        "security_file_open:ops=400:sleep=5ms",
        "-e",
        "ptrace:ops=20:sleep=50ms",
        "-e",
        "socked_dup:ops=5",
        "runner=docker",
        "tracer=tracee",
        f"tracee.binary={STANDIN}",
        f"tracee.http_address=127.0.0.1:{port}",
        "tracee.init_cooldown=0s",
        "tracee.drain=0s",
        "tracee.buffers.kernel_events=2048",
        "tracee.pprof_slice=1s",
        "tracee.pprof_heap_every=1",
        "tracee.metrics_interval=1s",
        "stress.stress_end_cooldown=1500ms",
        f"hydra.run.dir={run}",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    command = json.loads((run / "tracer" / "command.json").read_text())
    argv = command["argv"]
    assert (
        command["flavour"] == "main"
        and command["tracee_version"] == "Tracee version: v0.24.1-215-g7c9ec9788 stand-in (NOT TRACEE)"
    )
    assert "--server healthz" in command["shell"] and "--buffers kernel.events=2048" in command["shell"]
    # the original's socked_dup reaches Tracee as socket_dup (the stand-in, as Tracee, refuses socked_dup)
    assert argv[argv.index("--events") + 1] == "security_file_open,ptrace,socket_dup"
    pid = json.loads((run / "tracer" / "lifecycle.json").read_text())["pid"]
    assert f"Tracee is ready (PID: {pid})" in result.stdout.splitlines()
    # the original's lines, word for word and in order (evt's own lines may come between)
    image = os.environ.get("EVT_TRIGGER_RUNNER_IMAGE", "evt-trigger-runner:latest")
    originals = [
        "Starting stress test orchestration",
        "Triggers configured: 3",
        "  [1] security_file_open: instances=1, ops=400, sleep=5ms",
        "  [2] ptrace: instances=1, ops=20, sleep=50ms",
        f"Container image: {image}",
        "",
        "=== Phase 1: Starting Containers ===",
        "Starting container for trigger: security_file_open",
        "  Started container: ",
        "  Container is running and waiting for signal",
        "=== Phase 2: Collecting Container IDs ===",
        "Collected 3 container IDs:",
        "=== Phase 3: Configuring & Starting Tracee ===",
        f"Starting Tracee: {STANDIN} [--scope container=",
        "Tracee logs: ",
        f"Tracee started with PID: {pid}",
        "Waiting for Tracee to initialize...",
        "Tracee initialization complete",
        f"Tracee is ready (PID: {pid})",
        "=== Phase 4: Signaling Containers ===",
        "About to execute ~425 trigger operations total.",
        "Note: Actual event count depends on what each trigger does (may be higher).",
        "  Signaled container: ",
        "All containers signaled successfully",
        "=== Phase 5: Monitoring ===",
        "Waiting for 3 containers to complete...",
        "(Press Ctrl+C to stop monitoring and clean up)",
        "[1/3] Container ",
        "[2/3] Container ",
        "All containers completed",
        "=== Stress End Cooldown ===",
        "Waiting 1.5s for system stabilization...",
        f"Stopping Tracee (PID: {pid})...",
        "Sending SIGTERM for graceful shutdown...",
        "Waiting up to 10s for graceful shutdown...",
        "Tracee stopped gracefully",
        "=== Cleanup: Removing Containers ===",
        "Removing container: ",
    ]
    out = result.stdout.splitlines()
    at = 0
    for wanted in originals:
        at = next((i for i in range(at, len(out)) if out[i].startswith(wanted) and (wanted or not out[i])), None)
        assert at is not None, f"{wanted!r} missing or out of order in:\n{result.stdout}"
        at += 1
    assert re.search(r"^\[1/3\] Container [0-9a-f]{12} completed with exit code: 0$", result.stdout, re.M)
    log = (run / "tracer" / "tracee.log").read_text().splitlines()
    served = [i for i, line in enumerate(log) if "served /metrics" in line]
    term = [i for i, line in enumerate(log) if "SIGTERM received" in line]
    assert served and term and served[-1] < term[0]  # the final scrape came before SIGTERM
    with open(run / "events.csv") as fh:
        events = {row["event"]: row for row in csv.DictReader(fh)}
    # the fixture's per-event deltas (end - mid-run); ptrace is a syscall event: no series
    assert events["security_file_open"]["submit_attempts"] == "1357636"
    assert events["security_file_open"]["submit_failures"] == "48193"
    assert events["ptrace"]["submit_attempts"] == "" and events["ptrace"]["submit_failures"] == ""
    assert events["socked_dup"]["submit_failures"] == ""  # the fixture has no socket_dup series
    with open(run / "tracer.csv") as fh:
        tracer = next(csv.DictReader(fh))
    assert tracer["metric.tracee_lostevents_total"] == "49570"
    assert tracer["metric.tracee_events_total"] == "1380928"
    assert tracer["metric.tracee_pipeline_channels_decode_max"] == "211"
    assert tracer['metric.tracee_detectors_events_processed_total{detector_id="TRC-102"}'] == "12"
    with open(run / "tracer" / "resource_timeseries.csv") as fh:
        series = list(csv.DictReader(fh))
    assert series and series[0]["cpu_pct"] == "0.0" and int(series[0]["rss_kb"]) > 0
    summary = json.loads((run / "summary.json").read_text())
    cost = summary["tracer_cost"]
    assert cost["peak_rss_kb"] == max(int(r["rss_kb"]) for r in series)
    assert cost["resource_samples_count"] == len(series) and tracer["peak_rss_kb"] == str(cost["peak_rss_kb"])
    assert (run / "tracer" / "metrics_timeseries.txt").read_text().startswith("--- ")
    pprof = run / "tracer" / "pprof"
    assert (pprof / "cpu-slice-0001.pprof").is_file() and (pprof / "heap-final.pprof").is_file()
    assert cost["pprof_slices_collected"] >= 1 and cost["cpu_profile_status"] == "ok"

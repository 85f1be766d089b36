"""`evt stress` driving Tracee end to end — against tests/tracee_standin.py, a stand-in
that imitates Tracee's flags and HTTP endpoints (it is not Tracee)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import EVT, STANDIN, free_port, reap, run_evt

pytestmark = pytest.mark.integration


def standin_args(tmp_path, port):
    return ["tracer=tracee", f"tracee.binary={STANDIN}", f"tracee.http_address=127.0.0.1:{port}",
            f"tracee.pidfile={tmp_path / 'tracee.pid'}", "tracee.init_cooldown=0s", "tracee.drain=0s",
            "runner=local", "stress.stress_end_cooldown=0s", "-e", "ptrace:ops=50"]


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
    users_tracee = subprocess.Popen([sys.executable, STANDIN, "--server", "metrics", "--server", "healthz",
                                     "--server", f"http-address=127.0.0.1:{port}", "--output", "none"],
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc = subprocess.run([EVT, "stress", *standin_args(tmp_path, port), "--auto-tracee=false",
                               f"hydra.run.dir={tmp_path / 'run'}"], input="\n", capture_output=True, text=True,
                              timeout=120)
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
    args = standin_args(tmp_path, port)[:-2] + ["-e", "ptrace:ops=3000:sleep=1ms"]
    result = run_evt("stress", *args, f"hydra.run.dir={tmp_path / 'run'}",
                     env={"EVT_STANDIN_MODE": "crash_after=0.5"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tracer tracee died mid-run" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "tracer_crashed" and summary["tracer_cost"]["crashed"]
    assert summary["ok"] == 3000  # the units ran to the end and their figures were kept


def test_wait_before_trigger_shows_the_tracers_endpoints(tmp_path):
    port = free_port()
    proc = subprocess.run([EVT, "stress", *standin_args(tmp_path, port), "--wait-before-trigger",
                           f"hydra.run.dir={tmp_path / 'run'}"], input="\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert f"Metrics endpoint: http://localhost:{port}/metrics" in lines
    assert lines.index(f"Metrics endpoint: http://localhost:{port}/metrics") < lines.index(
        "Press ENTER to start triggering events...")
    assert "Phase 3: starting tracer tracee" in lines and "Tracee is ready (PID: " in proc.stdout

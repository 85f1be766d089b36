"""StressSession: composed and validated once, phases in order, one log (terminal and evt.log)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from evt.stress.session import Phase, StressSession
from helpers import STANDIN, compose_cfg, free_port, needs_bpftrace, run_evt

pytestmark = pytest.mark.integration

# Runs `evt stress` in this interpreter with every prerequisite check counted.
COUNT_CHECKS = """
import sys
from evt.cli import hydra_app
from evt.runners.local import LocalRunner
from evt.tracers.none import NoneTracer
checks = []
for cls in (LocalRunner, NoneTracer):
    def counted(self, units, original=cls.check, name=cls.__name__):
        checks.append(name)
        return original(self, units)
    cls.check = counted
code = hydra_app.run([], sys.argv[1:])
print("CHECKS", " ".join(checks))
sys.exit(code)
"""


def test_a_run_is_composed_and_validated_once(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            COUNT_CHECKS,
            "runner=local",
            "tracer=none",
            "stress.stress_end_cooldown=0s",
            "events=['ptrace:ops=20']",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CHECKS NoneTracer LocalRunner\n" in proc.stdout  # once each, before Hydra's job ran the plan
    assert json.loads((tmp_path / "summary.json").read_text())["ok"] == 20


def test_prepare_starts_nothing_and_the_dry_run_prints_the_same_plan(tmp_path, caplog):
    cfg = compose_cfg(
        "runner=local", "tracer=none", "stress.dry_run=true", "events=['ptrace:ops=3']", "run_id=same-plan"
    )
    session = StressSession.prepare(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing made yet
    plan = session.plan
    with caplog.at_level("INFO", logger="evt"):
        assert session.run() == 0
    assert session.plan is plan
    assert json.loads((tmp_path / "run" / "plan.json").read_text()) == json.loads(
        json.dumps(plan.as_dict(), default=str)
    )
    assert (
        f"  unit ptrace (local process group, 1 x 3 ops, sleep 10ns, native): {' '.join(plan.units[0].argv)}"
        in caplog.messages
    )


def test_phases_are_named_in_run_order():
    assert [p.value for p in Phase] == [
        "prerequisites",
        "start",
        "tracer",
        "release",
        "monitoring",
        "cooldown",
        "collect",
        "cleanup",
        "write",
    ]


@needs_bpftrace
def test_evt_log_holds_the_phases_and_the_tracers_lifecycle(tmp_path):
    result = run_evt(
        "stress",
        "runner=local",
        "tracer=bpftrace",
        "stress.stress_end_cooldown=0s",
        "-e",
        "ptrace:ops=50",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    logged = [
        re.sub(r"^\[[^]]*\]\[([^]]*)\]\[(\w+)\] - ", r"\1 \2 ", line)
        for line in (tmp_path / "evt.log").read_text().splitlines()
    ]
    wanted = [
        "evt.stress.session INFO Starting stress test orchestration",
        "evt.stress.session INFO Prerequisites ok",
        "evt.stress.session INFO === Phase 1: Starting Process Groups ===",
        "evt.stress.session INFO Starting 1 units (local)",
        "evt.stress.session INFO === Phase 2: Collecting Process Group IDs ===",
        "evt.stress.session INFO === Phase 3: Starting tracer bpftrace ===",
        "evt.tracers.process INFO Starting bpftrace: ",
        "evt.tracers.process INFO bpftrace is ready (PID: ",
        "evt.stress.session INFO Tracer bpftrace ready",
        "evt.stress.session INFO === Phase 4: Signaling Process Groups ===",
        "evt.stress.session INFO === Phase 5: Monitoring ===",
        "evt.stress.session INFO [1/1] Process group ",
        "evt.tracers.process INFO Stopping bpftrace (PID: ",
        "evt.tracers.process INFO bpftrace stopped",
        "evt.results.writers INFO detection: observed 50 of 50 expected",
        "evt.results.writers INFO results: ",
    ]
    found = [next(i for i, line in enumerate(logged) if line.startswith(w)) for w in wanted]
    assert found == sorted(found), logged
    # the terminal shows the same messages as plain text, without the log's decoration
    terminal = result.stdout.splitlines()
    for message in (
        "=== Phase 3: Starting tracer bpftrace ===",
        "Tracer bpftrace ready",
        "=== Phase 5: Monitoring ===",
    ):
        assert message in terminal, result.stdout
    assert any(line.startswith("Stopping bpftrace (PID: ") for line in terminal), result.stdout


def test_dry_run_prints_the_originals_headers_with_evts_plan_under_them(tmp_path):
    result = run_evt(
        "stress",
        "scenario=smoke",
        "--dry-run",
        "tracer=tracee",
        f"tracee.binary={STANDIN}",
        f"tracee.http_address=127.0.0.1:{free_port()}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    originals = [
        "Starting stress test orchestration",
        "Triggers configured: 4",
        "Dry run mode - showing what would be executed:",
        "=== Phase 1: Start Containers ===",
        "=== Phase 2: Collect Container IDs ===",
        "=== Phase 3: Configure & Start Tracee ===",
        "=== Phase 4: Signal Containers ===",
        "  Would execute ~14200 trigger operations total",
        "=== Phase 5: Monitor & Cleanup ===",
    ]
    assert [line for line in out if line in originals] == originals
    units = out.index("=== Phase 1: Start Containers ===")
    assert out[units + 1].startswith("  unit security_file_open (container ")  # evt's plan under the header
    assert out[out.index("=== Phase 3: Configure & Start Tracee ===") + 1].startswith(f"  tracer: {STANDIN} --scope")
    assert not (tmp_path / "tracer").exists()


def test_after_the_first_signal_the_next_ones_only_say_so(capfd):
    """The first SIGINT/SIGTERM raises Interrupted; one arriving while that unwinds (evt is
    logging `Interrupted by ...`) or during the cleanup must not raise again, or it cuts the
    cleanup short (a unit container was left behind that way)."""
    import os
    import signal
    import time

    from evt.stress import signals

    previous = {s: signal.signal(s, signals.raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(signals.Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)  # the handlers run here: neither raises
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err = capfd.readouterr().err
    assert "SIGINT again: still cleaning up" in err and "SIGTERM again: still cleaning up" in err

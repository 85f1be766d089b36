"""tracer=auditd with the real audit system (Debian's auditd, installed by `make setup`):
it counts each unit's audited syscalls, reports the kernel's own loss when the daemon
cannot keep up, puts the kernel's audit state back after every run (also through
`evt cleanup` after a kill -9 of evt), and refuses to run beside another audit daemon.

Each test checks that the host's audit settings, rules and daemons are as they were."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from evt.config.templating import render
from evt.tracers.auditd.control import Auditctl, parse_status, restore, saved_settings
from helpers import EVT, assert_one_paragraph, run_evt, unique_run_id

pytestmark = [pytest.mark.integration, pytest.mark.alone]  # the host's one audit state

AUDITCTL = Auditctl()


def audit_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the kernel's audit)"
    if not (shutil.which("auditd") and shutil.which("auditctl")):
        return "auditd not installed (make setup)"
    done = subprocess.run(["auditctl", "-s"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"no audit in this kernel: {done.stderr.strip()}"
    if parse_status(done.stdout).get("pid"):
        return "another audit daemon is registered on this host"
    return None


needs_audit = pytest.mark.skipif(audit_skip_reason() is not None, reason=audit_skip_reason() or "")


def evt_rules() -> list[str]:
    return [rule for rule in AUDITCTL.rules() if "key=evt-" in rule]


@pytest.fixture
def audit_as_before():
    """The host's audit settings before the test; afterwards they, the rules and the daemon
    registration must be the same (then put back whatever the test left, so one failure
    does not spread)."""
    before = saved_settings(AUDITCTL.status())
    yield before
    after = AUDITCTL.status()
    left_rules = evt_rules()
    restore(AUDITCTL, before, sorted({r.split("key=")[1].split()[0] for r in left_rules}))
    assert saved_settings(after) == before
    assert after["pid"] == 0 and left_rules == []


def stress(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = tmp_path / "run"
    done = run_evt(
        "stress",
        "tracer=auditd",
        "runner=local",
        "stress.stress_end_cooldown=0s",
        f"hydra.run.dir={run_dir}",
        *args,
        timeout=timeout,
    )
    return done, run_dir


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@needs_audit
def test_every_audited_unit_is_counted_exactly_and_others_get_no_count(tmp_path, audit_as_before):
    done, run_dir = stress(
        tmp_path,
        "-e",
        "security_file_open:instances=2:ops=1500:rate=1000",
        "-e",
        "sched_process_exec:ops=300:rate=300",
        "-e",
        "security_socket_connect:ops=1000:rate=1000",
        "-e",
        "sched_process_fork:ops=100",
        "auditd.backlog_limit=8192",
        "auditd.backlog_wait_time=60000",  # room, and waiting rather than dropping
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = {row["event"]: row for row in rows(run_dir / "events.csv")}
    for event, expected in (
        ("security_file_open", 3000),
        ("sched_process_exec", 300),
        ("security_socket_connect", 1000),
    ):
        assert (float(events[event]["expected"]), float(events[event]["observed"])) == (expected, expected), event
    assert events["sched_process_fork"]["observed"] == ""  # audit rules for it: none
    (tracer,) = rows(run_dir / "tracer.csv")
    assert tracer["tracer"] == "auditd" and int(tracer["metric.audit_keyed_records"]) >= 4300
    assert tracer["metric.audit_backlog_limit"] == "8192" and tracer["metric.audit_backlog_wait_time"] == "60000"
    assert int(tracer["lost.audit_kernel"]) >= 0 and int(tracer["metric.records_written"]) > 4300 * 2
    assert float(tracer["cpu_s"]) > 0 and int(tracer["peak_rss_bytes"]) > 0
    conf = (run_dir / "tracer" / "auditd" / "auditd.conf").read_text()
    assert f"log_file = {run_dir / 'tracer' / 'auditd' / 'audit.log'}" in conf


def _status_readers(evt: int) -> set[int]:
    """The `auditctl -s` processes evt runs now (its status watch)."""
    try:
        return {p.pid for p in psutil.Process(evt).children(recursive=True) if p.name() == "auditctl"}
    except psutil.Error:
        return set()


def _stop_auditd_until_the_kernel_drops(proc: subprocess.Popen, deadline_s: float = 120) -> int:
    """Once evt's rules are loaded, SIGSTOP its auditd until the kernel's `lost` counter
    has grown (its backlog full, backlog_wait_time 0) and one of evt's own status reads
    started after that has ended (so evt saw the full backlog); returns how far `lost` grew."""
    deadline = time.monotonic() + deadline_s
    while not evt_rules():
        assert proc.poll() is None and time.monotonic() < deadline, "evt never loaded its rules"
        time.sleep(0.02)
    status = AUDITCTL.status()
    daemon, lost = status["pid"], status["lost"]
    os.kill(daemon, signal.SIGSTOP)
    try:
        while AUDITCTL.status()["lost"] == lost:
            assert proc.poll() is None and time.monotonic() < deadline, "the kernel dropped nothing"
            time.sleep(0.01)
        dropped = AUDITCTL.status()["lost"] - lost
        before, seen = _status_readers(proc.pid), set()
        while not seen or seen & _status_readers(proc.pid) == seen:
            assert proc.poll() is None and time.monotonic() < deadline, "evt read no status while the backlog was full"
            seen |= _status_readers(proc.pid) - before
            time.sleep(0.005)
        return dropped
    finally:
        os.kill(daemon, signal.SIGCONT)


@needs_audit
def test_a_stalled_auditd_loses_events_evt_and_the_kernel_both_report_it(tmp_path, audit_as_before):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            EVT,
            "stress",
            "tracer=auditd",
            "runner=local",
            "-e",
            "security_file_open:ops=20000:rate=2000",
            "auditd.backlog_limit=64",
            "auditd.backlog_wait_time=0",
            "stress.stress_end_cooldown=0s",
            f"hydra.run.dir={run_dir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        dropped = _stop_auditd_until_the_kernel_drops(proc)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out  # loss is a result, not an error
    (event,) = rows(run_dir / "events.csv")
    (tracer,) = rows(run_dir / "tracer.csv")
    assert float(event["lost"]) > 0 and float(event["observed"]) + float(event["lost"]) == 20000
    assert int(tracer["lost.audit_kernel"]) >= dropped > 0
    assert int(tracer["metric.audit_backlog_max"]) >= 64


@needs_audit
def test_kill_9_of_evt_then_evt_cleanup_puts_the_audit_state_back(tmp_path, audit_as_before):
    run_id = unique_run_id("auditd-kill")
    proc = subprocess.Popen(
        [
            EVT,
            "stress",
            "tracer=auditd",
            "runner=local",
            f"run_id={run_id}",
            "-e",
            "security_socket_create:ops=100000:rate=500",
            "auditd.backlog_limit=4096",
            "auditd.backlog_wait_time=0",
            "auditd.rate_limit=100000",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not evt_rules():
        assert proc.poll() is None and time.monotonic() < deadline, "evt never loaded its rules"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    status = AUDITCTL.status()  # what a killed evt leaves: its settings and rules
    assert (status["backlog_limit"], status["rate_limit"]) == (4096, 100000) and evt_rules()
    done = run_evt("cleanup", "--run-id", run_id, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored audit settings" in done.stdout
    assert not [
        line
        for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
        if line.startswith(shutil.which("auditd")) and str(tmp_path) in line
    ]
    # audit_as_before checks settings, rules and the daemon registration


def _start_until_rules(tmp_path: Path, *args: str) -> subprocess.Popen:
    """evt stress with tracer=auditd in the background, returned once its rules are loaded."""
    proc = subprocess.Popen(
        [
            EVT,
            "stress",
            "tracer=auditd",
            "runner=local",
            "stress.stress_end_cooldown=0s",
            f"hydra.run.dir={tmp_path / 'run'}",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not evt_rules():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"evt never loaded its rules: {proc.communicate()[0]}")
        time.sleep(0.02)
    return proc


@needs_audit
def test_sigterm_of_evt_puts_the_audit_state_back(tmp_path, audit_as_before):
    proc = _start_until_rules(
        tmp_path,
        "-e",
        "security_socket_create:ops=100000:rate=500",
        "auditd.backlog_limit=4096",
        "auditd.backlog_wait_time=0",
    )
    daemon = AUDITCTL.status()["pid"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "audit rules deleted and settings restored" in out
    assert not os.path.exists(f"/proc/{daemon}")  # its daemon stopped (audit_as_before: rules, settings)


@needs_audit
def test_an_auditd_that_dies_mid_run_fails_the_run_and_the_state_is_put_back(tmp_path, audit_as_before):
    proc = _start_until_rules(tmp_path, "-e", "security_socket_create:ops=3000:rate=1000", "auditd.rate_limit=50000")
    os.kill(AUDITCTL.status()["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "tracer auditd died mid-run" in out and "audit rules deleted and settings restored" in out


@needs_audit
def test_another_audit_daemon_is_named_and_left_alone(tmp_path, audit_as_before):
    conf_dir = tmp_path / "other"
    (conf_dir / "plugins.d").mkdir(parents=True)
    conf = conf_dir / "auditd.conf"
    conf.write_text(
        render(
            "auditd.conf.j2",
            run_id="other",
            log_file=str(conf_dir / "audit.log"),
            flush="NONE",
            freq=0,
            plugin_dir=str(conf_dir / "plugins.d"),
        )
    )
    conf.chmod(0o600)
    other = subprocess.Popen([shutil.which("auditd"), "-n", "-s", "nochange", "-c", str(conf_dir)])
    try:
        deadline = time.monotonic() + 30
        while AUDITCTL.status().get("pid") != other.pid:
            assert other.poll() is None and time.monotonic() < deadline, "the test's own auditd did not register"
            time.sleep(0.02)
        done, run_dir = stress(tmp_path, "-e", "security_file_open:ops=10")
        assert done.returncode == 2, done.stdout + done.stderr
        message = assert_one_paragraph(done.stderr.strip())
        assert f"another audit daemon is registered with the kernel: auditd (pid {other.pid})" in message
        assert "never takes it over" in message
        assert other.poll() is None and AUDITCTL.status()["pid"] == other.pid  # still the kernel's daemon
        assert not (run_dir / "tracer").exists() and evt_rules() == []
    finally:
        other.terminate()  # the test's own daemon, and only it
        other.wait(timeout=30)

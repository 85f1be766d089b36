"""`evt trigger` and `evt list` as a user runs them: the venv's console script, as a subprocess,
where a run's processes and signals matter; in-process (inprocess.evt_main) for the command
line's own checks and `evt list`."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evt import host
from evt.workload.catalog import RELATIONS
from helpers import EVT, ROOT, run_evt
from inprocess import evt_main

START_ONE = re.compile(r"^Starting triggering (\d+) ops with (\S+) sleep time at \d\d:\d\d:\d\d\.\d{3}$")
START_MANY = re.compile(
    r"^Starting triggering (\d+) total ops \((\d+) workers × (\d+) ops\) "
    r"with (\S+) sleep time at \d\d:\d\d:\d\d\.\d{3}$"
)
FINISHED = re.compile(
    r"^Finished triggering (\d+) ops after (\d[\d.]*(?:ns|µs|ms|s|m\d[\d.]*s)) at \d\d:\d\d:\d\d\.\d{3}$"
)
RESULT_KEYS = {
    "event",
    "mode",
    "workers",
    "ops",
    "ok",
    "errors",
    "duration_s",
    "ops_per_s",
    "t_start_ns",
    "t_end_ns",
    "per_worker",
}
WORKER_KEYS = {
    "worker",
    "ops",
    "ok",
    "errors",
    "t_start_ns",
    "t_end_ns",
    "duration_s",
    "ops_per_s",
    "first_error",
    "cpu_s",
    "pace_cpu_s",
    "late_s",
}


def assert_usage_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, nothing run (no output), one paragraph on stderr: `Error: <the original's
    words>`, evt's hints (if any) on the lines after it; the needles in that order."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and "" not in lines, proc.stderr
    text = proc.stderr.strip()
    for needle in needles:
        assert needle in text, (needle, text)


# -- bad input (the command line's own checks: in-process) ----------------------------------


def test_event_is_required():
    assert_usage_error(evt_main("trigger"), 'Error: required flag(s) "event" not set\n')


def test_empty_event():
    assert_usage_error(evt_main("trigger", "--event", ""), "event name cannot be empty")


def test_comma_in_event_points_to_separate_commands():
    assert_usage_error(
        evt_main("trigger", "-e", "ptrace,security_file_open"),
        "Error: multiple events not supported in a single --event flag: use separate 'evt trigger' "
        "commands for each event, or use 'evt stress' for multiple concurrent events",
    )


def test_invalid_event_name():
    assert_usage_error(evt_main("trigger", "-e", "../etc/passwd"), "invalid event name")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_ops_must_be_positive(value):
    assert_usage_error(evt_main("trigger", "-e", "ptrace", f"--ops={value}"), "Error: ops must be greater than 0\n")


@pytest.mark.parametrize("value", ["many", "1.5"])
def test_ops_that_are_not_integers_get_cobras_words(value):
    assert_usage_error(
        evt_main("trigger", "-e", "ptrace", f"--ops={value}"),
        f'Error: invalid argument "{value}" for "-o, --ops" flag: strconv.ParseInt: parsing "{value}": invalid syntax',
    )


@pytest.mark.parametrize("value", ["0", "-1"])
def test_parallel_must_be_positive(value):
    assert_usage_error(
        evt_main("trigger", "-e", "ptrace", f"--parallel={value}"), "Error: parallel must be greater than 0\n"
    )


@pytest.mark.parametrize(
    "value, cause", [("10", 'time: missing unit in duration "10"'), ("fast", 'time: invalid duration "fast"')]
)
def test_bad_sleep_gets_cobras_words(value, cause):
    assert_usage_error(
        evt_main("trigger", "-e", "ptrace", "-s", value),
        f'Error: invalid argument "{value}" for "-s, --sleep" flag: {cause}',
        "Go duration",
    )


def test_bad_signal_timeout():
    assert_usage_error(
        evt_main("trigger", "-e", "ptrace", "--signal-timeout", "1 m"), "invalid signal timeout '1 m'", "Go duration"
    )


def test_unknown_event_suggests_close_names():
    assert_usage_error(
        evt_main("trigger", "-e", "security_file_opne"),
        "Error: trigger for the event security_file_opne does not exist: stat ",
        "security_file_opne.yaml: no such file or directory\nDid you mean security_file_open",
    )


def test_bad_mode():
    assert_usage_error(evt_main("trigger", "-e", "ptrace", "--mode", "turbo"), "invalid mode 'turbo'")


def test_mode_the_trigger_lacks():
    assert_usage_error(evt_main("trigger", "-e", "arch_prctl", "--mode", "native"), "has no native mode", "script")


@pytest.mark.skipif(host.check_kernel_feature("kprobes") is None, reason="this kernel has kprobes")
def test_missing_kernel_feature_is_refused():
    assert_usage_error(
        evt_main("trigger", "-e", "bpf_attach"),
        "event 'bpf_attach' cannot run on this host in script mode",
        "needs kprobes",
    )


@pytest.fixture
def evt_home(tmp_path):
    """A copy of the data directories whose catalog we may change (EVT_HOME points at it)."""
    for name in ("conf", "templates"):
        os.symlink(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "triggers", tmp_path / "triggers")
    return tmp_path


def edit_trigger(home: Path, event: str, change) -> None:
    path = home / "triggers" / f"{event}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_missing_binary_is_refused_before_anything_runs(evt_home, tmp_path):
    edit_trigger(
        evt_home, "ptrace", lambda d: d["modes"]["script"]["needs"]["binaries"].append("evt-test-no-such-tool")
    )
    proc = run_evt("trigger", "-e", "ptrace", "--mode", "script", env={"EVT_HOME": str(evt_home)})
    assert_usage_error(proc, "cannot run on this host in script mode: evt-test-no-such-tool not installed")
    # the native mode does not need it
    assert run_evt("trigger", "-e", "ptrace", env={"EVT_HOME": str(evt_home)}).returncode == 0


# -- runs --------------------------------------------------------------------------------


def test_one_worker_lines():
    proc = run_evt("trigger", "-e", "security_file_open", "--ops", "50")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert START_ONE.match(lines[0]).groups() == ("50", "10ns")  # the original's default sleep
    assert FINISHED.match(lines[1]).group(1) == "50"
    assert proc.stderr == ""


def test_default_is_one_op():
    proc = run_evt("trigger", "-e", "ptrace", "--json")
    result = json.loads(proc.stdout.splitlines()[-1])
    assert (result["ops"], result["workers"], result["mode"]) == (1, 1, "native")


def test_parallel_total_ops():
    proc = run_evt("trigger", "-e", "security_socket_create", "-p", "3", "-o", "40", "-s", "0")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert START_MANY.match(lines[0]).groups() == ("120", "3", "40", "0s")
    assert FINISHED.match(lines[1]).group(1) == "120"


def test_json_last_line():
    proc = run_evt("trigger", "-e", "security_file_open", "-o", "100", "-p", "2", "-s", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    result = json.loads(lines[-1])
    assert set(result) == RESULT_KEYS
    assert (result["event"], result["mode"], result["workers"], result["ops"], result["ok"], result["errors"]) == (
        "security_file_open",
        "native",
        2,
        200,
        200,
        0,
    )
    assert result["duration_s"] > 0 and result["ops_per_s"] > 0
    assert 0 < result["t_start_ns"] <= result["t_end_ns"]
    assert abs(result["t_start_ns"] - time.time_ns()) < 60e9  # wall clock, not monotonic
    assert [w["worker"] for w in result["per_worker"]] == [0, 1]
    for row in result["per_worker"]:
        assert set(row) == WORKER_KEYS
        assert (row["ops"], row["ok"], row["errors"], row["first_error"]) == (100, 100, 0, None)


def test_socket_dup_is_an_alias_of_the_originals_socked_dup():
    proc = run_evt("trigger", "-e", "socket_dup", "-o", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert (result["event"], result["mode"], result["ok"]) == ("socked_dup", "native", 3)


def test_failing_ops_exit_1_with_every_worker_named(evt_home):
    (evt_home / "triggers" / "scripts" / "true.sh.j2").write_text("#!/bin/sh\nexit 7\n")
    proc = run_evt("trigger", "-e", "arch_prctl", "-o", "3", "-p", "2", "--json", env={"EVT_HOME": str(evt_home)})
    assert proc.returncode == 1
    assert json.loads(proc.stdout.splitlines()[-1])["errors"] == 6
    err = proc.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1
    for worker in (0, 1):
        assert f"worker {worker}: 3 of 3 ops failed, first: arch_prctl.sh exited with status 7" in err


# -- bypass flags --------------------------------------------------------------------------


def test_bypass_flags_print_scope_filters_and_the_tree_hint():
    proc = run_evt("trigger", "-e", "security_inode_symlink", "--bypass-flags", env={"SHELL": "/usr/bin/fish"})
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        "-s comm!=sh -s comm!=fish -s comm!=evt -s comm!=security_inode_",
        f"If running trigger from this shell, also use: -s tree={os.getpid()}",
    ]


def test_bypass_flags_short_form_runs_nothing():
    proc = run_evt("trigger", "-e", "ptrace", "-b", "--ops", "5", env={"SHELL": "/bin/bash"})
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "-s comm!=sh -s comm!=bash -s comm!=evt -s comm!=ptrace.sh"
    assert "Starting triggering" not in proc.stdout


# -- start gates ---------------------------------------------------------------------------


def read_line(proc: subprocess.Popen, timeout: float = 10) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output line in time"
    return proc.stdout.readline().rstrip("\n")


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(EVT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def test_wait_signal_starts_on_sigusr1_and_prefixes_every_line():
    proc = spawn("trigger", "-e", "ptrace", "-o", "20", "--wait-signal", "--json")
    try:
        prefix = f"[trigger:{proc.pid}:ptrace] "
        assert read_line(proc) == prefix + "Waiting for start signal SIGUSR1 (timeout: 1m0s)"
        # still waiting: nothing more comes until the signal
        assert select.select([proc.stdout], [], [], 0.3)[0] == []
        os.kill(proc.pid, signal.SIGUSR1)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith(prefix) for line in lines)
    assert START_ONE.match(lines[0][len(prefix) :]).group(1) == "20"
    assert FINISHED.match(lines[1][len(prefix) :]).group(1) == "20"
    assert json.loads(lines[2][len(prefix) :])["ok"] == 20


def test_wait_signal_timeout_is_a_failed_run():
    started = time.monotonic()
    proc = run_evt("trigger", "-e", "ptrace", "-w", "--signal-timeout", "300ms")
    assert proc.returncode == 1
    assert time.monotonic() - started >= 0.3
    assert proc.stdout.splitlines() == [
        f"[trigger:{_pid_in(proc.stdout)}:ptrace] Waiting for start signal SIGUSR1 (timeout: 300ms)"
    ]
    assert proc.stderr.strip() == "Error: timed out waiting for signal SIGUSR1 after 300ms"


def _pid_in(text: str) -> str:
    return re.match(r"\[trigger:(\d+):", text).group(1)


def test_start_fifo_releases_when_a_writer_opens(tmp_path):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    proc = spawn("trigger", "-e", "security_file_open", "-o", "30", "-p", "2", "--start-fifo", str(fifo), "--json")
    try:
        prefix = f"[trigger:{proc.pid}:security_file_open] "
        assert read_line(proc) == prefix + f"Waiting at start barrier {fifo} (timeout 1m0s)"
        assert select.select([proc.stdout], [], [], 0.3)[0] == [], "started before the barrier opened"
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = [line[len(prefix) :] for line in out.splitlines()]
    assert START_MANY.match(lines[0]).group(1) == "60"
    assert json.loads(lines[-1])["ok"] == 60


def test_start_fifo_timeout(tmp_path):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    proc = run_evt("trigger", "-e", "ptrace", "--start-fifo", str(fifo), "--signal-timeout", "200ms")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: timed out after 200ms waiting at start barrier {fifo}"


def test_start_fifo_that_is_not_a_fifo(tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    proc = run_evt("trigger", "-e", "ptrace", "--start-fifo", str(path))
    assert proc.returncode == 1
    assert "is not a FIFO" in proc.stderr and "Starting triggering" not in proc.stdout


# -- evt list ------------------------------------------------------------------------------


def test_list_json_covers_the_catalog_with_availability():
    proc = evt_main("list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["event"]: row for row in json.loads(proc.stdout)}
    assert len(rows) == 27
    ptrace = rows["ptrace"]
    assert ptrace["modes"] == ["native", "script"] and ptrace["default_mode"] == "native"
    assert ptrace["available"]["native"] is True
    for row in rows.values():
        assert set(row["available"]) == set(row["modes"])
        for mode, ok in row["available"].items():
            assert ok == (mode not in row["why_not"])
    if host.check_kernel_feature("kprobes"):
        assert rows["bpf_attach"]["available"] == {"script": False}
        assert any("kprobes" in why for why in rows["bpf_attach"]["why_not"]["script"])


def test_list_json_gives_every_count_relation_and_need():
    rows = {row["event"]: row for row in json.loads(evt_main("list", "--json").stdout)}
    for row in rows.values():
        assert set(row["count"]) == set(row["modes"])
        for count in row["count"].values():
            assert count["relation"] in RELATIONS
            assert bool(count["reason"]) == (count["relation"] != "exact")
            assert count["per_op"] >= 1 and count["per_op_is"] in ("exact", "lower_bound")
    assert rows["commit_creds"]["count"]["script"]["relation"] == "lower_bound"  # measured at commit_creds
    assert "at the Tracee hook on debian-6.1" in rows["commit_creds"]["count"]["script"]["reason"]
    assert rows["socked_dup"]["count"]["native"] == {
        "relation": "exact",
        "reason": "",
        "probe": "tracepoint:syscalls:sys_enter_dup",
        "per_op": 1,
        "per_op_is": "exact",
        "filter": rows["socked_dup"]["count"]["native"]["filter"],
    }
    assert (rows["socked_dup"]["tracee_event"], rows["socked_dup"]["aliases"]) == ("socket_dup", ["socket_dup"])
    assert rows["ptrace"]["tracee_event"] == "ptrace"
    assert rows["arch_prctl"]["needs"]["script"]["arch"] == ["x86_64"]
    assert rows["security_bpf_prog"]["needs"]["script"]["capabilities"] == ["CAP_SYS_ADMIN"]


def test_list_table():
    proc = evt_main("list")
    assert proc.returncode == 0, proc.stderr
    assert "security_file_open" in proc.stdout and "native*, script" in proc.stdout
    assert "* default mode" in proc.stdout
    assert "socked_dup (Tracee: socket_dup)" in proc.stdout
    assert "native: exact; script: lower_bound" in proc.stdout  # security_file_open, as verified at its hook
    assert "unverified = " in proc.stdout


def test_evt_trigger_imports_no_analysis_library():
    """`evt trigger` starts fast: pandas, scipy, matplotlib and ray stay unloaded."""
    code = (
        "import sys; from evt import cli; code = cli.main(['trigger', '-e', 'ptrace', '-o', '1']); "
        "print('exit', code, sorted(m for m in ('pandas', 'scipy', 'matplotlib', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "exit 0 []", out.stdout + out.stderr

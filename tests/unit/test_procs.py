"""evt.procs: the managed-process helper, with real processes (Python children)."""

from __future__ import annotations

import csv
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from evt.procs import LOG_TAIL, ManagedProcess, ProcessSampler, Stop, command_version, exit_text, log_tail, stop_group
from evt.resource_series import SERIES_COLUMNS, SERIES_FILE
from helpers import gone, group_gone, reap


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def started():
    """Every ManagedProcess a test starts; its whole group is killed and must be gone."""
    made: list[ManagedProcess] = []
    yield made
    for proc in made:
        if proc.running:
            reap(proc.pid)
        proc.wait_exit(5)
        proc.sampler.stop()
        assert gone(proc.pid) and group_gone(proc.pid)


def start(started, argv, tmp_path, **kw) -> ManagedProcess:
    proc = ManagedProcess(argv, tmp_path / "logs" / "p.log", **kw)
    started.append(proc)
    return proc


def log_says(proc: ManagedProcess, text: str) -> bool:
    return wait_for(lambda: text in proc.log_path.read_text())


IGNORES_TERM = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, lambda *a: print("SIGTERM received and ignored", file=sys.stderr, flush=True))
    child = subprocess.Popen(["sleep", "60"])  # in its group: must not outlive the stop
    print(f"child {child.pid}", file=sys.stderr, flush=True)
    print("ready", file=sys.stderr, flush=True)
    while True:
        time.sleep(0.05)
"""


def test_runs_in_its_own_session_with_output_in_the_log(started, tmp_path):
    proc = start(
        started, py("import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr)"), tmp_path
    )
    assert os.getsid(proc.pid) == proc.pid and os.getpgid(proc.pid) == proc.pid
    assert proc.wait_exit(10) == 0
    assert proc.log_path.read_text().splitlines() == ["to stdout", "to stderr"]


def test_stdout_to_a_file_of_its_own(started, tmp_path):
    out = tmp_path / "p.out"
    proc = start(started, py("import sys; print('data'); print('noise', file=sys.stderr)"), tmp_path, stdout_path=out)
    assert proc.wait_exit(10) == 0
    assert out.read_text() == "data\n" and proc.log_path.read_text() == "noise\n"


def test_sigterm_ignored_means_sigkill_after_the_timeout(started, tmp_path):
    proc = start(started, py(IGNORES_TERM), tmp_path)
    assert log_says(proc, "ready")
    child = int(next(line for line in proc.tail() if line.startswith("child ")).split()[1])
    said: list[float] = []
    t0 = time.monotonic()
    outcome = proc.stop(0.5, before_kill=lambda: said.append(time.monotonic() - t0))
    assert outcome is Stop.KILLED
    assert len(said) == 1 and said[0] >= 0.5  # told before the SIGKILL, after the timeout
    assert proc.returncode == -signal.SIGKILL
    assert "SIGTERM received and ignored" in proc.log_path.read_text()
    assert wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE)
    assert group_gone(proc.pid)
    t1 = time.monotonic()
    assert proc.stop(0.5) is Stop.KILLED and time.monotonic() - t1 < 0.2  # again: nothing more happens
    assert proc.poll() is None  # an exit evt caused is no crash


def test_a_graceful_stop_uses_the_first_signal(started, tmp_path):
    code = """
        import sys, time
        print("ready", file=sys.stderr, flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("END ran", flush=True)
            sys.exit(0)
    """
    proc = start(started, py(code), tmp_path)
    assert log_says(proc, "ready")
    assert proc.stop(10, first_signal=signal.SIGINT) is Stop.SIGNALLED
    assert proc.returncode == 0 and "END ran" in proc.log_path.read_text()


# bpftrace's way: a SIGINT sets a flag that only an interrupted wait reads; the first one
# arrives while it is busy and is missed, a later one lands in the wait
MISSES_THE_FIRST_SIGINT = """
    import signal, sys, time
    received = []
    signal.signal(signal.SIGINT, lambda *a: received.append(1))
    print("ready", file=sys.stderr, flush=True)
    while len(received) < 2:
        time.sleep(0.05)
    print(f"stopped after {len(received)} SIGINTs", flush=True)
"""


@pytest.mark.slow
def test_a_missed_stop_signal_is_repeated_while_the_process_shows_no_progress(started, tmp_path):
    proc = start(started, py(MISSES_THE_FIRST_SIGINT), tmp_path)
    assert log_says(proc, "ready")
    assert proc.stop(10, first_signal=signal.SIGINT, resignal_when_idle=True) is Stop.SIGNALLED
    assert "stopped after 2 SIGINTs" in proc.log_path.read_text()


@pytest.mark.slow
def test_without_repeats_a_missed_stop_signal_ends_in_sigkill(started, tmp_path):
    proc = start(started, py(MISSES_THE_FIRST_SIGINT), tmp_path)
    assert log_says(proc, "ready")
    assert proc.stop(1.5, first_signal=signal.SIGINT) is Stop.KILLED


@pytest.mark.slow
def test_a_process_draining_its_output_gets_no_second_signal(started, tmp_path):
    # writes for ~2.5 s after the SIGINT (more than RESIGNAL_S): a repeat would cut its drain short
    code = """
        import signal, sys, time
        received = []
        signal.signal(signal.SIGINT, lambda *a: received.append(1))
        print("ready", file=sys.stderr, flush=True)
        while not received:
            time.sleep(0.01)
        for _ in range(25):
            print("draining", flush=True)
            time.sleep(0.1)
        print(f"exiting after {len(received)} SIGINTs", flush=True)
    """
    proc = start(started, py(code), tmp_path, stdout_path=tmp_path / "out.txt")
    assert log_says(proc, "ready")
    assert proc.stop(10, first_signal=signal.SIGINT, resignal_when_idle=True) is Stop.SIGNALLED
    assert "exiting after 1 SIGINTs" in (tmp_path / "out.txt").read_text()


def test_sigint_stops_it_even_when_the_parent_ignores_and_blocks_sigint(tmp_path):
    """A Ray worker ignores and blocks SIGINT; bpftrace, stopped with SIGINT, must not inherit that."""
    parent = textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from evt.procs import ManagedProcess, Stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
        proc = ManagedProcess(["sleep", "60"], Path({str(tmp_path / "child.log")!r}))
        time.sleep(0.2)
        print(proc.stop(10, first_signal=signal.SIGINT).name, proc.returncode)
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["SIGNALLED", str(-signal.SIGINT)], out.stderr


def test_stop_after_it_exited(started, tmp_path):
    proc = start(started, py("raise SystemExit(3)"), tmp_path)
    assert proc.wait_exit(10) == 3
    assert proc.stop(5) is Stop.EXITED


def test_poll_says_why_it_died(started, tmp_path):
    proc = start(started, py("import sys, time; time.sleep(0.3); sys.exit(2)"), tmp_path)
    assert proc.poll() is None
    assert wait_for(lambda: proc.poll() is not None)
    assert proc.poll() == "exited with code 2"
    killed = start(started, py("import time; time.sleep(60)"), tmp_path)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait_exit(10)
    assert killed.poll() == "was killed by SIGKILL"


def test_tail_is_the_last_non_blank_lines(started, tmp_path):
    code = """
        import sys
        for i in range(1, 31):
            print(f"line {i}", file=sys.stderr)
            print("", file=sys.stderr)
        print("ATTACHED marker", file=sys.stderr)
    """
    proc = start(started, py(code), tmp_path)
    proc.wait_exit(10)
    assert LOG_TAIL == 20
    assert proc.tail() == [f"line {i}" for i in range(12, 31)] + ["ATTACHED marker"]
    assert proc.tail(3, skip="ATTACHED") == ["line 28", "line 29", "line 30"]
    assert log_tail(tmp_path / "missing.log") == []


@pytest.mark.slow
def test_cpu_and_memory_are_sampled(started, tmp_path):
    code = """
        import time
        block = bytearray(64 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1  # touched: resident
        end = time.process_time() + 0.6
        while time.process_time() < end:
            pass
        time.sleep(0.5)
    """
    proc = start(started, py(code), tmp_path)
    assert proc.wait_exit(30) == 0
    proc.stop(1)
    assert proc.sampler.cpu_s >= 0.5
    assert proc.sampler.peak_rss >= 64 * 2**20
    assert proc.sampler.wall_s >= 1.0


def test_the_sampler_counts_children(tmp_path):
    parent = subprocess.Popen(
        py("""
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.5\\n"
                        "while time.process_time() < end: pass\\ntime.sleep(0.4)"])
    """),
        start_new_session=True,
    )
    sampler = ProcessSampler(parent.pid, interval_s=0.05).start()
    try:
        parent.wait(timeout=30)
    finally:
        sampler.stop()
        reap(parent.pid)
    assert sampler.cpu_s >= 0.4  # the child's CPU, read while it ran


def test_a_program_that_cannot_run_is_an_oserror(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x01 not a program")
    bad.chmod(0o755)
    with pytest.raises(OSError):
        ManagedProcess([str(bad)], tmp_path / "bad.log")


def test_stop_group_of_a_plain_popen(tmp_path):
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    assert stop_group(proc, 5, first_signal=signal.SIGKILL) is Stop.SIGNALLED
    assert proc.returncode == -signal.SIGKILL and gone(proc.pid)


def test_exit_text():
    assert exit_text(None) == "is still running"
    assert exit_text(0) == "exited with code 0"
    assert exit_text(-signal.SIGTERM) == "was killed by SIGTERM"
    assert exit_text(-200) == "was killed by signal 200"


# ---------------------------------------------------------------- the resource time series


@pytest.mark.slow
def test_a_managed_process_gets_a_per_second_resource_series(tmp_path):
    busy = py("""
        import time
        end = time.monotonic() + 2.6
        while time.monotonic() < end:
            pass
    """)
    proc = ManagedProcess(busy, tmp_path / "tracer" / "busy.log")
    try:
        assert proc.wait_exit(30) == 0
    finally:
        proc.stop(1)
    with open(tmp_path / "tracer" / SERIES_FILE) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == SERIES_COLUMNS
    assert len(rows) >= 2 and rows[0]["cpu_pct"] == "0.0"
    assert max(float(r["cpu_pct"]) for r in rows[1:]) > 5  # a busy loop shows up
    stamps = [float(r["timestamp"]) for r in rows]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(stamps))  # once a second, not faster
    figures = proc.sampler.resources()
    assert figures["resource_samples_count"] == len(rows)
    assert figures["peak_rss_kb"] == max(int(r["rss_kb"]) for r in rows) > 0


def test_peak_rss_comes_from_the_kernels_high_water_mark(tmp_path):
    # 200 MiB touched and freed before the sampler first looks: only VmHWM still knows
    proc = subprocess.Popen(
        py("""
        import sys, time
        block = bytearray(200 * 2**20)
        del block
        print("freed", flush=True)
        time.sleep(30)
    """),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "freed"
        sampler = ProcessSampler(proc.pid)
        sampler.sample()
        assert sampler.rss < 100 * 2**20
        assert sampler.peak_rss >= 200 * 2**20
        assert sampler.usage().rss_bytes == sampler.rss and sampler.usage().cpu_s == sampler.cpu_s
    finally:
        proc.kill()
        proc.wait()


def test_command_version_is_the_first_line_or_none(tmp_path):
    assert command_version([sys.executable, "--version"]) == f"Python {sys.version.split()[0]}"
    assert command_version([sys.executable, "--version"], prefix="Python") == sys.version.split()[0]
    assert command_version([str(tmp_path / "missing")]) is None
    assert command_version(py("import sys; sys.exit(3)")) is None


def test_a_signal_during_the_fork_is_delivered_after_it_not_lost(tmp_path):
    """Python drops an exception a signal handler raises inside its at-fork callbacks; with
    the signals held for the fork, the handler runs once the start returns."""
    parent = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from evt import procs
        def interrupted(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, interrupted)
        os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGINT))  # a Ctrl+C mid-fork
        try:
            proc = procs.ManagedProcess(["sleep", "60"], Path({str(tmp_path / "child.log")!r}))
            print("lost")
        except KeyboardInterrupt:
            print("interrupted")
        child = [p for p in __import__("psutil").Process().children()]
        for c in child:
            print("child mask", [l for l in open(f"/proc/{{c.pid}}/status") if l.startswith("SigBlk")][0].split()[1])
            c.kill()
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[0] == "interrupted", out.stdout + out.stderr
    assert "Exception ignored" not in out.stderr
    assert "child mask 0000000000000000" in out.stdout  # the child starts with nothing blocked


@pytest.mark.slow
@pytest.mark.parametrize("outlives_evt", [False, True])
def test_a_process_dies_with_evt_unless_it_is_to_outlive_it(tmp_path, outlives_evt):
    """`kill -9` of evt right after a tracer's fork, before its pid is recorded for `evt
    cleanup`, must not leave the tracer running; a kept Tracee (outlives_evt) stays."""
    parent = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from evt.procs import ManagedProcess
        proc = ManagedProcess(["sleep", "60"], Path({str(tmp_path / "child.log")!r}), outlives_evt={outlives_evt})
        print(proc.pid, flush=True)
        time.sleep(60)
    """)
    evt = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    child = int(evt.stdout.readline())
    evt.kill()
    evt.wait(timeout=10)
    try:
        # the kernel sends the death signal as evt dies: a child still there 1 s later was spared
        assert wait_for(lambda: gone(child), timeout_s=1 if outlives_evt else 5) is (not outlives_evt)
    finally:
        if not gone(child):
            reap(child)

"""The trigger runner (evt/workload/trigger.py) in-process: workers, results, output lines, gates."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from evt.paths import TRIGGERS_DIR
from evt.workload import ops, trigger
from evt.workload.catalog import get_trigger, load_catalog
from evt.workload.marker import Marker
from evt.workload.pacing import Pacing
from evt.workload.protocol import Progress, Waiting, decode

START_ONE = re.compile(r"^Starting triggering (\d+) ops with (\S+) sleep time at \d\d:\d\d:\d\d\.\d{3}$")
START_MANY = re.compile(
    r"^Starting triggering (\d+) total ops \((\d+) workers × (\d+) ops\) "
    r"with (\S+) sleep time at \d\d:\d\d:\d\d\.\d{3}$"
)
FINISHED = re.compile(r"^Finished triggering (\d+) ops after (\S+) at \d\d:\d\d:\d\d\.\d{3}$")


@pytest.fixture
def marker():
    m = Marker.for_run(uuid.uuid4().hex, "test")
    yield m
    shutil.rmtree(m.dir, ignore_errors=True)


def run(event, mode, ops, parallel=1, sleep_ns=0, marker=None, gate=None, progress=None, protocol=False):
    stream = io.StringIO()
    out = trigger.Output(event, prefixed=False, stream=stream, protocol=protocol)
    marker = marker or Marker.for_run(uuid.uuid4().hex, event)
    result = trigger.run(
        get_trigger(event), mode, ops, parallel, Pacing(sleep_ns=sleep_ns), marker, gate, out, progress
    )
    return result, stream.getvalue().splitlines()


def test_native_run_reports_every_worker(marker):
    result, _ = run("security_file_open", "native", 500, parallel=2, marker=marker)
    assert (result.event, result.mode, result.workers, result.ops) == ("security_file_open", "native", 2, 1000)
    assert (result.ok, result.errors) == (1000, 0)
    assert [w.worker for w in result.per_worker] == [0, 1]
    for w in result.per_worker:
        assert (w.ops, w.ok, w.errors, w.first_error) == (500, 500, 0, None)
        assert 0 < w.t_start_ns <= w.t_end_ns and w.duration_s > 0 and w.ops_per_s > 0
    assert result.t_start_ns == min(w.t_start_ns for w in result.per_worker)
    assert result.t_end_ns == max(w.t_end_ns for w in result.per_worker)
    assert result.duration_s == pytest.approx((result.t_end_ns - result.t_start_ns) / 1e9)
    assert result.ops_per_s == pytest.approx(1000 / result.duration_s)
    assert not os.path.exists(marker.dir), "the marker directory is removed after the run"


def test_json_result_round_trips():
    result, _ = run("security_socket_create", "native", 10)
    data = json.loads(result.to_json())
    assert set(data) == {
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
    assert data["per_worker"][0]["ok"] == 10


def test_lines_of_one_worker():
    _, lines = run("security_file_open", "native", 20, sleep_ns=10)
    assert len(lines) == 2
    start, finished = START_ONE.match(lines[0]), FINISHED.match(lines[1])
    assert start and start.groups() == ("20", "10ns")
    assert finished and finished.group(1) == "20"


def test_lines_of_parallel_workers_count_the_total():
    _, lines = run("security_file_open", "native", 7, parallel=3, sleep_ns=1_500_000)
    start = START_MANY.match(lines[0])
    assert start and start.groups() == ("21", "3", "7", "1.5ms")
    assert FINISHED.match(lines[1]).group(1) == "21"


def test_sleep_paces_each_worker():
    result, _ = run("security_file_open", "native", 6, sleep_ns=20_000_000)
    # five sleeps between six ops
    assert result.per_worker[0].duration_s >= 5 * 0.020
    assert result.per_worker[0].duration_s < 2.0


def test_rate_paces_each_worker_and_a_sleeping_worker_uses_little_cpu():
    result = trigger.run(
        get_trigger("security_file_open"),
        "native",
        50,
        2,
        Pacing(rate=100.0),
        Marker.for_run(uuid.uuid4().hex, "security_file_open"),
        None,
        trigger.Output("security_file_open", prefixed=False, stream=io.StringIO()),
    )
    for worker in result.per_worker:
        assert worker.ok == 50 and worker.duration_s >= 49 / 100
        # 50 opens and 49 sleeps: the worker's CPU time is a small part of its half second
        assert 0 < worker.cpu_s < worker.duration_s / 2


def test_script_mode_runs_the_rendered_script(marker):
    trig = get_trigger("security_file_open")
    path = ops.prepare_script(trig, "script", marker)
    assert path == f"{marker.dir}/security_file_open.sh"
    assert os.stat(path).st_mode & stat.S_IXUSR
    assert Path(path).read_text().startswith("#!/bin/sh\n# security_file_open:")
    result, _ = run("security_file_open", "script", 3, marker=marker)
    assert (result.ok, result.errors) == (3, 0)


def failing_catalog(tmp_path, script: str):
    """A catalog with one trigger whose script fails the way `script` does."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "fail.sh.j2").write_text(f"#!/bin/sh\n{script}\n")
    body = yaml.safe_load((TRIGGERS_DIR / "arch_prctl.yaml").read_text())
    body["modes"]["script"]["template"] = "fail.sh.j2"
    (tmp_path / "arch_prctl.yaml").write_text(yaml.safe_dump(body))
    return load_catalog(tmp_path)["arch_prctl"]


def test_a_failing_op_fails_its_worker(tmp_path, marker):
    trig = failing_catalog(tmp_path, "exit 3")
    out = trigger.Output("arch_prctl", prefixed=False, stream=io.StringIO())
    result = trigger.run(trig, "script", 4, 2, Pacing(), marker, None, out)
    assert (result.ok, result.errors) == (0, 8)
    for w in result.per_worker:
        assert w.errors == 4
        assert w.first_error == "arch_prctl.sh exited with status 3"


def test_a_worker_that_dies_is_reported(marker):
    pool = trigger.WorkerPool(get_trigger("security_file_open"), "native", 10, 2, Pacing(), marker)
    pool.spawn()
    try:
        os.kill(pool.pids[1], signal.SIGKILL)
        pool.release()
        rows = pool.wait()
    finally:
        pool.kill()
        pool.cleanup()
    assert rows[0].ok == 10
    assert (rows[1].ok, rows[1].errors, rows[1].first_error) == (0, 10, "worker died without reporting")


def test_progress_records_while_running():
    result, lines = run("security_file_open", "native", 12, sleep_ns=25_000_000, progress=0.05, protocol=True)
    progress = [m for m in map(decode, lines) if isinstance(m, Progress)]
    assert progress, lines
    assert all(p.total == 12 for p in progress)
    assert result.ok == 12


def test_only_a_unit_sends_protocol_records():
    _, lines = run("security_file_open", "native", 3, progress=0.05)
    assert [decode(line) for line in lines] == [None] * len(lines)
    _, lines = run("security_file_open", "native", 3, progress=0.05, protocol=True)
    assert Waiting() in [decode(line) for line in lines]


def test_output_prefix_when_waiting():
    stream = io.StringIO()
    trigger.Output("ptrace", prefixed=True, stream=stream)("hello")
    assert stream.getvalue() == f"[trigger:{os.getpid()}:ptrace] hello\n"


def test_clock_text_is_milliseconds():
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", trigger.clock_text(time.time_ns()))


def test_summarize_ignores_workers_that_never_started():
    rows = [
        trigger.WorkerResult(0, 5, 5, 0, 1_000, 3_000, 2e-6, 2.5e6),
        trigger.WorkerResult(1, 5, 0, 5, 0, 0, 0.0, 0.0, "boom"),
    ]
    result = trigger.summarize("ptrace", "native", 5, rows)
    assert (result.ops, result.ok, result.errors, result.t_start_ns, result.t_end_ns) == (10, 5, 5, 1_000, 3_000)
    assert result.ops_per_s == pytest.approx(5 / 2e-6)


# -- gates ---------------------------------------------------------------------------------


def test_fifo_gate_releases_when_a_writer_opens(tmp_path):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    gate = trigger.FifoGate(str(fifo), 10_000_000_000)
    gate.arm()
    opened = []

    def release():
        time.sleep(0.2)
        opened.append(time.monotonic())
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=release)
    thread.start()
    gate.wait()
    released = time.monotonic()
    thread.join()
    assert opened and released >= opened[0], "the gate opened before any writer did"
    assert released - opened[0] < 1.0


def test_fifo_gate_releases_every_reader_at_once(tmp_path):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    gates = [trigger.FifoGate(str(fifo), 10_000_000_000) for _ in range(3)]
    for gate in gates:
        gate.arm()
    done = []
    threads = [threading.Thread(target=lambda g=g: (g.wait(), done.append(g))) for g in gates]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert done == []
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    for t in threads:
        t.join(5)
    assert len(done) == 3


def test_fifo_gate_times_out(tmp_path):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    gate = trigger.FifoGate(str(fifo), 100_000_000)
    gate.arm()
    started = time.monotonic()
    with pytest.raises(trigger.GateTimeout, match="timed out after 100ms waiting at start barrier"):
        gate.wait()
    assert 0.09 <= time.monotonic() - started < 2


def test_fifo_gate_refuses_a_regular_file(tmp_path):
    path = tmp_path / "barrier"
    path.write_text("")
    with pytest.raises(trigger.GateTimeout, match="is not a FIFO"):
        trigger.FifoGate(str(path), 1_000_000).arm()


def _in_child(fn) -> int:
    """Run fn in a forked child (signal masks stay out of the test runner); its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_signal_gate_keeps_a_signal_sent_before_wait():
    def body():
        gate = trigger.SignalGate(5_000_000_000)
        gate.arm()
        os.kill(os.getpid(), signal.SIGUSR1)  # before wait(): must not kill or be lost
        started = time.monotonic()
        gate.wait()
        return 0 if time.monotonic() - started < 1 else 1

    assert _in_child(body) == 0


def test_signal_gate_times_out():
    def body():
        gate = trigger.SignalGate(100_000_000)
        gate.arm()
        try:
            gate.wait()
        except trigger.GateTimeout as exc:
            return 0 if "timed out waiting for signal SIGUSR1 after 100ms" in str(exc) else 2
        return 1

    assert _in_child(body) == 0


def test_a_gate_timeout_leaves_no_workers(tmp_path, marker):
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    gate = trigger.FifoGate(str(fifo), 50_000_000)
    before = set(os.listdir("/proc"))
    with pytest.raises(trigger.GateTimeout):
        run("security_file_open", "native", 5, parallel=2, marker=marker, gate=gate)
    children = [p for p in set(os.listdir("/proc")) - before if p.isdigit() and _ppid(p) == os.getpid()]
    assert children == []
    assert not os.path.exists(marker.dir)


def _ppid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None

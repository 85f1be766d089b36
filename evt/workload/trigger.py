"""Run the ops of one trigger: worker processes, pacing, a start gate, per-worker stats.

This is the single runner loop behind `evt trigger`, the units of `evt stress` and the
benchmarks. The parent forks the workers first; each sets up its action and blocks on a
pipe; the gate (immediate, SIGUSR1, or a FIFO barrier shared by all units of a stress
run) opens; the parent closes the pipe and every worker starts at once. Workers count
ops in a shared memory slot (for live progress) and send one JSON line with their
figures back when done.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import shutil
import signal
import stat
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TextIO

from evt import linux
from evt.config.spec import format_duration
from evt.workload.catalog import Trigger
from evt.workload.marker import Marker
from evt.workload.ops import WorkerSpec, op_source
from evt.workload.pacing import Pacer, Pacing
from evt.workload.protocol import Message, Progress, TriggerResult, Waiting, WorkerResult, encode

CHUNK = 1024  # ops between two updates of a worker's progress slot
FIRST_OP_PAUSE_S = 0.005  # after the first op, when a shared release woke every worker: see _loop
QUIET_AFTER_RELEASE_S = 0.02  # the parent's pause after a shared release: see run()


class GateTimeout(Exception):
    pass


class Gate:
    """What the trigger waits for before its workers start."""

    description = ""

    def arm(self) -> None:
        """Prepare before the unit reports waiting (so no release can be missed)."""

    def wait(self) -> None:
        pass

    def worker_fd(self) -> int | None:
        """An fd the workers may poll themselves (POLLIN/POLLHUP = go), saving the hop
        through the parent; None: the parent releases them."""
        return None


class SignalGate(Gate):
    """SIGUSR1 releases; blocked before anything is printed so an early signal is kept."""

    def __init__(self, timeout_ns: int):
        self.timeout_ns = timeout_ns
        self.description = f"Waiting for start signal SIGUSR1 (timeout: {format_duration(timeout_ns)})"

    def arm(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

    def wait(self) -> None:
        if signal.sigtimedwait({signal.SIGUSR1}, self.timeout_ns / 1e9) is None:
            raise GateTimeout(f"timed out waiting for signal SIGUSR1 after {format_duration(self.timeout_ns)}")


class FifoGate(Gate):
    """A FIFO shared by every unit of a run: one open-for-write by the orchestrator
    makes every reader's poll() return together (POLLHUP once that writer closes)."""

    def __init__(self, path: str, timeout_ns: int):
        self.path = path
        self.timeout_ns = timeout_ns
        self.fd = -1
        self.description = f"Waiting at start barrier {path} (timeout {format_duration(timeout_ns)})"

    def arm(self) -> None:
        if not stat.S_ISFIFO(os.stat(self.path).st_mode):
            raise GateTimeout(f"start barrier {self.path} is not a FIFO")
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)

    def worker_fd(self) -> int | None:
        return self.fd  # inherited by the workers: one release wakes every worker of every unit

    def wait(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP)
        deadline = time.monotonic() + self.timeout_ns / 1e9
        try:
            while True:
                remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if poller.poll(remaining_ms):
                    return
                if time.monotonic() >= deadline:
                    raise GateTimeout(
                        f"timed out after {format_duration(self.timeout_ns)} waiting at start barrier {self.path}"
                    )
        finally:
            os.close(self.fd)


class Output:
    """Prints the trigger's lines; while waiting-mode is on each line carries the
    `[trigger:<pid>:<event>] ` prefix of Go evt. A unit (protocol=True) also sends the
    records of evt.workload.protocol, the only lines its orchestrator reads."""

    def __init__(self, event: str, prefixed: bool, stream: TextIO | None = None, protocol: bool = False):
        self.prefix = f"[trigger:{os.getpid()}:{event}] " if prefixed else ""
        self.stream = stream or sys.stdout
        self.protocol = protocol

    def __call__(self, line: str) -> None:
        self.stream.write(f"{self.prefix}{line}\n")
        self.stream.flush()

    def send(self, msg: Message) -> None:
        if self.protocol:
            self(encode(msg))


def clock_text(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _run_worker(spec: WorkerSpec, index: int) -> None:
    """Body of one worker process; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        linux.die_with_parent(signal.SIGKILL)
        if spec.pacing.sleep_ns or spec.pacing.rate:
            linux.set_timer_slack(1)  # honour sub-50us sleeps
        op = spec.source.open()
        pacer = spec.pacing.pacer()  # before the start (it times a few sleeps) and the marker comm
        spec.source.begin()  # after set-up, so its syscalls do not carry the marker comm
        poller = select.poll()
        for fd in spec.start_fds:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        poller.poll()
        result = _loop(op, spec.ops, pacer, index, spec.progress, spec.first_op_pause_s)
        spec.source.end()
        os.write(spec.result_fd, (json.dumps(asdict(result)) + "\n").encode())
    except BaseException as exc:  # report setup failures as a worker error
        try:
            failed = WorkerResult(index, spec.ops, 0, spec.ops, 0, 0, 0.0, 0.0, f"{type(exc).__name__}: {exc}")
            os.write(spec.result_fd, (json.dumps(asdict(failed)) + "\n").encode())
        finally:
            code = 1
    finally:
        os._exit(code)


def _loop(
    op: Callable[[], None], ops: int, pacer: Pacer, index: int, progress: mmap.mmap, first_op_pause_s: float = 0.0
) -> WorkerResult:
    errors = 0
    first_error: str | None = None
    slot = index * 8
    done = 0
    t_start, m_start, cpu_start = time.time_ns(), time.monotonic_ns(), time.process_time()
    if first_op_pause_s:
        # One shared release wakes every worker of every unit. Where there are more
        # workers than cores, those scheduled first would run on and the rest start a
        # scheduler tick (4 ms) or more later. Pausing once after the first op (sleeping,
        # not yielding: a yield stays inside the container's CPU cgroup) lets every woken
        # worker make its first op before anyone runs on.
        errors, first_error = pacer.run(op, 1)
        done = 1
        if ops > 1:
            pacer.sleep(max(pacer.pacing.sleep_ns / 1e9, first_op_pause_s))
            pacer.restart()  # the pause was the wait before the next op
    # Chunks keep the per-op path to the op itself and its pacing.
    while done < ops:
        chunk = min(CHUNK, ops - done)
        chunk_errors, chunk_first = pacer.run(op, chunk)
        errors += chunk_errors
        first_error = first_error or chunk_first
        done += chunk
        progress[slot : slot + 8] = struct.pack("<q", done)
    m_end = time.monotonic_ns()
    t_end = t_start + (m_end - m_start)
    duration = (m_end - m_start) / 1e9
    pace_cpu_s = pacer.pace_cpu_ns / 1e9
    return WorkerResult(
        index,
        ops,
        ops - errors,
        errors,
        t_start,
        t_end,
        duration,
        (ops / duration) if duration > 0 else 0.0,
        first_error,
        cpu_s=max(time.process_time() - cpu_start - pace_cpu_s, 0.0),
        pace_cpu_s=pace_cpu_s,
        late_s=pacer.late_ns / 1e9,
    )


class WorkerPool:
    """The forked workers of one trigger run, from set-up to their results."""

    def __init__(self, trigger: Trigger, mode: str, ops: int, parallel: int, pacing: Pacing, marker: Marker):
        self.trigger, self.mode, self.ops, self.parallel = trigger, mode, ops, parallel
        self.pacing, self.marker = pacing, marker
        self.source = op_source(trigger, mode, marker)  # native or script, chosen once
        self.pids: list[int] = []
        self.progress = mmap.mmap(-1, 8 * parallel)

    def spawn(self, gate_fd: int | None = None) -> None:
        """Fork the workers; each sets up and blocks until release() (or until the
        gate's fd, when it has one, says go: then they pause after their first op)."""
        first_op_pause_s = FIRST_OP_PAUSE_S if gate_fd is not None else 0.0
        self.source.prepare()
        self.start_r, self.start_w = os.pipe()
        self.result_r, self.result_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        start_fds = (self.start_r,) + ((gate_fd,) if gate_fd is not None else ())
        spec = WorkerSpec(self.source, self.ops, self.pacing, start_fds, self.result_w, self.progress, first_op_pause_s)
        for index in range(self.parallel):
            pid = os.fork()
            if pid == 0:
                os.close(self.start_w)
                os.close(self.result_r)
                _run_worker(spec, index)
            self.pids.append(pid)
        os.close(self.start_r)
        os.close(self.result_w)

    def release(self) -> None:
        os.close(self.start_w)

    def done_ops(self) -> int:
        return sum(struct.unpack_from("<q", self.progress, 8 * i)[0] for i in range(self.parallel))

    def wait(self, on_progress: Callable[[int], None] | None = None, interval_s: float = 0.5) -> list[WorkerResult]:
        """Collect the workers' results (reading while they run, so the pipe never fills)."""
        buffer = b""
        poller = select.poll()
        poller.register(self.result_r, select.POLLIN | select.POLLHUP)
        while True:
            events = poller.poll(int(interval_s * 1000) if on_progress else -1)
            if not events:
                if on_progress:
                    on_progress(self.done_ops())
                continue
            chunk = os.read(self.result_r, 65536)
            if not chunk:
                break
            buffer += chunk
        os.close(self.result_r)
        for pid in self.pids:
            os.waitpid(pid, 0)
        self.pids = []
        rows = [WorkerResult(**json.loads(line)) for line in buffer.decode().splitlines() if line.strip()]
        missing = set(range(self.parallel)) - {r.worker for r in rows}
        for index in sorted(missing):  # a worker killed before it could report
            rows.append(WorkerResult(index, self.ops, 0, self.ops, 0, 0, 0.0, 0.0, "worker died without reporting"))
        return sorted(rows, key=lambda r: r.worker)

    def kill(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids = []

    def cleanup(self) -> None:
        shutil.rmtree(self.marker.dir, ignore_errors=True)


def summarize(event: str, mode: str, ops: int, rows: list[WorkerResult]) -> TriggerResult:
    started = [r for r in rows if r.t_start_ns]
    t_start = min((r.t_start_ns for r in started), default=0)
    t_end = max((r.t_end_ns for r in started), default=0)
    duration = (t_end - t_start) / 1e9 if started else 0.0
    ok = sum(r.ok for r in rows)
    return TriggerResult(
        event=event,
        mode=mode,
        workers=len(rows),
        ops=ops * len(rows),
        ok=ok,
        errors=sum(r.errors for r in rows),
        duration_s=duration,
        ops_per_s=(ok / duration) if duration > 0 else 0.0,
        t_start_ns=t_start,
        t_end_ns=t_end,
        per_worker=rows,
    )


def run(
    trigger: Trigger,
    mode: str,
    ops: int,
    parallel: int,
    pacing: Pacing,
    marker: Marker,
    gate: Gate | None = None,
    out: Output | None = None,
    progress_interval_s: float | None = None,
) -> TriggerResult:
    """Run one trigger to completion and return its figures."""
    gate = gate or Gate()
    out = out or Output(trigger.event, prefixed=False)
    workers = WorkerPool(trigger, mode, ops, parallel, pacing, marker)
    try:
        gate.arm()
        shared_fd = gate.worker_fd()
        workers.spawn(shared_fd)
        if gate.description:
            out(gate.description)
        out.send(Waiting())
        gate.wait()
        # Release first, print after: the start skew between units is what the barrier is for.
        m_start, now_ns = time.monotonic_ns(), time.time_ns()
        workers.release()
        if shared_fd is not None:
            # The same release woke every worker of every unit: stay off the CPU while they
            # make their first ops (a line printed now also wakes the container runtime).
            time.sleep(QUIET_AFTER_RELEASE_S)
        pace = pacing.describe()
        if parallel > 1:
            out(
                f"Starting triggering {ops * parallel} total ops ({parallel} workers × {ops} ops) "
                f"with {pace} at {clock_text(now_ns)}"
            )
        else:
            out(f"Starting triggering {ops} ops with {pace} at {clock_text(now_ns)}")

        def report_progress(done: int) -> None:
            out.send(Progress(done, ops * parallel))

        rows = workers.wait(report_progress if progress_interval_s else None, progress_interval_s or 0.5)
        elapsed = time.monotonic_ns() - m_start
        out(
            f"Finished triggering {ops * parallel} ops after {format_duration(elapsed)} at {clock_text(time.time_ns())}"
        )
        return summarize(trigger.event, mode, ops, rows)
    finally:
        workers.kill()
        workers.cleanup()

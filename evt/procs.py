"""Processes evt starts and looks after: a tracer's binary (Tracee, bpftrace), a local unit.

What every such process needs, in one place: its own session (a Ctrl+C on the terminal
reaches evt, which then stops it in order, and a signal to its process group reaches the
children it forked), its output captured to a log file, its CPU seconds and peak memory
sampled with psutil, a per-second resource time series beside its log
(evt/resource_series.py), the last lines of its log for error messages, and a stop that
is safe at any time and more than once: a first signal (SIGTERM, or the one the program
wants, e.g. SIGINT for bpftrace), up to a timeout, then SIGKILL to the whole group.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from evt import faults
from evt.resource_series import SERIES_FILE, ResourceSeries

LOG_TAIL = 20  # log lines shown with an error, as Tracee's Go evt does
KILL_WAIT_S = 5.0  # how long a SIGKILLed process may take to be reaped
RESIGNAL_S = 1.0  # a stop signal is repeated after this long without progress (see stop_group)
_TAIL_BYTES = 64 * 1024  # the tail is read from the end of the file, however long it is

log = logging.getLogger(__name__)


class Stop(enum.StrEnum):
    """How a stop ended."""

    EXITED = "exited"  # it had exited before the stop
    SIGNALLED = "signalled"  # the first signal ended it within the timeout
    KILLED = "killed"  # SIGKILL after the timeout
    STUCK = "stuck"  # still there after SIGKILL (uninterruptible sleep, another owner)


def exit_text(code: int | None) -> str:
    """A process's end in words: `exited with code 1`, `was killed by SIGKILL`."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def log_tail(path: str | os.PathLike, n: int = LOG_TAIL, skip: str | None = None) -> list[str]:
    """The last `n` non-blank lines of a log file (those containing `skip` left out);
    [] when the file is missing or empty."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _TAIL_BYTES))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = [line for line in data.splitlines() if line.strip() and not (skip and skip in line)]
    return lines[-n:] if n > 0 else []


def command_version(argv: list[str], prefix: str = "") -> str | None:
    """The first line a `--version`-style command prints, `prefix` removed; None when it
    cannot run, fails or says nothing within 5 s (a version is a record, never a reason to stop)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in (done.stdout or "").splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return None
    return lines[0].removeprefix(prefix).strip() or None


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the process group `proc` leads (it was started in its own session); the
    process alone when the group is gone or not ours. Never raises for a dead process."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)  # a no-op once it has been reaped
        except ProcessLookupError:
            pass


def stop_group(
    proc: subprocess.Popen,
    timeout_s: float,
    first_signal: int = signal.SIGTERM,
    before_kill: Callable[[], None] | None = None,
    progress: Callable[[], object] | None = None,
) -> Stop:
    """`first_signal` to the group, up to `timeout_s` for `proc` to exit, then SIGKILL.
    Whatever the group still holds afterwards is SIGKILLed too. `before_kill` runs just
    before the SIGKILL that ends a process which outlived the timeout. With `progress`
    (a value that changes while the process works, e.g. its output's size), the first
    signal is sent again after each RESIGNAL_S in which that value did not change."""
    if proc.poll() is not None:
        signal_group(proc, signal.SIGKILL)  # what it left behind in its group
        return Stop.EXITED
    signal_group(proc, first_signal)
    deadline = time.monotonic() + max(0.0, timeout_s)
    try:
        if progress is not None:
            _wait_resignalling(proc, deadline, first_signal, progress)
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        outcome = Stop.SIGNALLED
    except subprocess.TimeoutExpired:
        if before_kill is not None:
            before_kill()
        signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=KILL_WAIT_S)
            outcome = Stop.KILLED
        except subprocess.TimeoutExpired:
            return Stop.STUCK
    signal_group(proc, signal.SIGKILL)  # children it left behind in its group
    return outcome


def _wait_resignalling(proc: subprocess.Popen, deadline: float, sig: int, progress: Callable[[], object]) -> None:
    """Wait until `proc` exits or the deadline, repeating `sig` while it shows no progress.
    Why: bpftrace (0.17 to at least 0.20) notices SIGINT only when the signal interrupts its
    epoll_wait; one that arrives while it is elsewhere (attaching, reading a buffer) sets
    its exit flag, which nothing reads again, and it runs on. A repeat lands in the wait.
    A process that is draining output shows progress and is left to finish."""
    last = progress()
    while time.monotonic() < deadline:
        try:
            proc.wait(timeout=min(RESIGNAL_S, max(0.0, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            pass
        now = progress()
        if now == last and time.monotonic() < deadline:
            log.info(
                "PID %d shows no progress %.0f s after %s: sending it again",
                proc.pid,
                RESIGNAL_S,
                signal.Signals(sig).name,
            )
            signal_group(proc, sig)
        last = now


def rss_high_water_mark(pid: int) -> int | None:
    """The kernel's record of a process's peak resident memory (VmHWM in /proc/<pid>/status):
    the peak between two samples too, not only at them. None where the kernel has no such
    line or the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass(frozen=True)
class Usage:
    """A tracer's resources at one moment: CPU seconds so far and resident memory now."""

    cpu_s: float
    rss_bytes: int


class ProcessSampler:
    """Samples a process tree's CPU seconds and resident memory with psutil.

    CPU is user+sys of every process seen in the tree, each kept at its last reading
    once it exits (children's counters are not added: a waited-for child would count
    twice). The peak RSS is the largest of: the largest sum over one sample, and the
    kernel's high-water mark of any one process in the tree (exact for a one-process
    tracer such as bpftrace or Tracee, whatever happened between samples).
    """

    def __init__(self, pid: int, interval_s: float = 0.1, series_path: Path | None = None):
        self.pid = pid
        self.series = ResourceSeries(pid, series_path) if series_path else None
        self.interval_s = interval_s
        self.cpu_s = 0.0
        self.rss = 0  # at the last sample
        self.peak_rss = 0
        self.started = time.monotonic()
        self.ended: float | None = None
        self._seen: dict[int, float] = {}  # last CPU reading per pid, kept after it exits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProcessSampler:
        self._thread = faults.start_thread(self._run, name=f"sampler-{self.pid}")
        return self

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = hwm = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    self._seen[proc.pid] = t.user + t.system
                    rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            hwm = max(hwm, rss_high_water_mark(proc.pid) or 0)
        self.cpu_s = sum(self._seen.values())
        self.rss = rss
        self.peak_rss = max(self.peak_rss, rss, hwm)
        now = time.monotonic()
        if self.series is not None and self.series.due(now):
            self.series.sample(now)

    def usage(self) -> Usage:
        """The last sample's figures (the sampler's own thread keeps them fresh)."""
        return Usage(self.cpu_s, self.rss)

    def resources(self) -> dict[str, float | int | None] | None:
        """The perf gate's summary of the time series; None without one."""
        return self.series.summary() if self.series is not None else None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """A last sample, then no more; the figures stay as they are."""
        try:
            if self.ended is None:
                try:
                    self.sample()
                finally:
                    self.ended = time.monotonic()
        finally:
            self._stop.set()
            if self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=2)

    @property
    def wall_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM wait while a child is forked with a preexec function. Why: Python
    then runs its at-fork callbacks (logging's lock release) in the parent, and an exception
    that a signal handler raises inside one is printed and dropped: that Ctrl+C would be
    lost. Held, the signal is delivered as soon as the fork returns. The child must clear
    its mask (see _default_signals): a blocked signal stays blocked across exec."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _default_signals() -> None:
    """Runs in the child before exec: an ignored signal and the signal mask survive exec, and
    a parent such as a Ray worker ignores and blocks SIGINT, bpftrace's stop signal."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def dies_with(parent: int) -> Callable[[], None]:
    """A preexec function: default signals, and SIGKILL when evt dies. Why: `kill -9` of
    evt just after the fork, before the pid reached the run's record, left a tracer that
    `evt cleanup` could not find."""
    # imported here, in evt: libc is loaded then, and the child must not dlopen (evt.linux)
    from evt import linux

    def setup() -> None:
        _default_signals()
        linux.die_with_parent(signal.SIGKILL)
        if os.getppid() != parent:  # evt died before the prctl: nothing would send it
            os._exit(1)

    return setup


class ManagedProcess:
    """A process evt started: in its own session, output in `log_path` (stdout in
    `stdout_path` when given, else in the log too), sampled from its start, its
    resource time series in SERIES_FILE beside the log."""

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        stdout_path: Path | None = None,
        env: dict[str, str] | None = None,
        outlives_evt: bool = False,
    ):
        """Start it; OSError when it cannot be executed. It is killed when evt dies, unless
        `outlives_evt` (a Tracee the user keeps running)."""
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.stdout_path = Path(stdout_path) if stdout_path else None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # the child holds its own copies of these descriptors: evt's are closed once it started
        with (
            open(self.log_path, "ab") as log,
            open(stdout_path, "wb") if stdout_path else contextlib.nullcontext(log) as out,
            signals_held(),
        ):
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                env=env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_default_signals if outlives_evt else dies_with(os.getpid()),
            )
        self.pid = self.popen.pid
        self.sampler = ProcessSampler(self.pid, series_path=self.log_path.parent / SERIES_FILE).start()
        self.stopping = False  # stop() was called: an exit from then on is ours
        self.outcome: Stop | None = None  # how the first stop() ended

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def wait_exit(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for it to exit: its exit code, or None while it runs."""
        try:
            return self.popen.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            return None

    def poll(self) -> str | None:
        """None while it runs, and after stop() (that exit is ours); otherwise how it ended."""
        if self.stopping or self.running:
            return None
        return exit_text(self.popen.returncode)

    def _output_size(self) -> int:
        total = 0
        for path in (self.log_path, self.stdout_path):
            try:
                total += path.stat().st_size if path else 0
            except OSError:
                pass
        return total

    def tail(self, n: int = LOG_TAIL, skip: str | None = None) -> list[str]:
        return log_tail(self.log_path, n, skip)

    def stop(
        self,
        timeout_s: float,
        first_signal: int = signal.SIGTERM,
        before_kill: Callable[[], None] | None = None,
        resignal_when_idle: bool = False,
    ) -> Stop | None:
        """Stop it (see stop_group) and take the sampler's last figures. A later call
        does nothing and returns how the first one ended. `resignal_when_idle`: repeat
        the first signal while its output files do not grow (see stop_group)."""
        if not self.stopping:
            self.stopping = True
            try:  # a sample that fails (its series file unwritable) must not keep the process running
                if self.running:
                    self.sampler.sample()  # its figures while it still runs in full
            finally:
                progress = self._output_size if resignal_when_idle else None
                self.outcome = stop_group(self.popen, timeout_s, first_signal, before_kill, progress)
                self.sampler.stop()
        return self.outcome

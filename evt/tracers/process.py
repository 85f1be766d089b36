"""The tracer process: everything evt does with a tracer that is a program it runs.

TracerProcess owns one such program: start (argv, environment, output files), readiness by
a predicate polled up to a deadline, crash detection with one message format, stop with a
signal and SIGKILL after a timeout, the tail of its log, its CPU and memory (sampled from
its start), and, for an eBPF tracer, the in-kernel run time of its BPF programs (BpfCost).
ProcessTracer is the Tracer built on it: bpftrace and the command tracers supply their
argv, environment, readiness predicate and the parsing of their output; Tracee's auto
lifecycle (evt/tracers/tracee/auto.py) holds a TracerProcess of its own.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import time
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path

from evt.config.spec import format_duration
from evt.errors import RunError
from evt.procs import LOG_TAIL, ManagedProcess, ProcessSampler, Stop, Usage, exit_text, log_tail
from evt.stress.plan import RunContext, Unit
from evt.tracers.base import Durations, Tracer, TracerReport

log = logging.getLogger(__name__)

BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def shown(seconds: float) -> str:
    return format_duration(int(seconds * 1e9))


def crash_message(title: str, code: int | None, when: str, log_path: Path, tail: list[str]) -> str:
    """The one way a tracer's end is told: how, when, and the end of its log."""
    text = f"{title} {exit_text(code)} {when}; its log {log_path}"
    return text + (":\n" + indented(tail) if tail else " is empty")


def indented(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


class BpfCost:
    """The in-kernel run time of a process's BPF programs.

    They run in the context of the traced processes, so their cost is not in the tracer's
    own CPU time. With kernel.bpf_stats_enabled the kernel accounts each program's run
    time and run count, shown in /proc/<pid>/fdinfo of every bpf-prog fd the tracer holds;
    read() takes them while the programs still exist (before the tracer is stopped)."""

    def __init__(self) -> None:
        self.on = False  # the kernel accounts BPF run time during this run
        self.restore_value: str | None = None  # kernel.bpf_stats_enabled before we set it
        self.figures: dict[str, float] = {}

    def enable(self) -> None:
        try:
            old = BPF_STATS.read_text().strip()
            if old != "1":
                BPF_STATS.write_text("1")
                self.restore_value = old
            self.on = True
        except OSError:
            pass  # not root, or an old kernel: the in-kernel cost stays unknown

    def restore(self) -> None:
        if self.restore_value is not None:
            try:
                BPF_STATS.write_text(self.restore_value)
            except OSError:
                pass
            self.restore_value = None

    def read(self, pid: int) -> None:
        if not self.on:
            return
        run_time_ns = run_cnt = programs = 0
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = [fd for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:bpf-prog"]
        except OSError:
            return
        for fd in fds:
            try:
                text = (fd_dir.parent / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            if "run_time_ns" in info:
                programs += 1
                run_time_ns += int(info["run_time_ns"])
                run_cnt += int(info["run_cnt"])
        if programs:
            self.figures = {"bpf_programs": programs, "bpf_run_time_s": run_time_ns / 1e9, "bpf_run_cnt": run_cnt}


class TracerProcess:
    """One tracer program evt runs (see the module's docstring). `title` names it in
    messages; `log_skip` leaves its own noise out of the log tail."""

    def __init__(
        self,
        title: str,
        log_path: Path,
        out_path: Path | None = None,
        *,
        ebpf: bool = True,
        log_skip: str | None = None,
    ):
        self.title = title
        self.log_path = Path(log_path)
        self.out_path = out_path
        self.log_skip = log_skip
        self.bpf = BpfCost() if ebpf else None
        self.proc: ManagedProcess | None = None
        self.argv: list[str] = []
        self.crashed: str | None = None  # why it died while the units ran
        self.started_at = 0.0

    # -- start and readiness ------------------------------------------------------------

    def start(self, argv: list[str], env: dict[str, str] | None = None, outlives_evt: bool = False) -> None:
        self.argv = list(argv)
        if self.bpf is not None:
            self.bpf.enable()
        try:
            self.proc = ManagedProcess(
                self.argv,
                self.log_path,
                stdout_path=self.out_path,
                env=None if env is None else dict(os.environ, **env),
                outlives_evt=outlives_evt,
            )
        except OSError as exc:
            if self.bpf is not None:
                self.bpf.restore()
            raise RunError(f"could not start {self.title} ({self.argv[0]}): {exc}") from exc
        self.started_at = time.monotonic()

    def wait_ready(
        self, ready: Callable[[], bool], timeout_s: float, waiting_for: Callable[[], str], poll_s: float = 0.02
    ) -> float:
        """Poll `ready()` up to `timeout_s`; the seconds it took. RunError when the process
        ends first (the crash message) or at the deadline (`waiting_for()` says what did
        not happen, e.g. "attach its probes within 1m (raise bpftrace.ready_timeout)")."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while not ready():
            if not self.proc.running:
                raise RunError(self.crash("before it was ready"))
            if time.monotonic() >= deadline:
                raise RunError(f"{self.title} did not {waiting_for()}; its log {self.log_path}:\n{self.log_tail()}")
            time.sleep(poll_s)
        return time.monotonic() - self.started_at

    def wait_alive(self, seconds: float) -> bool:
        """Wait `seconds`; False as soon as it exits."""
        return self.proc is not None and self.proc.wait_exit(seconds) is None

    # -- while the units run -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.running

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    @property
    def sampler(self) -> ProcessSampler | None:
        return self.proc.sampler if self.proc is not None else None

    def crash(self, when: str) -> str:
        return crash_message(self.title, self.returncode, when, self.log_path, self.tail())

    def poll(self) -> str | None:
        """None while it runs (or after stop()); why it died otherwise, said once and kept."""
        if self.crashed is None and self.proc is not None and self.proc.poll():
            self.crashed = self.crash("while the units ran")
        return self.crashed

    def usage(self) -> Usage | None:
        return self.proc.sampler.usage() if self.proc is not None else None

    def read_bpf_cost(self) -> dict[str, float]:
        """The in-kernel cost of its BPF programs (read while it runs; {} when unknown)."""
        if self.bpf is not None and self.running and self.proc is not None:
            self.bpf.read(self.proc.pid)
        return dict(self.bpf.figures) if self.bpf is not None else {}

    # -- stop and after ------------------------------------------------------------------

    def stop(
        self, timeout_s: float, stop_signal: int = signal.SIGTERM, resignal_when_idle: bool = False
    ) -> Stop | None:
        """`stop_signal`, up to timeout_s, then SIGKILL; a kill is recorded as a crash."""
        if self.proc is None:
            return None
        if not self.proc.stopping:
            self.poll()  # if it died on its own: keep why

        def say_kill() -> None:
            log.warning("%s did not stop within %s, sending SIGKILL...", self.title, shown(timeout_s))

        outcome = self.proc.stop(timeout_s, stop_signal, before_kill=say_kill, resignal_when_idle=resignal_when_idle)
        if outcome in (Stop.KILLED, Stop.STUCK) and self.crashed is None:
            name = signal.Signals(stop_signal).name
            self.crashed = f"{self.title} did not exit within {shown(timeout_s)} of {name} and was killed"
        if self.bpf is not None:
            self.bpf.restore()
        return outcome

    @property
    def stopping(self) -> bool:
        return self.proc is not None and self.proc.stopping

    def tail(self, n: int = LOG_TAIL) -> list[str]:
        return log_tail(self.log_path, n, skip=self.log_skip)

    def log_tail(self) -> str:
        """The end of its log, indented, for an error message."""
        return indented(self.tail()) or "    (empty log)"

    def figures(self) -> dict[str, object]:
        """Its resource figures for the TracerReport."""
        sampler = self.sampler
        return {
            "cpu_s": sampler.cpu_s if sampler else None,
            "peak_rss_bytes": sampler.peak_rss if sampler else None,
            "wall_s": sampler.wall_s if sampler else None,
            "resources": sampler.resources() if sampler else None,
        }


class ProcessTracer(Tracer):
    """A Tracer that is one program evt runs: the lifecycle is TracerProcess's; a subclass
    supplies argv(units), environment(), is_ready() and what it waits for, and report().
    Its output: <run_dir>/tracer/<name>.log (stderr) and <name>.out (stdout)."""

    ebpf = True  # its programs run in the kernel: their run time is measured (BpfCost)
    log_skip: str | None = None  # a line its log tail leaves out
    resignal_when_idle = False  # repeat the stop signal while its output does not grow

    def __init__(self, run: RunContext, name: str, settings, section: str):
        super().__init__(run, name)
        self.settings = settings
        self.section = section  # where users set it: "bpftrace" (bpftrace.*), "tracer" (tracer.*)
        self.durations = Durations.parse(settings, section)
        self.dir = self.run_dir / "tracer"
        self.log_path = self.dir / f"{self.name}.log"
        self.out_path = self.dir / f"{self.name}.out"
        self.process = TracerProcess(self.name, self.log_path, self.out_path, ebpf=self.ebpf, log_skip=self.log_skip)
        self.bpf_run: dict[str, float] = {}

    @abstractmethod
    def argv(self, units: list[Unit]) -> list[str]:
        """The command line to start (its files written first, e.g. a program it loads)."""

    def environment(self) -> dict[str, str]:
        """Variables added to evt's environment for it."""
        return {}

    @abstractmethod
    def is_ready(self) -> bool:
        """The readiness predicate, polled from start() until true."""

    def waiting_for(self) -> str:
        """What did not happen when readiness timed out (after "<name> did not ...")."""
        return f"become ready within {self.settings.ready_timeout} (raise {self.section}.ready_timeout)"

    def stop_signal(self) -> signal.Signals:
        return signal.SIGTERM

    def ready_timeout_s(self) -> float:
        return self.durations.ready_timeout_s

    # -- the Tracer's lifecycle ---------------------------------------------------------

    def start(self, units: list[Unit]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv(units)
        log.info("Starting %s: %s", self.name, shlex.join(argv))
        self.process.start(argv, self.environment())
        log.info("%s started with PID: %d", self.name, self.process.pid)

    def command(self, units: list[Unit]) -> list[str]:
        return self.process.argv or self.planned_argv(units)

    def planned_argv(self, units: list[Unit]) -> list[str]:
        """The argv shown in the plan, before start() (no files written)."""
        return []

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.pid is not None else []

    def wait_ready(self) -> None:
        self.process.wait_ready(self.is_ready, self.ready_timeout_s(), self.waiting_for)
        log.info("%s is ready (PID: %d)", self.name, self.process.pid)
        if self.durations.init_cooldown_s and not self.process.wait_alive(self.durations.init_cooldown_s):
            raise RunError(self.process.crash("during the init cooldown"))

    def poll(self) -> str | None:
        return self.process.poll()

    def drain(self) -> None:
        self.bpf_run = self.process.read_bpf_cost()

    def stop(self) -> None:
        if self.process.proc is None or self.process.stopping:
            return
        stop_signal = self.stop_signal()
        if self.process.running:
            log.info("Stopping %s (PID: %d) with %s...", self.name, self.process.pid, stop_signal.name)
        outcome = self.process.stop(self.durations.stop_timeout_s, stop_signal, self.resignal_when_idle)
        if outcome is Stop.SIGNALLED:
            log.info("%s stopped (exit code %s)", self.name, self.process.returncode)

    def usage(self) -> Usage | None:
        return self.process.usage()

    def log_tail(self) -> str:
        return self.process.log_tail()

    def base_report(self, units: list[Unit], **fields) -> TracerReport:
        """A report with what the process part knows (command, resources, log, crash)."""
        values = dict(
            tracer=self.name,
            command=self.command(units),
            log_path=str(self.log_path),
            crashed=self.process.crashed,
            **self.process.figures(),
        )
        values["metrics"] = dict(self.bpf_run, **fields.pop("metrics", {}))
        return TracerReport(**dict(values, **fields))

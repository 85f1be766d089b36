"""tracee.auto=true: evt starts Tracee, waits until it is ready, and stops it.

Ready means /healthz answers 200 with the body `OK` (tracee.healthz; refused connections
and 503 mean "not yet" on main, where the server opens only once Tracee is ready and the
heartbeat needs a beat; v0.24.x answers 200 with `NOT OK` until then, hence the body),
or, without it, the process is still alive after tracee.start_grace; then
tracee.init_cooldown. Stop is SIGTERM, up to
tracee.stop_timeout, then SIGKILL; with tracee.keep a ready Tracee is left running.
Every step is a line in Tracee's Go evt's words, through logging.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

from evt.errors import RunError, UsageError
from evt.procs import Stop, exit_text
from evt.tracers.process import TracerProcess, shown
from evt.tracers.tracee.checks import address_problem, already_running_message, binary_problem, running_tracee
from evt.tracers.tracee.command import http_parts
from evt.tracers.tracee.flavour import Flavour
from evt.tracers.tracee.lifecycle import Lifecycle, TraceeDurations
from evt.tracers.tracee.metrics import TraceeServer

log = logging.getLogger(__name__)


def kept_message(pid: int) -> list[str]:
    return [
        "",
        "=== Keeping Tracee Running (--keep-tracee) ===",
        f"Tracee is still running (PID: {pid})",
        f"To stop Tracee later, run: sudo kill -TERM {pid}",
    ]


class AutoLifecycle(Lifecycle):
    """The Tracee evt runs: its process is a TracerProcess (start, readiness polled up to
    a deadline, the crash message, SIGTERM then SIGKILL, log tail, resources, BPF cost)."""

    def __init__(self, tcfg, durations: TraceeDurations, server: TraceeServer, log_path: Path, flavour: Flavour):
        super().__init__()
        self.tcfg = tcfg
        self.flavour = flavour
        self.durations = durations
        self.server = server
        self.log_path = log_path
        self.process = TracerProcess("Tracee", log_path)

    def check(self) -> None:
        problem = binary_problem(str(self.tcfg.binary))
        if problem:
            raise UsageError(problem)
        found = running_tracee(str(self.tcfg.pidfile) if self.flavour.legacy else None)
        if found:
            raise UsageError(already_running_message(found))
        if self.tcfg.metrics or self.tcfg.healthz or self.tcfg.pprof or self.tcfg.pyroscope:
            host, port = http_parts(self.tcfg.http_address)
            problem = address_problem(host, port)
            if problem:
                raise UsageError(
                    f"Tracee's HTTP address {problem}: a Tracee that cannot bind it runs on without HTTP, "
                    "and whatever listens there would answer its /healthz and /metrics.\n"
                    "Stop what listens there, or choose a free one with tracee.http_address=127.0.0.1:<port>."
                )

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.pid is not None else []

    def start(self, argv: list[str], json_file: str | None) -> None:
        if json_file:
            Path(json_file).parent.mkdir(parents=True, exist_ok=True)
        log.info("Starting Tracee: %s [%s]", argv[0], " ".join(argv[1:]))  # Go evt prints a Go slice
        log.info("Tracee logs: %s", self.log_path)
        # the HTTP client (urllib, ssl) is imported now, not at the first /healthz poll: a
        # Ctrl+C that lands inside an extension module's import crashes instead of interrupting
        importlib.import_module("urllib.request")
        self.process.start(argv, outlives_evt=bool(self.tcfg.keep))
        self.pid = self.process.pid
        self.sampler = self.process.sampler
        log.info("Tracee started with PID: %d", self.pid)

    def wait_ready(self) -> None:
        if self.process.proc is None:
            raise RunError("Tracee was not started (start() was not called or failed).")
        log.info("Waiting for Tracee to initialize...")
        try:
            if self.tcfg.healthz:
                self.ready_s = self._wait_healthz()
            elif self.wait_alive(self.durations.start_grace_s):
                self.ready_s = time.monotonic() - self.process.started_at
            else:
                raise RunError(self.process.crash("during start-up"))
        finally:
            self.exit_code = self.process.returncode
        self.ready = True
        cooldown = self.durations.init_cooldown_s
        if cooldown > 0:
            log.info("Tracee running, waiting %s for stabilization...", shown(cooldown))
            if not self.wait_alive(cooldown):
                raise RunError(self.process.crash("during the init cooldown"))
        log.info("Tracee initialization complete")
        log.info("Tracee is ready (PID: %d)", self.pid)

    def _wait_healthz(self) -> float:
        """Ready: /healthz answers 200 OK (polled up to tracee.ready_timeout)."""
        last: list[str] = []

        def healthy() -> bool:
            problem = self.server.not_healthy()
            last[:] = [problem] if problem is not None else []
            return problem is None

        def waiting_for() -> str:
            return (
                f"become ready within {shown(self.durations.ready_timeout_s)}: {self.server.url}/healthz never "
                f"answered 200 OK (last: {last[0] if last else 'nothing'}); give it longer with "
                "tracee.ready_timeout=3m, or check that tracee.http_address matches the address it listens "
                "on (tracee.healthz=false falls back to tracee.start_grace)"
            )

        return self.process.wait_ready(healthy, self.durations.ready_timeout_s, waiting_for, poll_s=0.1)

    def poll(self) -> str | None:
        if self.crashed or self.stopped or self.process.proc is None:
            return self.crashed
        self.crashed = self.process.poll()
        if self.crashed:
            self.exit_code = self.process.returncode
        return self.crashed

    def alive(self) -> bool:
        return self.process.running

    def wait_alive(self, seconds: float) -> bool:
        alive = self.process.wait_alive(seconds)
        if not alive:
            self.exit_code = self.process.returncode
        return alive

    def bpf_cost(self) -> dict[str, float]:
        return self.process.read_bpf_cost()

    def stop(self) -> None:
        if self.stopped or self.process.proc is None:
            return
        self.stopped = True
        proc = self.process
        if not proc.running:
            self.exit_code = proc.returncode
            self.stop_method = "exited"
            log.info("Tracee already exited (%s)", exit_text(proc.returncode))
            proc.stop(0)  # anything it left in its group
        elif self.tcfg.keep and self.ready:
            self.stop_method = "kept"
            sampler, pid = proc.sampler, proc.pid
            assert sampler is not None and pid is not None  # it runs: started and sampled from its start
            sampler.stop()  # final figures; a kept Tracee is no longer measured
            if proc.bpf is not None:
                proc.bpf.restore()  # the kernel's accounting ends with the run
            for line in kept_message(pid):
                log.info("%s", line)
        else:
            self._terminate(proc)

    def _terminate(self, proc: TracerProcess) -> None:
        """SIGTERM, up to tracee.stop_timeout, then SIGKILL; each step said as Go evt does."""
        timeout = self.durations.stop_timeout_s
        log.info("Stopping Tracee (PID: %d)...", proc.pid)
        log.info("Sending SIGTERM for graceful shutdown...")
        log.info("Waiting up to %s for graceful shutdown...", shown(timeout))
        outcome = proc.stop(timeout)
        self.exit_code = proc.returncode
        self.stop_method = "exited" if outcome is Stop.EXITED else "sigterm" if outcome is Stop.SIGNALLED else "sigkill"
        if outcome is Stop.SIGNALLED:
            log.info("Tracee stopped gracefully")
        elif outcome is Stop.KILLED:
            log.info("Tracee terminated (SIGKILL)")
        elif outcome is Stop.STUCK:
            log.warning("Tracee may still be running after SIGKILL (PID: %d)", proc.pid)

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

import logging
import time
from pathlib import Path

from evt.errors import RunError, UsageError
from evt.procs import ManagedProcess, Stop, exit_text
from evt.config.spec import format_duration
from evt.tracers.tracee.checks import address_problem, already_running_message, binary_problem, running_tracee
from evt.tracers.tracee.command import http_parts
from evt.tracers.tracee.flavour import Flavour
from evt.tracers.tracee.lifecycle import Lifecycle, TraceeDurations
from evt.tracers.tracee.metrics import TraceeServer

log = logging.getLogger(__name__)


def _shown(seconds: float) -> str:
    return format_duration(int(seconds * 1e9))


def kept_message(pid: int) -> list[str]:
    return [
        "",
        "=== Keeping Tracee Running (--keep-tracee) ===",
        f"Tracee is still running (PID: {pid})",
        f"To stop Tracee later, run: sudo kill -TERM {pid}",
    ]


class AutoLifecycle(Lifecycle):
    def __init__(self, tcfg, durations: TraceeDurations, server: TraceeServer, log_path: Path, flavour: Flavour):
        super().__init__()
        self.tcfg = tcfg
        self.flavour = flavour
        self.durations = durations
        self.server = server
        self.log_path: Path = log_path  # always captured here
        self.proc: ManagedProcess | None = None
        self._started_at = 0.0

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
        return [self.proc.pid] if self.proc is not None else []

    def start(self, argv: list[str], json_file: str | None) -> None:
        if json_file:
            Path(json_file).parent.mkdir(parents=True, exist_ok=True)
        log.info("Starting Tracee: %s [%s]", argv[0], " ".join(argv[1:]))  # Go evt prints a Go slice
        log.info("Tracee logs: %s", self.log_path)
        try:
            self.proc = ManagedProcess(argv, self.log_path, outlives_evt=bool(self.tcfg.keep))
        except OSError as exc:
            raise RunError(f"could not start Tracee ({argv[0]}): {exc}") from exc
        self.pid = self.proc.pid
        self.sampler = self.proc.sampler
        self._started_at = time.monotonic()
        log.info("Tracee started with PID: %d", self.pid)

    def wait_ready(self) -> None:
        if self.proc is None:
            raise RunError("Tracee was not started (start() was not called or failed).")
        log.info("Waiting for Tracee to initialize...")
        if self.tcfg.healthz:
            self._wait_healthz()
        elif not self.wait_alive(self.durations.start_grace_s):
            raise RunError(self._crash_message("during start-up"))
        self.ready = True
        self.ready_s = time.monotonic() - self._started_at
        cooldown = self.durations.init_cooldown_s
        if cooldown > 0:
            log.info("Tracee running, waiting %s for stabilization...", _shown(cooldown))
            if not self.wait_alive(cooldown):
                raise RunError(self._crash_message("during the init cooldown"))
        log.info("Tracee initialization complete")
        log.info("Tracee is ready (PID: %d)", self.pid)

    def _wait_healthz(self) -> None:
        timeout = self.durations.ready_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            if not self.wait_alive(0):
                raise RunError(self._crash_message("before it became ready"))
            last = self.server.not_healthy()
            if last is None:
                return
            if time.monotonic() >= deadline:
                tail = "\n".join(self.proc.tail() if self.proc else [])
                raise RunError(
                    f"Tracee did not become ready within {_shown(timeout)}: "
                    f"{self.server.url}/healthz never answered 200 OK (last: {last}).\n\n"
                    f"Tracee log output ({self.log_path}):\n{tail}\n\n"
                    "Give it longer with tracee.ready_timeout=3m, or check that tracee.http_address "
                    "matches the address it listens on; tracee.healthz=false falls back to tracee.start_grace."
                )
            time.sleep(0.1)

    def poll(self) -> str | None:
        if self.crashed or self.stopped or self.proc is None:
            return self.crashed
        ended = self.proc.poll()
        if ended:
            self.exit_code = self.proc.returncode
            self.crashed = f"Tracee {ended} while the units ran; log: {self.log_path}"
            tail = self.proc.tail(3)
            if tail:
                self.crashed += " (last lines: " + " | ".join(tail) + ")"
        return self.crashed

    def alive(self) -> bool:
        return self.proc is not None and self.proc.running

    def wait_alive(self, seconds: float) -> bool:
        if self.proc is None:
            return False
        code = self.proc.wait_exit(seconds)
        if code is None:
            return True
        self.exit_code = code
        return False

    def stop(self) -> None:
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        proc = self.proc
        if not proc.running:
            self.exit_code = proc.returncode
            self.stop_method = "exited"
            log.info("Tracee already exited (%s)", exit_text(proc.returncode))
            proc.stop(0)  # anything it left in its group
        elif self.tcfg.keep and self.ready:
            self.stop_method = "kept"
            proc.sampler.stop()  # final figures; a kept Tracee is no longer measured
            for line in kept_message(proc.pid):
                log.info("%s", line)
        else:
            self._terminate(proc)

    def _terminate(self, proc: ManagedProcess) -> None:
        """SIGTERM, up to tracee.stop_timeout, then SIGKILL; each step said as Go evt does."""
        timeout = self.durations.stop_timeout_s
        log.info("Stopping Tracee (PID: %d)...", proc.pid)
        log.info("Sending SIGTERM for graceful shutdown...")
        log.info("Waiting up to %s for graceful shutdown...", _shown(timeout))
        outcome = proc.stop(timeout, before_kill=lambda: log.warning(
            "Tracee did not stop within %s, sending SIGKILL...", _shown(timeout)))
        self.exit_code = proc.returncode
        self.stop_method = "exited" if outcome is Stop.EXITED else "sigterm" if outcome is Stop.SIGNALLED else "sigkill"
        if outcome is Stop.SIGNALLED:
            log.info("Tracee stopped gracefully")
        elif outcome is Stop.KILLED:
            log.info("Tracee terminated (SIGKILL)")
        elif outcome is Stop.STUCK:
            log.warning("Tracee may still be running after SIGKILL (PID: %d)", proc.pid)

    def _crash_message(self, when: str) -> str:
        tail = self.proc.tail() if self.proc is not None else []
        msg = f"tracee finished {when}: {exit_text(self.exit_code)}"
        if tail:
            msg += f"\n\nTracee log output ({self.log_path}, last {len(tail)} lines):\n" + "\n".join(tail)
        else:
            msg += f"\n\nTracee log file: {self.log_path} (empty)"
        return msg

"""tracee.auto=false (`--auto-tracee=false`): the user starts Tracee.

evt prints the scope filter and a command line to run in another terminal, waits for
ENTER (MANUAL_PROMPT, asked by the session), then measures what it finds: it scrapes
the configured metrics endpoint if it answers and samples the running `tracee` process
if there is exactly one. It never stops the user's Tracee.
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path

from evt.errors import UsageError
from evt.procs import ProcessSampler
from evt.resource_series import SERIES_FILE
from evt.stress.plan import Unit
from evt.tracers.tracee.checks import alive, find_tracee_processes
from evt.tracers.tracee.command import render_command, scopes_for
from evt.tracers.tracee.flavour import Flavour
from evt.tracers.tracee.lifecycle import Lifecycle
from evt.tracers.tracee.metrics import endpoints

log = logging.getLogger(__name__)

MANUAL_PROMPT = "Press ENTER when Tracee is ready to continue..."


def manual_instructions(tcfg, units: list[Unit], run_dir: Path, flavour: Flavour, runner: str | None) -> list[str]:
    """What Tracee's Go evt prints with --auto-tracee=false: the scope filter and the
    Tracee command line (tracee.binary, output, server flags) to start by hand."""
    lines = []
    for scope in scopes_for(units, runner):
        what = "Container scope filter" if scope.startswith("container=") else "Process tree scope filter"
        lines.append(f"{what}: --scope {scope}")
    argv = render_command(tcfg, units, run_dir, flavour, runner=runner)
    lines += ["", "Please start Tracee in another terminal with:", f"  sudo {shlex.join(argv)}"]
    return lines


class ManualLifecycle(Lifecycle):
    def __init__(self, tcfg, run_dir: Path, flavour: Flavour, runner: str | None):
        super().__init__()
        self.flavour = flavour
        self.tcfg = tcfg
        self.run_dir = run_dir
        self.runner = runner

    def check(self) -> None:
        if self.tcfg.keep:
            raise UsageError(
                "--keep-tracee requires --auto-tracee=true (cannot keep tracee running if evt stress didn't start it)"
            )

    def instructions(self, units: list[Unit]) -> list[str]:
        return manual_instructions(self.tcfg, units, self.run_dir, self.flavour, self.runner)

    def prompt(self) -> str:
        return MANUAL_PROMPT

    def start(self, argv: list[str], json_file: str | None) -> None:
        return None  # the user starts it, from instructions()

    def wait_ready(self) -> None:
        """The user said it is ready: sample it if exactly one Tracee runs."""
        found = find_tracee_processes()
        if len(found) == 1:
            self.pid = found[0][0]
            self.sampler = ProcessSampler(self.pid, series_path=self.run_dir / "tracer" / SERIES_FILE).start()
            log.info("Sampling the running Tracee (PID: %d) for CPU and memory", self.pid)
        self.ready = True

    def poll(self) -> str | None:
        if self.crashed or self.stopped:
            return self.crashed
        if self.pid is not None and not alive(self.pid):
            self.crashed = f"the Tracee process {self.pid} (started by you) exited while the units ran"
        return self.crashed

    def alive(self) -> bool:
        return True  # the user's Tracee: try its endpoint whatever evt knows of its process

    def wait_alive(self, seconds: float) -> bool:
        time.sleep(max(0.0, seconds))
        return True

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.stop_method = "manual"
        if self.sampler:
            self.sampler.stop()
        for line in [
            "",
            "=== Tracee Management (--auto-tracee=false) ===",
            "Tracee was manually started by you.",
            "You are responsible for stopping it when done.",
            *endpoints(self.tcfg),
        ]:
            log.info("%s", line)

"""Units as host processes: each in its own process group (session) and, where the host
has cgroup v2, in its own cgroup evt-<run_id>/<unit>, entered before it forks workers,
so tracers can be scoped to it exactly. For machines without Docker and fast tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from evt import faults, host
from evt.errors import UsageError
from evt.procs import KILL_WAIT_S, signals_held, stop_group
from evt.runners.base import Runner, UnitState
from evt.stress import runstate
from evt.stress.plan import RunContext, Unit


def evt_executable() -> str:
    """The evt console script beside this interpreter (the virtualenv's)."""
    candidate = Path(sys.executable).parent / "evt"
    return str(candidate) if candidate.exists() else "evt"


class LocalRunner(Runner):
    name = "local"

    def __init__(self, run: RunContext, **settings):
        super().__init__(run, **settings)
        self.procs: dict[str, subprocess.Popen] = {}
        self.cgroup_dir: Path | None = None
        self.marker_dirs: list[str] = []

    def check(self, units: list[Unit]) -> None:
        from evt.workload.catalog import get_trigger

        for unit in units:  # units run here, so every need is checked on this host
            get_trigger(unit.event).require(unit.mode)
        if self.settings.memory is not None:
            raise UsageError("runner.memory limits containers: use it with runner=docker.")

    def barrier_in_unit(self) -> str:
        return str(self.barrier_path)

    def _unit_cgroup(self, unit: Unit) -> Path | None:
        root = host.cgroup2_root()
        if root is None:
            return None
        try:
            if self.cgroup_dir is None:
                self.cgroup_dir = root / f"evt-{self.run_id}"
                self.cgroup_dir.mkdir(exist_ok=True)
                runstate.add_cgroup(self.run_id, str(self.cgroup_dir))
            path = self.cgroup_dir / unit.name
            path.mkdir(exist_ok=True)
            return path
        except OSError:
            return None  # not root, or a read-only cgroupfs: scope by pid tree instead

    def start(self, units: list[Unit]) -> None:
        self.make_barrier()
        executable = evt_executable()
        for unit in units:
            state = self.add_state(unit)
            cgroup = self._unit_cgroup(unit)
            procs_file = str(cgroup / "cgroup.procs") if cgroup else None

            def enter_cgroup(procs_file: str | None = procs_file) -> None:
                # runs in the child between fork and exec: before any worker exists
                signal.pthread_sigmask(signal.SIG_SETMASK, [])  # held by signals_held() for the fork
                if procs_file:
                    with open(procs_file, "w") as f:
                        f.write(str(os.getpid()))

            with signals_held():
                proc = subprocess.Popen(
                    [executable, *unit.argv[1:]],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=enter_cgroup,
                )
            self.procs[unit.name] = proc
            self.marker_dirs.append(unit.marker.dir)
            runstate.add_process(self.run_id, proc.pid, f"unit:{unit.name}")
            unit.pid = proc.pid
            unit.cgroup_path = str(cgroup) if cgroup else None
            faults.start_thread(self._follow, proc, state, name=f"out-{unit.name}")

    def _follow(self, proc: subprocess.Popen, state: UnitState) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            state.feed(raw.decode(errors="replace"))
        self.unit_exited(state, proc.wait())

    def cleanup(self) -> None:
        for proc in self.procs.values():  # a unit still running at cleanup is not waited for
            stop_group(proc, timeout_s=KILL_WAIT_S, first_signal=signal.SIGKILL)
        if self.cgroup_dir is not None:
            remove_cgroup_tree(self.cgroup_dir)
        for marker_dir in self.marker_dirs:  # a killed unit cannot remove its own
            shutil.rmtree(marker_dir, ignore_errors=True)
        self.remove_barrier()


def remove_cgroup_tree(path: Path, timeout_s: float = 5.0) -> None:
    """Kill what is left in a run's cgroups, then remove them (children first)."""
    if not path.is_dir():
        return
    for child in [*sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True), path]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                pids = [int(p) for p in (child / "cgroup.procs").read_text().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                child.rmdir()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)  # killed processes leave the cgroup asynchronously

"""How busy the machine was with other work while a bench round ran.

A bench measures a tracer's capacity; CPU other processes take during a round is CPU the
tracer and the workload did not get, so a figure from a loaded machine is not the
tracer's. Over one stress run this takes, with psutil, the CPU the whole machine used
(busy time of all cores) minus what the run used itself:
- evt and its children (a tracer binary, local workers), counted through evt's own CPU and
  its reaped children's, which by the end of a run are all of them;
- the workers inside the run's containers (the docker runner): their own CPU figures, as
  the run reports them (`workers_cpu_s`);
- a Tracee that evt did not start (tracee.auto=false): the CPU the run sampled for it;
- the container engine's daemons (dockerd, containerd): starting and removing the run's
  containers is their work for the run.
What is left is other work; `other_cpu_cores` is it over the run's wall time."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

NOISY_CORES = 0.5  # rounds that saw more other work than this are not a quiet-machine figure
ENGINE_DAEMONS = ("dockerd", "containerd")


def _busy_s() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _own_s() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _engine_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ENGINE_DAEMONS:
            found.append(proc)
    return found


def _cpu_of(procs: list[psutil.Process]) -> dict[int, float]:
    cpu = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cpu[proc.pid] = times.user + times.system
    return cpu


@dataclass
class RoundLoad:
    """The machine's load over one stress run."""

    wall_s: float
    other_cpu_s: float
    load_avg_1m: float

    @property
    def other_cpu_cores(self) -> float:
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class LoadMeter:
    """Started before a stress run, finished after it with the CPU the run accounted for
    outside evt's own process tree (workers in containers, a Tracee evt did not start)."""

    def __init__(self) -> None:
        self._engine = _engine_processes()
        self._t0 = time.monotonic()
        self._busy0 = _busy_s()
        self._own0 = _own_s()
        self._engine0 = _cpu_of(self._engine)

    def finish(self, run_cpu_outside_evt_s: float) -> RoundLoad:
        wall = time.monotonic() - self._t0
        busy = _busy_s() - self._busy0
        own = _own_s() - self._own0
        engine_now = _cpu_of(self._engine)
        engine = sum(engine_now[pid] - self._engine0[pid] for pid in engine_now if pid in self._engine0)
        other = max(0.0, busy - own - engine - run_cpu_outside_evt_s)
        return RoundLoad(wall_s=wall, other_cpu_s=other, load_avg_1m=os.getloadavg()[0])

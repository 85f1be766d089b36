"""How busy the machine was with other work while a bench round ran.

A bench measures a tracer's capacity; CPU other processes take during a round is CPU the
tracer and the workload did not get, so a figure from a loaded machine is not the
tracer's. Over one stress run's measured window this takes, with psutil, the CPU the whole machine used
(busy time of all cores) minus what the run used itself:
- evt and its children (a tracer binary, local workers), counted through evt's own CPU and
  its reaped children's, which by the end of a run are all of them;
- the workers inside the run's containers (the docker runner): their own CPU figures, as
  the run reports them (`workers_cpu_s`);
- a Tracee that evt did not start (tracee.auto=false): the CPU the run sampled for it;
- the container engine's daemons (dockerd, containerd): starting and removing the run's
  containers is their work for the run.
What is left is other work; `other_cpu_cores` is it over the run's measured window."""

from __future__ import annotations

import os
import threading
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
    """The machine's load over one stress run's measured window."""

    wall_s: float
    other_cpu_s: float
    load_avg_1m: float

    @property
    def other_cpu_cores(self) -> float:
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class _Sample:
    t_ns: int  # time.time_ns(), the clock of a run's released_ns
    busy_s: float
    own_s: float
    engine: dict[int, float]
    load_avg_1m: float


class LoadMeter:
    """Samples the machine's CPU from before a stress run to after it, in its own thread;
    `finish` gives the other work over the run's measured window (its release to its
    units' end), when the workload competes for the CPU: the containers' start and removal
    before and after it are left out."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self._engine = _engine_processes()
        self._interval_s = interval_s
        self._samples: list[_Sample] = [self._sample()]
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)
        self._thread.start()

    def _sample(self) -> _Sample:
        return _Sample(time.time_ns(), _busy_s(), _own_s(), _cpu_of(self._engine), os.getloadavg()[0])

    def _run(self) -> None:
        while not self._halt.wait(self._interval_s):
            self._samples.append(self._sample())

    def finish(self, run_cpu_outside_evt_s: float, window_ns: tuple[int, int] | None = None) -> RoundLoad:
        """The other work between the samples that bracket window_ns (the whole run when
        None); run_cpu_outside_evt_s is what the run itself used outside evt's process tree
        in that window."""
        self._halt.set()
        self._thread.join(timeout=5)
        self._samples.append(self._sample())
        first, last = self._samples[0], self._samples[-1]
        if window_ns is not None:
            first = max((s for s in self._samples if s.t_ns <= window_ns[0]), key=lambda s: s.t_ns, default=first)
            last = min((s for s in self._samples if s.t_ns >= window_ns[1]), key=lambda s: s.t_ns, default=last)
        engine = sum(last.engine[pid] - first.engine[pid] for pid in last.engine if pid in first.engine)
        other = last.busy_s - first.busy_s - (last.own_s - first.own_s) - engine - run_cpu_outside_evt_s
        return RoundLoad(
            wall_s=(last.t_ns - first.t_ns) / 1e9, other_cpu_s=max(0.0, other), load_avg_1m=last.load_avg_1m
        )

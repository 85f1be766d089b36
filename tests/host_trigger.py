"""Real `evt trigger` units on the host, held at a start barrier while a tracer starts:
how the tracer tests drive a real tracer with marker-carrying native workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import EVT
from evt.catalog import get_trigger
from evt.marker import Marker
from evt.plan import Unit


class HostTrigger:
    """`evt trigger -e EVENT --run-id RUN --start-fifo FIFO`: workers wait at the barrier."""

    def __init__(self, fifo: Path, run_id: str, event: str, ops: int, workers: int = 1, sleep: str = "0",
                 name: str | None = None, preexec_fn=None):
        self.event, self.ops, self.workers = event, ops, workers
        self.marker = Marker.for_run(run_id, event)
        self.name = name or event
        self.proc = subprocess.Popen(
            [str(EVT), "trigger", "-e", event, "-o", str(ops), "-p", str(workers), "-s", sleep, "--json",
             "--run-id", run_id, "--start-fifo", str(fifo)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn,
        )
        line = self.proc.stdout.readline()
        assert "Waiting at start barrier" in line, line + self.proc.stderr.read()

    def unit(self, name: str | None = None, **scope) -> Unit:
        target = get_trigger(self.event).modes["native"].target.rendered(self.event, self.marker)
        return Unit(name=name or self.name, event=self.event, mode="native", instances=self.workers, ops=self.ops,
                    sleep="0", marker=self.marker, target=target, argv=[], **scope)

    def finish(self, timeout: float = 120) -> dict:
        """The trigger's JSON result; it must have succeeded."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return json.loads(out.splitlines()[-1].split("] ", 1)[1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def barrier(tmp_path: Path) -> Path:
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    return fifo


def release(fifo: Path) -> None:
    """Open and close the barrier: every waiting worker starts."""
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# Host noise released by the same barrier as the units. A near miss: opens of the unit's
# marker file under another comm, then of another file under the unit's marker comm. An
# impostor: opens of the marker file under the marker comm, from outside the unit's scope.
NOISE = """
import ctypes, os, select, sys, time
fifo, path, comm, ops, kind = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
os.makedirs(os.path.dirname(path), exist_ok=True)
open(path, "ab").close()
print("ready", flush=True)
poller = select.poll()
poller.register(fd, select.POLLIN | select.POLLHUP)
poller.poll(60000)
if kind == "impostor":
    ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
for _ in range(ops):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError:
        pass  # the unit removed its marker directory when it ended: the open was still made
    time.sleep(0.0001)  # at the units' pace: noise, not a flood
ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
for _ in range(ops if kind == "near-miss" else 0):
    os.close(os.open(sys.executable, os.O_RDONLY))
    time.sleep(0.0001)
print("done", flush=True)
"""


class Noise:
    def __init__(self, fifo: Path, marker: Marker, ops: int, kind: str = "near-miss"):
        self.proc = subprocess.Popen([sys.executable, "-c", NOISE, str(fifo), marker.file, marker.comm, str(ops), kind],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def finish(self) -> None:
        assert self.proc.communicate(timeout=60)[0].strip() == "done"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def trace(tracer, fifo: Path, triggers: list[HostTrigger], noise: Noise | None = None,
          units: list[Unit] | None = None, **scope):
    """Start the tracer on the units (by default the triggers' own), release the triggers
    (and the noise), wait until every op succeeded, stop the tracer: its report.
    Everything is stopped whatever happens."""
    units = units or [t.unit(**scope) for t in triggers]
    try:
        tracer.check(units)
        tracer.start(units)
        tracer.wait_ready()
        release(fifo)
        for trig in triggers:
            assert trig.finish()["ok"] == trig.ops * trig.workers
        if noise is not None:
            noise.finish()
        tracer.stop()
        return tracer.report(units)
    finally:
        for proc in [*triggers, *([noise] if noise else [])]:
            proc.kill()
        tracer.stop()

"""What a trigger's workers run: the source of their ops, chosen once per run (NativeOps or
ScriptOps, by the trigger's mode), and a WorkerSpec, everything one worker needs.

An op source is prepared once in the parent, before the fork (a script rendered, the
marker directory made); in each worker, open() sets up and returns the op, begin() and
end() bracket the op loop (the marker comm is taken only around it, so the set-up and
close syscalls do not carry it).
"""

from __future__ import annotations

import mmap
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from evt import linux
from evt.workload.actions import ACTIONS
from evt.workload.actions.base import Action
from evt.workload.catalog import Trigger
from evt.workload.marker import Marker
from evt.workload.pacing import Pacing


class NativeOps:
    """Ops made by a native action (evt/workload/actions/), in the worker's own process."""

    def __init__(self, trigger: Trigger, marker: Marker):
        self.action_class = ACTIONS[str(trigger.mode("native").action)]
        self.marker = marker
        self.action: Action | None = None
        self.own_comm = ""

    def prepare(self) -> None:
        os.makedirs(self.marker.dir, exist_ok=True)

    def open(self) -> Callable[[], None]:
        self.action = self.action_class(self.marker)
        self.action.setup()
        return self.action.op

    def begin(self) -> None:
        self.own_comm = linux.get_comm()
        linux.set_comm(self.marker.comm)

    def end(self) -> None:
        linux.set_comm(self.own_comm)
        if self.action is not None:
            self.action.close()


class ScriptOps:
    """Ops that run the trigger's script (rendered once per run) as a child process."""

    def __init__(self, trigger: Trigger, mode: str, marker: Marker):
        self.trigger, self.mode, self.marker = trigger, mode, marker
        self.path = ""

    def prepare(self) -> None:
        self.path = prepare_script(self.trigger, self.mode, self.marker)

    def open(self) -> Callable[[], None]:
        return script_op(self.path)

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass


OpSource = NativeOps | ScriptOps


def op_source(trigger: Trigger, mode: str, marker: Marker) -> OpSource:
    """The op source of a trigger run in `mode` (native, or one of its script modes)."""
    return NativeOps(trigger, marker) if mode == "native" else ScriptOps(trigger, mode, marker)


def prepare_script(trigger: Trigger, mode: str, marker: Marker) -> str:
    """Render the trigger's script once per run into the marker directory, named
    <event>.sh (its comm, the script's name, is what the bypass flags expect)."""
    text = trigger.script(mode, marker)
    os.makedirs(marker.dir, exist_ok=True)
    path = os.path.join(marker.dir, f"{trigger.event}.sh")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def script_op(path: str) -> Callable[[], None]:
    argv = [path]
    env = dict(os.environ)
    spawn, waitpid, exitcode = os.posix_spawn, os.waitpid, os.waitstatus_to_exitcode
    # the script starts with default signal handling, as from a shell: Python ignores
    # SIGPIPE and SIGXFSZ, and the start gate may have blocked SIGUSR1 in this worker
    defaults = (signal.SIGPIPE, signal.SIGXFSZ)

    def op() -> None:
        status = waitpid(spawn(path, argv, env, setsigdef=defaults, setsigmask=()), 0)[1]
        if status:
            raise OSError(f"{os.path.basename(path)} exited with status {exitcode(status)}")

    return op


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker of a trigger run needs, the same for all but its index."""

    source: OpSource
    ops: int
    pacing: Pacing
    start_fds: tuple[int, ...]  # the parent's pipe (EOF) or the shared FIFO barrier (HUP)
    result_fd: int  # one JSON line of the worker's figures
    progress: mmap.mmap  # a slot of 8 bytes per worker: its ops done so far
    first_op_pause_s: float = 0.0

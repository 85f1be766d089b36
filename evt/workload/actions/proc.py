"""Native actions on processes: ptrace, exec, fork, exit, namespaces."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal

from evt.linux import check, die_with_parent, libc, set_comm
from evt.workload.actions.base import Action

libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_PEEKUSER = 3
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
CLONE_NEWUTS = 0x04000000


class Ptrace(Action):
    """PTRACE_PEEKUSER on a child seized once per worker: one ptrace syscall per op."""

    name = "ptrace"

    child = 0

    def setup(self) -> None:
        super().setup()
        worker = os.getpid()
        self.child = os.fork()
        if self.child == 0:  # the tracee: sleeps until the worker kills it
            try:
                # dies with the worker, even when the worker is killed before close(), and
                # holds none of its output pipes (a reader would wait for their EOF forever)
                die_with_parent(signal.SIGKILL)
                if os.getppid() != worker:
                    os._exit(0)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                while True:
                    signal.pause()
            finally:
                os._exit(0)
        check(libc.ptrace(PTRACE_SEIZE, self.child, None, None), "ptrace(PTRACE_SEIZE)")
        check(libc.ptrace(PTRACE_INTERRUPT, self.child, None, None), "ptrace(PTRACE_INTERRUPT)")
        os.waitpid(self.child, getattr(os, "__WALL", 0x40000000))

    def op(self) -> None:
        ctypes.set_errno(0)
        result = libc.ptrace(PTRACE_PEEKUSER, self.child, None, None)
        if result == -1 and ctypes.get_errno():
            check(-1, "ptrace(PTRACE_PEEKUSER)")

    def close(self) -> None:
        if self.child:
            os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)
            self.child = 0


class Exec(Action):
    """posix_spawn of /bin/true through the marker symlink: one exec (and fork, exit) per op."""

    name = "exec"

    def setup(self) -> None:
        super().setup()
        true = shutil.which("true") or "/bin/true"
        self.exe, self.argv = self.marker.exe, [self.marker.exe]
        if not os.path.islink(self.exe):
            os.symlink(true, self.exe)

    def op(self) -> None:
        pid = os.posix_spawn(self.exe, self.argv, {})
        _, status = os.waitpid(pid, 0)
        if status:
            raise OSError(f"{self.exe} exited with status {os.waitstatus_to_exitcode(status)}")


class Fork(Action):
    """fork(); the child exits at once: one sched_process_fork per op."""

    name = "fork"

    def op(self) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)


class Exit(Action):
    """fork(); the child takes the marker child comm and exits: one sched_process_exit per op."""

    name = "exit"

    def op(self) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                set_comm(self.marker.child_comm)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


class UnshareUts(Action):
    """unshare(CLONE_NEWUTS): the worker moves to a new UTS namespace, one switch_task_ns per op."""

    name = "unshare_uts"

    def op(self) -> None:
        check(libc.unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)")


ACTIONS = [Ptrace, Exec, Fork, Exit, UnshareUts]  # this family's actions, registered by evt.workload.actions

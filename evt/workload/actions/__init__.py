"""Native trigger actions: one op is a few syscalls made from Python, no shell, no exec.

Each action registers under a name the catalog YAMLs refer to (`action: file_open`).
setup() runs before the op loop, op() once per op (raising OSError on failure), close()
after it. Workers rename themselves to the run's marker comm only around the op loop, so
the setup and close syscalls are not counted as target events.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import signal
import socket
from collections.abc import Callable

from evt.workload.marker import Marker

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.syscall.restype = ctypes.c_long

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
PTRACE_PEEKUSER = 3
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
CLONE_NEWUTS = 0x04000000
IN_ACCESS = 0x1
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1
NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def set_comm(name: str) -> None:
    """prctl(PR_SET_NAME): the comm tracers see for this process."""
    _check(_libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


def get_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


class Action:
    """One native trigger action; subclasses override op() and, where needed, setup/close."""

    def __init__(self, marker: Marker):
        self.marker = marker

    def setup(self) -> None:
        os.makedirs(self.marker.dir, exist_ok=True)

    def op(self) -> None:  # pragma: no cover - every registered action overrides it
        raise NotImplementedError

    def close(self) -> None:
        pass


ACTIONS: dict[str, type[Action]] = {}


def action(name: str) -> Callable[[type[Action]], type[Action]]:
    def register(cls: type[Action]) -> type[Action]:
        if name in ACTIONS:
            raise ValueError(f"native action {name!r} registered twice")
        ACTIONS[name] = cls
        return cls

    return register


def _touch(path: str) -> None:
    with open(path, "ab"):
        pass


@action("file_open")
class FileOpen(Action):
    """openat(marker file) + close: one security_file_open per op."""

    def setup(self) -> None:
        super().setup()
        self.path = self.marker.file  # Marker's paths are properties: resolve once, not per op
        _touch(self.path)

    def op(self) -> None:
        os.close(os.open(self.path, os.O_RDONLY))


@action("ptrace")
class Ptrace(Action):
    """PTRACE_PEEKUSER on a child seized once per worker: one ptrace syscall per op."""

    child = 0

    def setup(self) -> None:
        super().setup()
        worker = os.getpid()
        self.child = os.fork()
        if self.child == 0:  # the tracee: sleeps until the worker kills it
            try:
                # dies with the worker, even when the worker is killed before close(), and
                # holds none of its output pipes (a reader would wait for their EOF forever)
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
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
        _check(_libc.ptrace(PTRACE_SEIZE, self.child, None, None), "ptrace(PTRACE_SEIZE)")
        _check(_libc.ptrace(PTRACE_INTERRUPT, self.child, None, None), "ptrace(PTRACE_INTERRUPT)")
        os.waitpid(self.child, getattr(os, "__WALL", 0x40000000))

    def op(self) -> None:
        ctypes.set_errno(0)
        result = _libc.ptrace(PTRACE_PEEKUSER, self.child, None, None)
        if result == -1 and ctypes.get_errno():
            _check(-1, "ptrace(PTRACE_PEEKUSER)")

    def close(self) -> None:
        if self.child:
            os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)
            self.child = 0


@action("exec")
class Exec(Action):
    """posix_spawn of /bin/true through the marker symlink: one exec (and fork, exit) per op."""

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


@action("fork")
class Fork(Action):
    """fork(); the child exits at once: one sched_process_fork per op."""

    def op(self) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)


@action("exit")
class Exit(Action):
    """fork(); the child takes the marker child comm and exits: one sched_process_exit per op."""

    def op(self) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                set_comm(self.marker.child_comm)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


@action("socket_create")
class SocketCreate(Action):
    """socket(AF_INET, SOCK_DGRAM) + close: one security_socket_create per op."""

    def op(self) -> None:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()


@action("socket_connect")
class SocketConnect(Action):
    """connect() of a UDP socket to 127.0.0.1:<marker port>: no packet leaves, one connect per op."""

    sock: socket.socket | None = None

    def setup(self) -> None:
        super().setup()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def op(self) -> None:
        assert self.sock is not None
        self.sock.connect(("127.0.0.1", self.marker.port))

    def close(self) -> None:
        if self.sock:
            self.sock.close()


@action("socket_bind")
class SocketBind(Action):
    """socket + bind(127.0.0.1:0) + close: one security_socket_bind per op."""

    def op(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))


@action("socket_dup")
class SocketDup(Action):
    """socket(AF_INET, SOCK_DGRAM) + dup() + close both: one socket_dup per op.

    libc's dup(), not os.dup(): Python duplicates with fcntl(F_DUPFD_CLOEXEC), which Tracee's
    socket_dup (a dup/dup2/dup3 exit hook) does not see."""

    def op(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            os.close(_check(_libc.dup(sock.fileno()), "dup"))


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("regs", ctypes.c_uint8), ("off", ctypes.c_int16), ("imm", ctypes.c_int32)]


class _BpfProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("_rest", ctypes.c_uint8 * 64),  # later fields of union bpf_attr, all zero
    ]


@action("bpf_prog_load")
class BpfProgLoad(Action):
    """BPF_PROG_LOAD of `r0 = 0; exit` (a socket filter) + close: one security_bpf_prog per op."""

    def setup(self) -> None:
        super().setup()
        if NR_BPF is None:
            raise OSError(f"bpf syscall number unknown on {platform.machine()}")
        self._insns = (_BpfInsn * 2)(_BpfInsn(0xB7, 0, 0, 0), _BpfInsn(0x95, 0, 0, 0))
        self._license = ctypes.create_string_buffer(b"GPL")
        self._attr = _BpfProgLoadAttr(
            prog_type=BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt=2,
            insns=ctypes.addressof(self._insns),
            license=ctypes.addressof(self._license),
            prog_name=f"evt_{self.marker.token}".encode(),
        )

    def op(self) -> None:
        fd = _check(
            _libc.syscall(NR_BPF, BPF_PROG_LOAD, ctypes.byref(self._attr), ctypes.sizeof(self._attr)),
            "bpf(BPF_PROG_LOAD)",
        )
        os.close(fd)


@action("symlink")
class Symlink(Action):
    """symlink + unlink of a link in the marker directory: one security_inode_symlink per op."""

    def setup(self) -> None:
        super().setup()
        self.target = self.marker.file
        self.link = f"{self.marker.dir}/link-{os.getpid()}"

    def op(self) -> None:
        os.symlink(self.target, self.link)
        os.unlink(self.link)


@action("unlink")
class Unlink(Symlink):
    """The same symlink + unlink; the target event is the unlink."""


@action("magic_write")
class MagicWrite(Action):
    """pwrite of an ELF magic at offset 0 of the marker file: one magic_write per op."""

    fd = -1

    def setup(self) -> None:
        super().setup()
        self.fd = os.open(f"{self.marker.dir}/magic-{os.getpid()}", os.O_WRONLY | os.O_CREAT, 0o600)

    def op(self) -> None:
        os.pwrite(self.fd, b"\x7fELF", 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


@action("truncate")
class Truncate(MagicWrite):
    """ftruncate(fd, 0) of a file in the marker directory: one do_truncate per op."""

    def op(self) -> None:
        os.ftruncate(self.fd, 0)


@action("unshare_uts")
class UnshareUts(Action):
    """unshare(CLONE_NEWUTS): the worker moves to a new UTS namespace, one switch_task_ns per op."""

    def op(self) -> None:
        _check(_libc.unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)")


@action("inotify_watch")
class InotifyWatch(Action):
    """inotify_add_watch on the marker directory: one security_path_notify per op."""

    fd = -1

    def setup(self) -> None:
        super().setup()
        self.fd = _check(_libc.inotify_init1(os.O_CLOEXEC), "inotify_init1")
        self._path = self.marker.dir.encode()

    def op(self) -> None:
        _check(_libc.inotify_add_watch(self.fd, self._path, IN_ACCESS), "inotify_add_watch")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)

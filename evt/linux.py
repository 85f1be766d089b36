"""Linux process controls evt uses in its own and its workers' processes: prctl(2) for
the process name (comm), the parent-death signal and the timer slack, through libc.

libc and its prctl are looked up when this module is imported, in evt: a forked child of
a threaded process must not dlopen (another thread may hold the loader's lock), so code
that runs between fork and exec only calls what is already resolved here.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_TIMERSLACK = 29

libc = ctypes.CDLL(None, use_errno=True)
_prctl = libc.prctl


def check(result: int, what: str) -> int:
    """A libc call's result; OSError with errno's text when it failed (< 0)."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def set_comm(name: str) -> None:
    """prctl(PR_SET_NAME): the comm tracers see for this process (cut to 15 bytes)."""
    check(_prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


def get_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """prctl(PR_SET_PDEATHSIG): `sig` when the parent thread dies. The caller checks
    os.getppid() afterwards: a parent that died before the call sends nothing."""
    _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def set_timer_slack(ns: int) -> None:
    """prctl(PR_SET_TIMERSLACK): how late the kernel may wake this thread's sleeps (50 us by
    default, which would stretch sub-50us sleeps)."""
    _prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)

"""Errors in the threads that serve a run (following a unit's output, sampling the tracer,
writing a file) end the run at once, named.

An exception in a plain thread is printed as a traceback and lost: the run goes on
without the thread's work and fails later on something else (a timeout, a missing
figure). A thread started with `start_thread` records its error instead, and while a run
`watch`es, the error is delivered to the main thread by a signal: the signal interrupts
whatever the main thread waits on (a sleep, a poll, a lock) and its handler raises
`ThreadFault`, which the run records as its failure, then cleans up as after any error.

ThreadFault is a BaseException, as KeyboardInterrupt is: the code it interrupts may catch
Exception to carry on (a tracer's readiness poll), and must not swallow it.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Callable

FAULT_SIGNAL = signal.SIGUSR2  # the orchestrator itself uses no SIGUSR2
log = logging.getLogger("evt.faults")

_lock = threading.Lock()
_faults: list[str] = []
_watcher: int | None = None  # the thread ident to interrupt, while a run watches
_raised = False  # the watcher has been interrupted once: a second fault must not cut its handling short


class ThreadFault(BaseException):
    """A thread serving the run failed; `message` names the thread and its error."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def start_thread(target: Callable[..., None], *args: object, name: str) -> threading.Thread:
    """A daemon thread running target(*args) whose error, if any, becomes the run's fault."""

    def serve() -> None:
        try:
            target(*args)
        except BaseException as exc:
            report(name, exc)

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    return thread


def report(name: str, exc: BaseException) -> None:
    """Record that thread `name` failed with `exc`; interrupt the watching run."""
    message = f"thread {name} failed: {type(exc).__name__}: {exc}"
    log.debug("%s\n%s", message, "".join(traceback.format_exception(exc)))
    with _lock:  # held while signalling: once pause() has returned, no signal is sent
        _faults.append(message)
        if _watcher is not None:
            try:
                signal.pthread_kill(_watcher, FAULT_SIGNAL)
            except (ProcessLookupError, OSError):  # the watcher has gone: the fault stays recorded
                pass


def first() -> str | None:
    """The first fault recorded since the current watch began (None: none)."""
    with _lock:
        return _faults[0] if _faults else None


def _raise_fault(_signum, _frame) -> None:
    global _raised
    message = first()
    if message is not None and not _raised:
        _raised = True
        raise ThreadFault(message)


class watch:
    """While active (a run's phases), a fault interrupts this (the main) thread with
    ThreadFault; faults recorded before it began are forgotten. `pause()` stops the
    interrupting (cleanup must complete) while faults are still recorded."""

    def __enter__(self) -> watch:
        global _watcher, _raised
        self._previous = signal.signal(FAULT_SIGNAL, _raise_fault)  # before any signal can come
        with _lock:
            _faults.clear()
            _raised = False
            _watcher = threading.get_ident()
        return self

    def pause(self) -> None:
        global _watcher
        with _lock:
            _watcher = None
        signal.signal(FAULT_SIGNAL, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        self.pause()
        signal.signal(FAULT_SIGNAL, self._previous)

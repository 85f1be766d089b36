"""Ctrl+C and SIGTERM during a stress run: the first one interrupts whichever phase runs;
later ones only say that the cleanup goes on (evt.stress.session installs the handler)."""

from __future__ import annotations

import os
import signal


class Interrupted(BaseException):
    """Ctrl+C or SIGTERM: stop, clean up, record a partial result."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


def raise_interrupted(signum, _frame):
    # the handler swap comes first: a second signal during the unwinding and the cleanup
    # must not raise again (it would cut the cleanup short)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, still_cleaning_up)
    raise Interrupted(signal.Signals(signum).name)


def still_cleaning_up(signum, _frame):
    # written straight to the terminal, not logged: the signal may arrive in the middle of
    # a write to the same stream, and a buffered stream refuses a reentrant write
    try:
        os.write(
            2, f"{signal.Signals(signum).name} again: still cleaning up, which completes whatever arrives\n".encode()
        )
    except OSError:
        pass

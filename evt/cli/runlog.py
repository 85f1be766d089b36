"""One log for a stress run: every message goes through `logging` (loggers under `evt.`)
and reaches both the terminal and `evt.log` in the run directory.

The handlers are declared in Hydra's job_logging (conf/config.yaml): the root logger
writes evt.log with a timestamp, level and logger name per line; the `evt` logger also
prints each message as it is, without decoration, on the terminal (rich), infos on
stdout and warnings and errors on stderr, as Tracee's Go evt prints them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from rich.console import Console


def make_console() -> Console:
    """A terminal gets its own width; a pipe or log gets tables wide enough to read."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


class TerminalHandler(logging.Handler):
    """Prints the plain message text: argv, filters and paths are data, never markup."""

    def __init__(self, level: int = logging.NOTSET):
        super().__init__(level)
        # no file given: rich writes to sys.stdout / sys.stderr as they are at print time
        self.out = Console(soft_wrap=True, markup=False, highlight=False, emoji=False)
        self.err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False, emoji=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console = self.err if record.levelno >= logging.WARNING else self.out
            console.print(record.getMessage())
            console.file.flush()
        except Exception:
            self.handleError(record)


class RunLogFile(logging.FileHandler):
    """evt.log. A full or vanished filesystem must not print logging's traceback for every
    later message: the terminal still gets them all, and the run says once why its results
    could not be written (StressSession._write_results)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # what is still buffered cannot be written either
            super().close()


@contextlib.contextmanager
def terminal_only() -> Iterator[None]:
    """Before Hydra has set up the run's log (and made its directory): evt's messages go
    to the terminal only."""
    logger = logging.getLogger("evt")
    handler, level = TerminalHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

"""What an unexpected exception in evt's own code becomes: one line for the user and the
traceback in a log file whose path that line gives (never a traceback on the terminal)."""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

LOG_NAME = "crash.log"


def report(exc: BaseException, directory: Path | None = None) -> str:
    """Write the traceback to `<directory>/crash.log` (a run directory), or to a new
    /tmp/evt-crash-*.log when there is none or it cannot be written; return the line to print."""
    text = "".join(traceback.format_exception(exc))
    header = f"evt {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: unexpected error\n"
    path = None
    if directory is not None:
        try:
            path = Path(directory) / LOG_NAME
            with path.open("a") as log:
                log.write(header + text)
        except OSError:
            path = None
    if path is None:
        try:
            fd, name = tempfile.mkstemp(prefix="evt-crash-", suffix=".log")
            with os.fdopen(fd, "w") as log:
                log.write(header + text)
            path = Path(name)
        except OSError:  # nowhere to write: the line still says what happened
            return f"Error: unexpected {type(exc).__name__}: {_one_line(exc)} (no log could be written)"
    return f"Error: unexpected {type(exc).__name__}: {_one_line(exc)} (traceback in {path})"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."

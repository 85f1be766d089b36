"""`evt ARGS` run in the test's own process (evt.cli.main), for tests of the command line's
own logic (parsing, validation, its messages and exit codes): what a subprocess run of the
console script returns, without an interpreter's start and evt's imports per call. Tests of
what a command does to processes, signals and the host run the console script
(helpers.run_evt)."""

from __future__ import annotations

import contextlib
import io
import subprocess

from helpers import EVT


def evt_main(*args: str) -> subprocess.CompletedProcess:
    from evt.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own exits
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess([str(EVT), *args], code, out.getvalue(), err.getvalue())

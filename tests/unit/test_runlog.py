"""The one log: its terminal half (plain message text, infos on stdout, the rest on stderr)
and evt.log on a full disk."""

from __future__ import annotations

import contextlib
import logging

from evt.cli.runlog import RunLogFile, TerminalHandler


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [TerminalHandler()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_messages_are_printed_as_they_are(capsys):
    log = _logger("evt.test_runlog.plain")
    long_argv = "evt trigger --event security_file_open " + "--x " * 80 + "[bold]not markup[/bold]"
    log.info("unit a: %s", long_argv)
    log.warning("notice: something to know")
    log.error("Error: it failed")
    out, err = capsys.readouterr()
    assert out == f"unit a: {long_argv}\n"  # one line, unwrapped, markup left as text
    assert err == "notice: something to know\nError: it failed\n"


def test_evt_log_on_a_full_disk_prints_no_traceback_per_message(capsys):
    for handler_class, complains in ((logging.FileHandler, True), (RunLogFile, False)):
        handler = handler_class("/dev/full")  # every write fails with ENOSPC, as on a full filesystem
        log = logging.getLogger(f"evt.test_runlog.full.{handler_class.__name__}")
        log.handlers[:] = [handler]
        log.propagate = False
        try:
            log.error("Error: cannot write the results")
            log.info("Cleanup complete")
        finally:
            with contextlib.suppress(OSError):  # the plain handler's close flushes into the full disk
                handler.close()
        err = capsys.readouterr().err
        assert ("--- Logging error ---" in err and "No space left on device" in err) == complains, err

"""The terminal half of the one log: plain message text, infos on stdout, the rest on stderr."""

from __future__ import annotations

import logging

from evt.runlog import TerminalHandler


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

"""An unexpected exception in evt's own code ends with one line naming a log that holds
the traceback (evt/cli/crash.py), from the CLI and from inside a stress job."""

from __future__ import annotations

from pathlib import Path

import pytest

from evt.cli import commands as cli
from evt.cli import crash


def one_line_naming_a_log(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("Error: unexpected RuntimeError: disk on fire (traceback in ")
    return lines[0].rsplit("(traceback in ", 1)[1].rstrip(")")


def boom(*_args, **_kwargs):
    raise RuntimeError("disk\non fire")


def test_an_unexpected_error_in_a_command_is_one_line_and_a_log(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "list", boom)
    assert cli.main(["list"]) == 1
    log = one_line_naming_a_log(capsys.readouterr().err)
    text = Path(log).read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: disk" in text and "in boom" in text
    import os

    os.unlink(log)


def test_an_unexpected_error_in_a_stress_job_logs_into_the_run_directory(monkeypatch, capsys, tmp_path):
    from evt.stress.session import StressSession

    monkeypatch.setattr(StressSession, "run", boom)
    code = cli.main(["stress", "-e", "ptrace:ops=1", "tracer=none", "runner=local", f"hydra.run.dir={tmp_path}"])
    assert code == 1
    log = one_line_naming_a_log(capsys.readouterr().err)
    assert log == str(tmp_path / crash.LOG_NAME)
    assert "RuntimeError: disk" in (tmp_path / crash.LOG_NAME).read_text()


def test_with_no_writable_directory_the_log_goes_to_a_temp_file(tmp_path):
    line = crash.report(RuntimeError("x"), tmp_path / "missing" / "dir")
    path = line.rsplit("(traceback in ", 1)[1].rstrip(")")
    assert path.startswith("/tmp/evt-crash-") and "RuntimeError: x" in Path(path).read_text()
    import os

    os.unlink(path)


@pytest.mark.parametrize(
    "run_dir, reason", [("/proc/evt-cannot-be-here", "No such file or directory"), ("/dev/null/run", "Not a directory")]
)
def test_a_run_directory_that_cannot_be_created_is_a_usage_error(capsys, run_dir, reason):
    code = cli.main(["stress", "-e", "ptrace:ops=1", "tracer=none", "runner=local", f"hydra.run.dir={run_dir}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"cannot create the run directory or its files: {reason}" in err and "hydra.run.dir=DIR" in err

"""How `evt stress` runs under Hydra: each run gets its own directory, named by its run id."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import EVT


@pytest.mark.integration
def test_two_runs_started_in_the_same_second_write_two_directories(tmp_path):
    argv = [EVT, "stress", "runner=local", "tracer=none", "stress.stress_end_cooldown=0s", "-e", "ptrace:ops=10"]
    procs = [
        subprocess.Popen(
            argv,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, COLUMNS="200"),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    run_dirs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        summary = json.loads((run_dir / "summary.json").read_text())
        # named by the run's id (date-time plus a random part), not by the second it started in
        assert summary["run_id"] == run_dir.name and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_dir.name)
        assert not (run_dir / ".barrier").exists()  # the start barrier FIFO went with the run


def test_make_clean_keeps_results():
    from evt.paths import HOME

    commands = subprocess.run(["make", "-n", "-C", str(HOME), "clean"], capture_output=True, text=True).stdout
    assert "rm -rf" in commands
    assert "outputs" not in commands and "multirun" not in commands


@pytest.mark.integration
def test_a_sweep_directory_is_named_by_its_own_id(tmp_path):
    result = subprocess.run(
        [
            EVT,
            "stress",
            "-m",
            "runner=local",
            "tracer=none",
            "stress.stress_end_cooldown=0s",
            "-e",
            "ptrace:ops=10",
            "stress.instances=1,2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = (tmp_path / "multirun").glob("*/*")
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", sweep_dir.name)
    run_ids = {json.loads((sweep_dir / job / "summary.json").read_text())["run_id"] for job in ("0", "1")}
    assert len(run_ids) == 2 and sweep_dir.name not in run_ids  # each job is a run of its own


def test_a_local_run_does_not_import_ray(tmp_path):
    """Hydra imports every plugin module on every run; evt's Ray launcher defers `import ray`
    (~0.7 s) to a sweep that uses it."""
    code = (
        "import sys; from evt import cli; "
        f"code = cli.main(['stress', '--dry-run', '-e', 'ptrace', 'tracer=none', 'hydra.run.dir={tmp_path}']); "
        "print('exit', code, 'ray' in sys.modules, 'evt_ray_launcher' in ' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "exit 0 False True", out.stdout + out.stderr

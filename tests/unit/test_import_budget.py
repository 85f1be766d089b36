"""What a command imports is part of its start-up cost (issue 17: a run's fixed cost under a
second, the smoke dry run under half of one): each command is run in a fresh interpreter
and the libraries it must not load are looked for in sys.modules. Not a timed test: an
import that creeps onto the path fails it on any machine, loaded or not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import STANDIN

# pandas (and numpy) are for the results and the reports, scipy and matplotlib for the
# analyses, ray for sweeps on many hosts, docker for a run's units (not its plan), sh for
# the image builds, prometheus_client for Tracee's metrics while a run scrapes them
NOT_FOR_A_PLAN = {"pandas", "numpy", "scipy", "matplotlib", "ray", "docker", "sh", "prometheus_client"}
# a unit's process: it starts in every container of every run, before its barrier
NOT_FOR_A_UNIT = NOT_FOR_A_PLAN | {"hydra", "omegaconf", "rich", "psutil"}

PROBE = """
import json, sys
from evt.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, out)
"""


def imported_by(tmp_path, *argv: str) -> set[str]:
    """The top-level packages `evt <argv>` has imported when it returns (it must succeed)."""
    record = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(record), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(record.read_text())
    assert result["code"] == 0, done.stdout + done.stderr
    return set(result["modules"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["tracer=none"],
        [f"tracee.binary={STANDIN}"],  # the default tracer, Tracee (a stand-in that answers `version`)
    ],
    ids=["none", "tracee"],
)
def test_a_dry_run_imports_nothing_that_only_a_run_or_a_report_needs(tmp_path, overrides):
    modules = imported_by(tmp_path, "stress", "scenario=smoke", *overrides, "--dry-run", f"hydra.run.dir={tmp_path}/r")
    assert "hydra" in modules  # the probe saw the command's imports
    assert not modules & NOT_FOR_A_PLAN, f"a dry run imported {sorted(modules & NOT_FOR_A_PLAN)}"


def test_a_unit_imports_neither_hydra_nor_the_run_side_libraries(tmp_path):
    modules = imported_by(tmp_path, "trigger", "--event", "security_file_open", "--ops", "1", "--sleep", "0")
    assert "yaml" in modules  # the probe saw the command's imports (the catalog)
    assert not modules & NOT_FOR_A_UNIT, f"`evt trigger` imported {sorted(modules & NOT_FOR_A_UNIT)}"

"""evt installed from a wheel (`pip install .`, not editable) into a fresh virtualenv finds
conf/, templates/ and triggers/ inside the package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["evt", "hydra_plugins", "conf", "templates", "triggers", "pyproject.toml", "README.md"]


def test_pip_install_from_a_clone_gives_a_working_evt(tmp_path):
    """The issue's done-criterion, literally: a fresh virtualenv, `pip install .` of a
    copy of the sources, then `evt list` and a dry run from another directory."""
    clone = tmp_path / "clone"
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(
            ROOT / name,
            clone / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # evt's dependencies come from this test's environment (no index needed for them);
    # evt itself is built from the clone and installed as a wheel.
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "evt-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(clone)], check=True, cwd=tmp_path)
    shutil.rmtree(clone)  # nothing may still point into the sources
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def evt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / "evt"), *args], capture_output=True, text=True, cwd=elsewhere, timeout=60
        )

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import evt.paths as p; print(p.HOME, p.CHECKOUT)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
    ).stdout.split()
    assert where == [str(site / "evt"), "None"]
    listed = evt("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 27
    plan = evt("stress", "scenario=smoke", "tracer=none", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "nothing is started" in plan.stdout and "total ops: 14200" in plan.stdout

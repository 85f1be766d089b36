"""Every benchmark runs to the end at its tiny size (EVT_BENCH_TINY=1) and writes its
results file, so a benchmark that breaks fails `make test` instead of `make bench`.

The tiny size checks that the code path works, not the figures: nothing here judges a
figure against its target (benchmarks hold timing targets, tests do not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))

pytestmark = [pytest.mark.integration, pytest.mark.long]  # every benchmark, a Ray cluster, an image build


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_tiny_size_and_records(name, tmp_path):
    env = dict(os.environ, EVT_BENCH_TINY="1", EVT_BENCH_RESULTS_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["benchmark"] == name and record["size"] == "tiny"
    assert len(record["load_average_at_start"]) == 3
    assert record["host"]["cpus"] == os.cpu_count() and record["host"]["kernel"] == os.uname().release
    assert record["evt"]["commit"] and len(record["evt"]["commit"]) == 40
    assert record["figures"] or record["tables"], "a benchmark records at least one figure or table"
    for figure in record["figures"]:
        assert figure["value"] is not None, figure
        if figure["baseline"]:
            assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline"]), figure
        if figure["target"] is not None:
            assert figure["met"] in (True, False), figure
    for table in record["tables"]:
        assert table["rows"] and all(len(row) == len(table["columns"]) for row in table["rows"]), table

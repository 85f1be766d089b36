"""`evt stress` refusing what it cannot run, as a user runs it (the console script, a real
Docker daemon): exit 2, one paragraph, no run directory and no container left."""

from __future__ import annotations

import json
import re

import pytest

from bad_input import BAD_STRESS_INPUT
from helpers import run_containers, run_evt, unique_run_id

pytestmark = pytest.mark.integration


def test_an_event_the_host_cannot_run_is_refused_with_the_reason_evt_list_gives(tmp_path):
    # whatever this host lacks or has: `evt list` says it, and `evt stress` agrees with it
    listed = {row["event"]: row for row in json.loads(run_evt("list", "--json").stdout)}
    bpf_attach = listed["bpf_attach"]
    result = run_evt("stress", "-e", "bpf_attach", "tracer=none", "--dry-run", f"hydra.run.dir={tmp_path / 'out'}")
    if bpf_attach["available"]["script"]:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
        for reason in bpf_attach["why_not"]["script"]:
            assert reason in result.stderr


@pytest.mark.parametrize("args, message", BAD_STRESS_INPUT)
def test_bad_input_exits_2_with_one_message_and_creates_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    run_id = unique_run_id("badinput")
    result = run_evt("stress", *args, f"run_id={run_id}", f"hydra.run.dir={out}")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert re.search(message, result.stderr), result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert not out.exists()
    assert run_containers(run_id) == []

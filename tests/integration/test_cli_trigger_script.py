"""`evt trigger` in script mode with a host binary the script runs (ping)."""

from __future__ import annotations

import json

import pytest

from helpers import run_evt

pytestmark = pytest.mark.integration


def test_script_mode_json():
    proc = run_evt("trigger", "-e", "security_socket_create", "--mode", "script", "-o", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert (result["mode"], result["ok"]) == ("script", 2)

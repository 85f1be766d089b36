"""The unit protocol: records round-trip, human lines are not records, and the
orchestrator reads only the records (rewording every human line changes nothing)."""

from __future__ import annotations

import csv
import os
import textwrap

import pytest

from evt.runners.base import UnitState
from evt.workload.protocol import Error, Progress, Result, TriggerResult, Waiting, WorkerResult, decode, encode
from helpers import run_evt


def a_result() -> TriggerResult:
    workers = [
        WorkerResult(0, 5, 5, 0, 1_000, 3_000, 2e-6, 2.5e6),
        WorkerResult(1, 5, 4, 1, 1_100, 3_100, 2e-6, 2e6, "boom"),
    ]
    return TriggerResult("ptrace", "native", 2, 10, 9, 1, 2.1e-6, 4.3e6, 1_000, 3_100, workers)


@pytest.mark.parametrize("msg", [Waiting(), Progress(3, 10), Result(a_result()), Error("needs CAP_SYS_ADMIN")])
def test_every_record_round_trips_also_behind_the_waiting_prefix(msg):
    line = encode(msg)
    assert line.startswith('{"evt_msg":') and "\n" not in line
    assert decode(line) == msg
    assert decode(f"[trigger:42:ptrace] {line}") == msg


def test_a_result_record_is_the_json_result_plus_its_key():
    import json

    data = json.loads(encode(Result(a_result())))
    assert data.pop("evt_msg") == "result"
    assert data == json.loads(a_result().to_json())


@pytest.mark.parametrize(
    "line",
    [
        "Waiting at start barrier /evt-barrier/barrier (timeout 1m0s)",
        "[trigger:7:ptrace] Starting triggering 10 ops with 0s sleep time at 10:00:00.000",
        '{"progress": {"done": 5, "total": 10}}',  # looks like JSON, is not a record
        '{"evt_msg": "nonsense"}',
        '{"evt_msg":"progress","done":1}',
        '{"evt_msg":"waiting"',
        "",
    ],
)
def test_human_and_malformed_lines_are_not_records(line):
    assert decode(line) is None


def test_unit_state_follows_only_the_records(tmp_path):
    state = UnitState("u", 10, tmp_path / "units" / "u.log")
    for line in ["Waiting at start barrier X", "Starting triggering 10 ops", '{"progress": {"done": 9, "total": 10}}']:
        state.feed(line + "\n")
    assert (state.waiting_since, state.done_ops) == (None, 0)  # wording alone means nothing
    state.feed("[trigger:1:u] " + encode(Waiting()) + "\n")
    state.feed(encode(Progress(4, 10)))
    assert state.waiting_since is not None and state.done_ops == 4
    state.feed(encode(Result(a_result())))
    state.feed(encode(Error("worker 1: 1 of 5 ops failed")))
    assert state.result == a_result() and state.done_ops == 10 and state.error == "worker 1: 1 of 5 ops failed"
    state.close_log()
    lines = (tmp_path / "units" / "u.log").read_text().splitlines()
    assert len(lines) == 7 and lines[0] == "Waiting at start barrier X"  # every line, as received
    assert state.tail() == [
        "Waiting at start barrier X",
        "Starting triggering 10 ops",
        '{"progress": {"done": 9, "total": 10}}',
    ]


REWORD = textwrap.dedent("""
    # Loaded into every evt process of the test run (PYTHONPATH): rewords each human line
    # of `evt trigger` and its prefix, leaving the protocol records as they are.
    import evt.workload.trigger

    _write = evt.workload.trigger.Output.__call__

    def reworded(self, line):
        if not line.startswith('{"evt_msg"'):
            line = "REWORDED " + line.replace("Waiting", "Held").replace("triggering", "firing")
        self.prefix = self.prefix.replace("[trigger:", "<unit ")
        _write(self, line)

    evt.workload.trigger.Output.__call__ = reworded
""")


@pytest.mark.integration
def test_rewording_every_human_line_does_not_change_a_run(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(REWORD)
    out = tmp_path / "run"
    env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = run_evt(
        "stress",
        "runner=local",
        "tracer=none",
        "stress.stress_end_cooldown=0s",
        "-e",
        "security_file_open:instances=2:ops=300",
        f"hydra.run.dir={out}",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = (out / "units" / "security_file_open.log").read_text()
    assert "REWORDED Held at start barrier" in log and "Waiting at start barrier" not in log
    assert "REWORDED Finished firing" in log and "<unit " in log
    with open(out / "workers.csv") as f:
        assert sum(int(row["ok"]) for row in csv.DictReader(f)) == 600

"""Counting Tracee's JSON output (evt.tracers.tracee.counting) in both shapes from the fixtures."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from evt.tracers.tracee.counting import (
    UnitScope,
    cgroup_inode,
    count_events,
    event_info,
    iter_events,
    same_container,
)
from helpers import fixture

CID_A = "a1" * 32  # 64 hex digits
CID_B = "b2" * 32


def legacy_events() -> list[dict]:
    return [json.loads(line) for line in fixture("events-legacy.jsonl").read_text().splitlines() if line.strip()]


def current_event() -> dict:
    return json.loads(fixture("events-v1beta1.jsonl").read_text().splitlines()[0])


def write_jsonl(path: Path, events: list[object]) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


def test_legacy_fixture_fields():
    infos = [event_info(e) for e in legacy_events()]
    assert [i.name for i in infos] == ["security_file_open", "openat", "vfs_read"]
    assert [i.container_id for i in infos] == ["", "", ""]  # containerId "" and container {}
    assert infos[0].host_pid == 2578238 and infos[0].host_ppid == 2578237
    assert infos[2].host_pid == 184128 and infos[2].host_ppid == 148293  # host, not namespace, pids
    assert infos[0].cgroup_id == 1


def test_current_fixture_fields():
    info = event_info(current_event())
    assert info.name == "sched_process_exec"
    assert info.container_id == ""
    assert info.host_pid == 12345  # pid given as {"value": N}
    assert info.ancestors == (1234,) and info.host_ppid == 1234


def test_container_id_in_each_shape():
    old, nested, new = legacy_events()[0], legacy_events()[2], current_event()
    old["containerId"] = CID_A
    nested["container"] = {"id": CID_A[:12]}
    new["workload"]["container"] = {"id": CID_B, "name": "evt-x", "image": "img", "started": True}
    assert event_info(old).container_id == CID_A
    assert event_info(nested).container_id == CID_A[:12]
    assert event_info(new).container_id == CID_B


def test_plain_numbers_and_wrappers_both_read():
    new = current_event()
    new["workload"]["process"]["pid"] = 777
    new["workload"]["process"]["host_pid"] = {"value": 4242}
    assert event_info(new).host_pid == 4242


def test_not_events():
    assert event_info([1, 2]) is None
    assert event_info({"foo": 1}) is None


def test_same_container():
    assert same_container(CID_A, CID_A)
    assert same_container(CID_A, CID_A[:12]) and same_container(CID_A[:12], CID_A)
    assert same_container(CID_A.upper(), CID_A[:12])
    assert not same_container(CID_A, CID_A[:11])  # shorter than docker's short id: no
    assert not same_container(CID_A, CID_B)
    assert not same_container("", CID_A)


def test_counts_by_container_both_shapes(tmp_path):
    events = []
    for cid in (CID_A, CID_A[:12]):  # full id, and the 12-character form
        e = legacy_events()[0]
        e["containerId"] = cid
        events.append(e)
    e = legacy_events()[2]
    e["eventName"] = "security_file_open"
    e["container"] = {"id": CID_A}
    events.append(e)
    other = legacy_events()[1]  # openat in unit A's container: counted, not observed
    other["containerId"] = CID_A
    events.append(other)
    for _ in range(2):
        new = current_event()
        new["name"] = "ptrace"
        new["workload"]["container"] = {"id": CID_B}
        events.append(new)
    stranger = current_event()
    stranger["name"] = "ptrace"
    stranger["workload"]["container"] = {"id": "c3" * 32}
    events += [stranger, "not json at all", '{"unrelated": true}', ""]
    path = write_jsonl(tmp_path / "events.json", events)

    scopes = [
        UnitScope("security_file_open", "security_file_open", container_id=CID_A),
        UnitScope("ptrace", "ptrace", container_id=CID_B),
    ]
    counts = count_events(path, scopes)
    assert counts.observed(scopes) == {"security_file_open": 3, "ptrace": 2}
    assert counts.by_unit["security_file_open"] == {"security_file_open": 3, "openat": 1}
    assert counts.by_event_container[("security_file_open", CID_A)] == 2
    assert counts.by_event_container[("security_file_open", CID_A[:12])] == 1
    assert counts.by_event_container[("ptrace", CID_B)] == 2
    assert counts.unmatched == 1
    assert counts.malformed == 2
    assert counts.lines == 9  # blank lines are not lines
    assert counts.total == 7
    record = counts.as_dict()
    assert record["events"] == 7 and record["unmatched"] == 1
    json.dumps(record)


def test_counts_by_pid_tree_legacy_and_current(tmp_path):
    worker = legacy_events()[0]  # host pid 2578238, parent 2578237
    child = legacy_events()[0]
    child["hostProcessId"], child["hostParentProcessId"] = 3000001, 2578238  # a fork of the worker
    grandchild = legacy_events()[0]
    grandchild["hostProcessId"], grandchild["hostParentProcessId"] = 3000002, 3000001
    new = current_event()  # host pid 12345, ancestor 1234
    new["name"] = "ptrace"
    new_child = current_event()
    new_child["name"] = "ptrace"
    new_child["workload"]["process"]["pid"] = {"value": 12399}
    new_child["workload"]["process"]["ancestors"] = [{"host_pid": 12345}, {"host_pid": 1234}]
    stray = legacy_events()[0]
    stray["hostProcessId"], stray["hostParentProcessId"] = 999, 1
    path = write_jsonl(tmp_path / "e.json", [worker, child, grandchild, new, new_child, stray])

    scopes = [
        UnitScope("security_file_open", "security_file_open", pids={2578238}),
        UnitScope("ptrace", "ptrace", pids={1234}),
    ]
    counts = count_events(path, scopes)
    assert counts.observed(scopes) == {"security_file_open": 3, "ptrace": 2}
    assert counts.unmatched == 1
    assert scopes[0].pids == {2578238}  # the caller's scopes are not modified


def test_counts_by_cgroup(tmp_path):
    cg = tmp_path / "cg"
    cg.mkdir()
    inode = cgroup_inode(str(cg))
    e = legacy_events()[0]
    e["cgroupId"] = inode
    e["hostProcessId"] = 5
    path = write_jsonl(tmp_path / "e.json", [e, e])
    scopes = [UnitScope("security_file_open", "security_file_open", cgroup_id=inode)]
    assert count_events(path, scopes).observed(scopes) == {"security_file_open": 2}
    assert cgroup_inode(None) is None and cgroup_inode(str(tmp_path / "missing")) is None


def test_no_units_counts_only(tmp_path):
    path = write_jsonl(tmp_path / "e.json", [*legacy_events(), current_event()])
    counts = count_events(path)
    assert counts.total == 4
    assert counts.by_event_container[("vfs_read", "")] == 1
    assert counts.observed([]) == {}


def test_iter_events_reads_fixture_files():
    assert len([e for e in iter_events(fixture("events-legacy.jsonl")) if e]) == 3
    assert len([e for e in iter_events(fixture("events-v1beta1.jsonl")) if e]) == 1


@pytest.mark.parametrize("shape", ["legacy", "current"])
def test_observed_is_zero_for_a_unit_without_events(tmp_path, shape):
    event = legacy_events()[0] if shape == "legacy" else copy.deepcopy(current_event())
    path = write_jsonl(tmp_path / "e.json", [event])
    scopes = [UnitScope("ptrace", "ptrace", container_id=CID_A)]
    assert count_events(path, scopes).observed(scopes) == {"ptrace": 0}


def test_native_units_count_only_events_carrying_the_run_marker(tmp_path):
    from evt.tracers.tracee.counting import UnitScope, count_events
    from evt.workload.marker import Marker

    marker = Marker.for_run("run-1", "sched_process_exec")
    current = json.loads(fixture("events-v1beta1.jsonl").read_text())  # sched_process_exec, thread "bash"
    marked = json.loads(json.dumps(current))
    marked["workload"]["container"] = {"id": "c" * 64}
    marked["data"][0]["str"] = marker.exe  # the exec of the marker's /bin/true link
    unmarked = json.loads(json.dumps(marked))
    unmarked["data"][0]["str"] = "/usr/bin/ls"  # same container, same event: not one of ours
    path = tmp_path / "events.json"
    path.write_text("".join(json.dumps(e) + "\n" for e in (marked, marked, unmarked)))
    scope = UnitScope(
        "sched_process_exec",
        "sched_process_exec",
        container_id="c" * 12,
        comms=(marker.comm, marker.child_comm),
        marker_dir=marker.dir,
    )
    counts = count_events(path, [scope])
    assert counts.by_unit["sched_process_exec"]["sched_process_exec"] == 3
    assert counts.observed([scope]) == {"sched_process_exec": 2}
    script_scope = UnitScope("sched_process_exec", "sched_process_exec", container_id="c" * 12)  # no marker
    assert count_events(path, [script_scope]).observed([script_scope]) == {"sched_process_exec": 3}

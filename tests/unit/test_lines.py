"""evt/workload/lines.py: Tracee's Go evt's fixed lines, word for word (docs/tracee.md)."""

from __future__ import annotations

from evt.stress.plan import Plan, RunnerDescription
from evt.workload import lines
from helpers import make_unit

CID = "0123456789ab" + "c" * 52


def plan_of(*units) -> Plan:
    return Plan(run_id="r", runner="docker", tracer="tracee", units=list(units), phases=[])


def test_start_lines_are_the_originals():
    plan = plan_of(make_unit("ptrace"), make_unit("security_file_open"))
    assert lines.start(plan, "evt-trigger-runner:latest") == [
        "Starting stress test orchestration",
        "Triggers configured: 2",
        "  [1] ptrace: instances=1, ops=10, sleep=0s",
        "  [2] security_file_open: instances=1, ops=10, sleep=0s",
        "Container image: evt-trigger-runner:latest",
    ]
    assert "Container image" not in " ".join(lines.start(plan, None))


def test_container_lines_name_the_short_id():
    unit = make_unit("ptrace", container_id=CID)
    containers = RunnerDescription("container", "containers")
    assert lines.units_started([unit], containers) == [
        "Starting container for trigger: ptrace",
        "  Started container: 0123456789ab",
        "  Container is running and waiting for signal",
        "",
        "=== Phase 2: Collecting Container IDs ===",
        "Collected 1 container IDs:",
        "  0123456789ab",
    ]
    assert lines.completed(1, 2, unit, 0, containers) == "[1/2] Container 0123456789ab completed with exit code: 0"
    assert lines.cleanup([unit], containers) == [
        "",
        "=== Cleanup: Removing Containers ===",
        "Removing container: 0123456789ab",
    ]


def test_process_groups_get_their_own_nouns_and_pids():
    unit = make_unit("ptrace", pid=4242)
    groups = RunnerDescription("process group", "process groups")
    assert lines.header(f"Phase 1: Starting {groups.title}") == ["", "=== Phase 1: Starting Process Groups ==="]
    assert lines.completed(1, 1, unit, 1, groups) == "[1/1] Process group 4242 completed with exit code: 1"


def test_release_cooldown_and_dry_run_lines():
    plan = plan_of(make_unit("ptrace"), make_unit("ptrace"))
    release = lines.release(plan, RunnerDescription("container", "containers"))
    assert release[:4] == [
        "",
        "=== Phase 4: Signaling Containers ===",
        "About to execute ~20 trigger operations total.",
        "Note: Actual event count depends on what each trigger does (may be higher).",
    ]
    assert lines.cooldown(10 * 10**9) == ["", "=== Stress End Cooldown ===", "Waiting 10s for system stabilization..."]
    dry = lines.dry_run(plan, RunnerDescription("container", "containers"), "Configure & Start Tracee")
    assert dry["intro"] == ["Dry run mode - showing what would be executed:"]
    assert dry["release"] == ["", "=== Phase 4: Signal Containers ===", "  Would execute ~20 trigger operations total"]
    assert dry["monitor"][-1] == "=== Phase 5: Monitor & Cleanup ==="

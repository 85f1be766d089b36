"""`evt cleanup`: remove what killed runs left behind — containers by the run label,
recorded processes (pid and start time must match; cleanup returns once they have
exited, or names those that did not), the runs' cgroups, and host settings a tracer
changed (put back by the restorer of their kind, after the processes are gone). Runs
whose orchestrator still runs are left alone; one that has exited but not been reaped
(a zombie) runs nothing."""

from __future__ import annotations

import importlib
from pathlib import Path

from evt.stress import runstate

# kind of recorded host state -> "module:function" that puts it back (returns what failed)
RESTORERS = {"audit": "evt.tracers.auditd.control:restore_recorded"}


def restore_recorded(state: dict) -> list[str]:
    """Put back what the run recorded; the failures, each named by its kind."""
    failures = []
    for kind, record in state.get("restore", {}).items():
        module, _, function = RESTORERS[kind].partition(":")
        failures += [f"{kind}: {failure}" for failure in getattr(importlib.import_module(module), function)(record)]
    return failures


def run(run_id: str | None = None) -> int:
    from evt.runners.local import remove_cgroup_tree

    active = runstate.active_run_ids()
    removed_processes = removed_cgroups = 0
    survivors: list[int] = []
    restored: list[str] = []
    unrestored: list[str] = []
    for state in runstate.leftovers():
        if run_id and state["run_id"] != run_id:
            continue
        failed: list[str] = []
        killed, alive = runstate.kill_recorded(state)
        removed_processes += len(killed) - len(alive)
        survivors += alive
        if state.get("restore"):
            failed = restore_recorded(state)
            unrestored += failed
            restored += [] if failed else list(state["restore"])
        for cgroup in state.get("cgroups", []):
            if Path(cgroup).is_dir():
                remove_cgroup_tree(Path(cgroup))
                removed_cgroups += 1
        if not alive and not failed:  # otherwise keep the record, for a later `evt cleanup`
            runstate.finish(state["run_id"])
    removed_containers: list[str] = []
    try:
        from evt.runners.docker import LABEL, docker_client, remove_run_containers

        client = docker_client(timeout=30)
        labels = set()
        # every evt run's containers: one that another run removes meanwhile is skipped, not an error
        for container in client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True):
            label = container.labels.get(LABEL)
            if label and label not in active and (run_id is None or label == run_id):
                labels.add(label)
        for label in sorted(labels):
            removed_containers += remove_run_containers(client, label)
    except Exception as exc:  # no docker here: nothing of it to clean
        print(f"docker: skipped ({exc})")
    print(
        f"removed {len(removed_containers)} containers, {removed_processes} processes, {removed_cgroups} cgroups"
        + (f"; left {len(active)} active runs alone" if active else "")
    )
    for name in removed_containers:
        print(f"  container {name}")
    for kind in restored:
        print(f"  restored {kind} settings")
    if unrestored:
        print("Error: could not restore: " + "; ".join(unrestored))
        return 1
    if survivors:
        print(
            f"Error: processes still running after SIGKILL: {', '.join(map(str, survivors))} "
            "(in uninterruptible sleep? check `ps -o pid,stat,wchan -p PID`)"
        )
        return 1
    return 0

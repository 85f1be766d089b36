"""Soak: short stress runs back to back, with a tracer (bpftrace), alternating the docker
and local runners, in this process, so that whatever evt leaks accumulates where it can be
counted. Before and after: this run's containers, processes, cgroups and mounts, evt's
(this process's) open file descriptors and threads, and files in the temp directory.

`make test` runs EVT_SOAK_RUNS=3 (the default); `make soak` runs 100. Only what belongs
to these runs is counted (their run ids, container ids, marker tokens and a private
TMPDIR): other engineers' runs on the host come and go meanwhile."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from evt import host
from evt.cli import commands as cli
from evt.workload.marker import Marker
from helpers import bpftrace_skip_reason, run_containers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.soak,
    pytest.mark.alone,  # counts every evt container on the host
    pytest.mark.skipif(bpftrace_skip_reason() is not None, reason=bpftrace_skip_reason() or ""),
]

RUNS = int(os.environ.get("EVT_SOAK_RUNS", "3"))
EVENTS = ["-e", "ptrace:ops=50:sleep=0", "-e", "security_file_open:ops=50:sleep=0"]


def mentions(text: str, needles: set[str]) -> bool:
    return any(n in text for n in needles)


def cgroup_dirs() -> list[Path]:
    """Where containers' cgroups live (cgroupfs or systemd driver, v1 or v2) and the local runner's."""
    root = Path("/sys/fs/cgroup")
    paths = [
        *root.glob("*/docker/*"),
        *root.glob("docker/*"),
        *root.glob("*/system.slice/docker-*"),
        *root.glob("system.slice/docker-*"),
    ]
    unified = host.cgroup2_root()
    return paths + (list(unified.glob("evt-*")) if unified else [])


def resources(prefix: str, container_ids: set[str], tmpdir: Path, markers: set[str]) -> dict[str, int]:
    me = psutil.Process()
    needles = {prefix, str(tmpdir.parent), *container_ids}
    cgroups = sum(1 for path in cgroup_dirs() if mentions(path.name, needles))
    processes = 0
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if mentions(" ".join(proc.info["cmdline"] or []), needles):
                processes += 1
        except psutil.Error:
            continue
    mounts = sum(1 for line in Path("/proc/1/mountinfo").read_text().splitlines() if mentions(line, needles))
    return {
        "containers": len(run_containers_with_prefix(prefix)),
        "processes": processes,
        "child_processes": len(me.children(recursive=True)),
        "cgroups": cgroups,
        "mounts": mounts,
        "evt_fds": me.num_fds(),
        "evt_threads": me.num_threads(),
        "temp_files": sum(1 for _ in tmpdir.rglob("*")) + sum(1 for m in markers if Path(m).exists()),
    }


def run_containers_with_prefix(prefix: str) -> list:
    import docker

    containers = docker.from_env().containers.list(all=True, filters={"label": "evt.run_id"})
    return [c for c in containers if c.labels.get("evt.run_id", "").startswith(prefix)]


def test_back_to_back_runs_leave_nothing_behind(tmp_path, monkeypatch, capsys):
    prefix = f"soak{os.getpid()}x"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    container_ids: set[str] = set()
    markers: set[str] = set()
    # one run first: imports, docker client pools and Hydra's state are set up once, not leaked
    assert (
        cli.main(
            [
                "stress",
                *EVENTS,
                "tracer=bpftrace",
                "stress.stress_end_cooldown=0s",
                f"run_id={prefix}-warm",
                f"hydra.run.dir={tmp_path / 'warm'}",
            ]
        )
        == 0
    )
    before = resources(prefix, container_ids, tmpdir, markers)
    started = time.monotonic()
    for i in range(RUNS):
        run_id, run_dir = f"{prefix}-{i}", tmp_path / f"run{i}"
        runner = "docker" if i % 2 == 0 else "local"
        code = cli.main(
            [
                "stress",
                *EVENTS,
                "tracer=bpftrace",
                f"runner={runner}",
                "stress.stress_end_cooldown=0s",
                f"run_id={run_id}",
                f"hydra.run.dir={run_dir}",
            ]
        )
        assert code == 0, capsys.readouterr()
        plan = json.loads((run_dir / "plan.json").read_text())
        for unit in plan["units"]:
            if unit.get("container_id"):
                container_ids.add(unit["container_id"][:12])
            markers.add(Marker.for_run(f"{run_id}-{unit['name']}", unit["event"]).dir)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["detection"]["loss_pct"] == 0.0
        assert run_containers(run_id) == []
        capsys.readouterr()  # the run's tables, not kept
    duration = time.monotonic() - started
    after = resources(prefix, container_ids, tmpdir, markers)
    figures = {"runs": RUNS, "duration_s": round(duration, 1), "before": before, "after": after}
    with capsys.disabled():
        print(f"\nsoak: {json.dumps(figures)}")
    assert after["containers"] == after["processes"] == after["cgroups"] == after["mounts"] == 0, figures
    assert after["child_processes"] <= before["child_processes"], figures
    assert after["temp_files"] == 0, figures
    assert after["evt_fds"] <= before["evt_fds"], figures
    assert after["evt_threads"] <= before["evt_threads"], figures

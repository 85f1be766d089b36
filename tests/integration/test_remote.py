"""Sweeps on many hosts: a real Ray cluster on loopback (a head and a second node, each an
evt host), real stress jobs in real containers, results brought home through Ray."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import subprocess
import time
from pathlib import Path

import docker
import pytest
from ray_cluster import DRIVER_ENV, start_cluster

from evt.errors import UsageError
from evt.stress import remote
from helpers import EVT, needs_bpftrace, run_evt

pytestmark = [pytest.mark.integration, pytest.mark.long]  # Ray clusters

# Units paced by sleep: a job takes seconds whatever the load, so jobs overlap in time.
PACED = "security_file_open:ops=400:sleep=5ms"


def sweep(cluster, sweep_dir: Path, *overrides: str, timeout: float = 600):
    return run_evt(
        "stress",
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={cluster.address}",
        "runner=docker",
        "stress.stress_end_cooldown=0s",
        f"hydra.sweep.dir={sweep_dir}",
        f"remote.staging_dir={sweep_dir.parent / 'staging'}",
        *overrides,
        timeout=timeout,
        env=DRIVER_ENV,
    )


def rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "sweep.csv") as f:
        return list(csv.DictReader(f))


def remote_record(job_dir: Path) -> dict:
    return json.loads((job_dir / remote.REMOTE_RECORD).read_text())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("ray"), nodes=2)
    yield cluster
    cluster.stop()


@needs_bpftrace
def test_a_sweep_runs_one_job_per_host_and_every_run_dir_comes_home(cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    nodes = set(cluster.alive_nodes())
    out = sweep(cluster, sweep_dir, "-e", PACED, "tracer=none,bpftrace", "stress.instances=1,2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    table = rows(sweep_dir)
    assert len(table) == 4 and all(r["status"] == "ok" for r in table), table
    assert {"host", "stress.instances", "tracer"} <= set(table[0])
    runs = []
    for row in table:
        job_dir = Path(row["run_dir"])
        assert job_dir.parent == sweep_dir  # home, not the host's staging directory
        for name in (
            "summary.json",
            "events.csv",
            "workers.csv",
            "tracer.csv",
            "evt.log",
            ".hydra/config.yaml",
            ".hydra/overrides.yaml",
        ):
            assert (job_dir / name).is_file(), f"{job_dir}: {name} did not come home"
        record = remote_record(job_dir)
        assert record["node"]["node_id"] in nodes and record["exit_code"] == 0
        assert row["host"] == record["node"]["hostname"]
        runs.append((record["node"]["node_id"], record["started"], record["ended"]))
        if row["tracer"] == "bpftrace":  # the tracer ran on the job's host, and counted there
            assert row["observed"] == row["expected"] and float(row["expected"]) > 0
    assert {node for node, _, _ in runs} == nodes  # both hosts worked
    for node in nodes:  # ... and never two jobs at once on one host
        spans = sorted((start, end) for n, start, end in runs if n == node)
        assert all(prev_end <= start for (_, prev_end), (start, _) in itertools.pairwise(spans)), spans
    assert remote.staged_files(sweep_dir.parent / "staging") == []  # nothing left on the hosts


def test_a_job_whose_host_lacks_a_prerequisite_fails_alone(cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    out = sweep(
        cluster,
        sweep_dir,
        "-e",
        "security_file_open:ops=10",
        "tracer=none",
        "runner.image=evt-no-such-image:never,${oc.env:EVT_TRIGGER_RUNNER_IMAGE}",
    )
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    by_image = {r["runner.image"]: r for r in rows(sweep_dir)}  # the swept values, as the jobs saw them
    assert by_image["evt-no-such-image:never"]["status"] == "bad_input"
    assert "evt-no-such-image:never" in by_image["evt-no-such-image:never"]["error"]
    assert [r["status"] for i, r in by_image.items() if i != "evt-no-such-image:never"] == ["ok"]


def test_more_hosts_than_the_cluster_has_is_refused_before_any_job(cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    out = sweep(cluster, sweep_dir, "-e", "security_file_open:ops=10", "tracer=none", "remote.hosts=3")
    assert out.returncode == 2
    assert "remote.hosts=3" in out.stderr and "(2 advertise 'evt_host')" in out.stderr
    assert not sweep_dir.exists()


def test_an_address_nothing_answers_at_is_refused_at_once(tmp_path):
    started = time.monotonic()
    out = run_evt(
        "stress",
        "-m",
        "hydra/launcher=ray",
        "hydra.launcher.ray.init.address=127.0.0.1:1",
        "tracer=none",
        "-e",
        "security_file_open",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        timeout=120,
        env=DRIVER_ENV,
    )
    assert out.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in out.stderr
    assert "Traceback" not in out.stderr and time.monotonic() - started < 60
    assert not (tmp_path / "sweep").exists()


def test_a_cluster_without_evt_hosts_is_refused():
    with pytest.raises(UsageError, match=r"no host advertising the 'evt_host' resource"):
        remote.check_cluster({"CPU": 8.0, "memory": 1e9}, "evt_host", None, "10.0.0.1:6379")
    remote.check_cluster({"evt_host": 2.0}, "evt_host", 2, "head:6379")  # enough: no error


def test_files_over_the_caps_stay_on_the_host_and_are_recorded(tmp_path):
    job = tmp_path / "job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("a: 1\n")
    (job / "summary.json").write_text("{}")
    (job / "tracer").mkdir()
    (job / "tracer" / "events.json").write_bytes(b"x" * 5000)
    archive, left = remote.pack_job_dir(job, remote.Caps(max_file_bytes=4096, max_job_bytes=10**6))
    assert [item["path"] for item in left] == ["tracer/events.json"] and left[0]["bytes"] == 5000
    remote.remove_packed(job, left)
    assert sorted(p.name for p in job.rglob("*") if p.is_file()) == ["events.json"]  # only the big one stays
    home = tmp_path / "home"
    remote.unpack_job(
        {
            "archive": archive,
            "node": {"hostname": "h"},
            "started": 0,
            "ended": 1,
            "exit_code": 0,
            "error": None,
            "left_on_host": left,
            "staging_dir": str(job),
        },
        home,
    )
    assert (home / ".hydra" / "config.yaml").read_text() == "a: 1\n" and (home / "summary.json").exists()
    assert not (home / "tracer" / "events.json").exists()
    assert remote_record(home)["left_on_host"][0]["location"] == str(job / "tracer" / "events.json")


def _job_running_on(staging: Path, node_id: str, timeout_s: float = 120) -> tuple[Path, str]:
    """The staged job dir on that node once its units run, and the run id its evt.log names."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for log in (staging / node_id[:12]).glob("*/*/evt.log"):
            match = re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6})", log.read_text())
            if match and "Phase 5" in log.read_text():
                return log.parent, match.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no job ran on node {node_id[:12]} within {timeout_s}s")


def test_a_job_on_a_host_that_dies_is_a_failed_row_and_the_others_carry_on(tmp_path):
    cluster = start_cluster(tmp_path / "ray", nodes=2)
    try:
        worker = cluster.nodes[1]
        sweep_dir, staging = tmp_path / "sweep", tmp_path / "staging"
        driver = subprocess.Popen(
            [
                str(EVT),
                "stress",
                "-m",
                "hydra/launcher=ray",
                f"hydra.launcher.ray.init.address={cluster.address}",
                "runner=docker",
                "tracer=none",
                "-e",
                "security_file_open:ops=1500:sleep=10ms",
                "stress.instances=1,2",
                "stress.stress_end_cooldown=0s",
                f"hydra.sweep.dir={sweep_dir}",
                f"remote.staging_dir={staging}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, **DRIVER_ENV),
        )
        try:
            _, run_id = _job_running_on(staging, worker.node_id)  # its units run: now the host dies
            worker.kill()
            out, err = driver.communicate(timeout=300)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode == 1, out[-2000:] + err[-2000:]
        table = rows(sweep_dir)
        failed = [r for r in table if r["status"] == "failed"]
        assert len(table) == 2 and len(failed) == 1, table
        assert "its host was lost" in failed[0]["error"] and failed[0]["stress.instances"] in ("1", "2")
        assert [r["status"] for r in table if r is not failed[0]] == ["ok"]
        # what the lost job left running is found by its run label and removed
        cleanup = run_evt("cleanup", "--run-id", run_id, timeout=180)
        assert cleanup.returncode == 0, cleanup.stderr
        assert docker.from_env().containers.list(all=True, filters={"label": f"evt.run_id={run_id}"}) == []
    finally:
        cluster.stop()

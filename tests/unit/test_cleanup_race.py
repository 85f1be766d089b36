"""`evt cleanup` while other runs' containers come and go: a container that disappears
between Docker's listing and its inspection (another run ending) must not stop the
cleanup of the run asked for. The race cannot be timed against a real daemon, so the
container collection here behaves as the docker SDK's does when it happens: its list()
raises NotFound unless told to ignore removed containers."""

from __future__ import annotations

from types import SimpleNamespace

import docker
import pytest

from evt.runners import docker as docker_runner
from evt.stress import cleanup, runstate


class ContainersWithOneVanishing:
    def __init__(self, containers: list[SimpleNamespace]):
        self.containers = containers

    def list(self, all: bool = False, filters: dict | None = None, ignore_removed: bool = False):
        if not ignore_removed:  # what the SDK does when a listed container is gone on inspection
            raise docker.errors.NotFound("404 Client Error: Not Found (No such container: 0123abcd)")
        key, _, value = (filters or {})["label"].partition("=")
        return [c for c in self.containers if key in c.labels and value in ("", c.labels[key])]


def container(name: str, run_id: str, removed: list[str]) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, labels={docker_runner.LABEL: run_id}, remove=lambda force=False: removed.append(name)
    )


@pytest.fixture
def no_recorded_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path / "state")


def test_cleanup_of_a_run_survives_another_runs_container_vanishing(no_recorded_runs, monkeypatch, capsys):
    removed: list[str] = []
    ours = [container("evt-stress-a", "run-a", removed), container("evt-stress-b", "run-a", removed)]
    client = SimpleNamespace(containers=ContainersWithOneVanishing([*ours, container("other", "run-b", removed)]))
    monkeypatch.setattr(docker_runner, "docker_client", lambda timeout=120: client)
    assert cleanup.run("run-a") == 0
    out = capsys.readouterr().out
    assert "docker: skipped" not in out and out.startswith("removed 2 containers")
    assert sorted(removed) == ["evt-stress-a", "evt-stress-b"]  # the other run's container is left alone

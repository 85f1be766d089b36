"""The docker runner's capability probe, remembered per daemon, image and capability set
(evt/runners/capcache.py), against a stand-in docker client: the probe's refusals stay
as they are, a second run with the same key creates no probe container, and a change to
any part of the key (or a damaged cache) probes again."""

from __future__ import annotations

import json
from types import SimpleNamespace

import docker
import pytest

from evt.errors import RunError
from evt.runners import capcache
from helpers import compose_cfg, runner_from

ASKED = ["SYS_ADMIN", "BPF", "SYS_PTRACE", "PERFMON"]


class FakeContainers:
    """A daemon that knows no BPF and no PERFMON (as Docker 20.10), or refuses everything."""

    def __init__(self, unknown=("BPF", "PERFMON"), refusal: str | None = None):
        self.unknown, self.refusal, self.creates = set(unknown), refusal, 0

    def create(self, image, cap_add=(), **kwargs):
        self.creates += 1
        if self.refusal:
            raise docker.errors.APIError(self.refusal)
        for cap in cap_add or ():
            if cap in self.unknown:
                raise docker.errors.APIError(f'invalid CapAdd: unknown capability: "CAP_{cap}"')
        return SimpleNamespace(remove=lambda force: None)


class FakeClient:
    def __init__(self, containers: FakeContainers, image_id="sha256:aaa", version="20.10.24"):
        self.containers = containers
        self.images = SimpleNamespace(get=lambda name: SimpleNamespace(id=image_id))
        self.api = SimpleNamespace(base_url="http+docker://localhost")
        self._info = {"ID": "DAEMON:1", "ServerVersion": version, "RuncCommit": {"ID": "r1"}}

    def info(self):
        return dict(self._info)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EVT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", "tcp://daemon.example:2375")  # a daemon named by `docker info`
    return tmp_path / "cache"


def probe(tmp_path, client, asked=ASKED) -> tuple[list[str], list[str]]:
    """(unknown, cap_add after the probe) of one run's runner."""
    runner = runner_from(compose_cfg("runner=docker"), "capcache-test", tmp_path)
    runner.client, runner.cap_add = client, list(asked)
    return runner._probe_caps(), runner.cap_add


def test_a_second_run_with_the_same_daemon_image_and_set_creates_no_probe_container(tmp_path):
    containers = FakeContainers()
    first = probe(tmp_path, FakeClient(containers))
    assert first == (["BPF", "PERFMON"], ["SYS_ADMIN", "SYS_PTRACE"])
    probes = containers.creates
    assert probes == 3  # BPF refused, PERFMON refused, then accepted
    assert probe(tmp_path, FakeClient(containers)) == first
    assert containers.creates == probes, "the remembered answer was not used"
    assert json.loads(capcache.cache_path().read_text())["unknown"] == ["BPF", "PERFMON"]


@pytest.mark.parametrize(
    "changed",
    [
        {"image_id": "sha256:bbb"},  # the image was rebuilt
        {"version": "24.0.7"},  # the daemon was upgraded (it may know CAP_BPF now)
    ],
)
def test_another_image_or_daemon_probes_again(tmp_path, changed):
    containers = FakeContainers()
    probe(tmp_path, FakeClient(containers))
    before = containers.creates
    probe(tmp_path, FakeClient(containers, **changed))
    assert containers.creates > before


def test_another_capability_set_probes_again(tmp_path):
    containers = FakeContainers()
    probe(tmp_path, FakeClient(containers))
    before = containers.creates
    assert probe(tmp_path, FakeClient(containers), asked=["SYS_ADMIN", "BPF"]) == (["BPF"], ["SYS_ADMIN"])
    assert containers.creates > before


def test_a_damaged_or_foreign_cache_is_a_miss(tmp_path, cache_dir):
    containers = FakeContainers()
    probe(tmp_path, FakeClient(containers))
    entry = json.loads(capcache.cache_path().read_text())
    for damaged in ["{not json", json.dumps({**entry, "unknown": ["SYS_ADMIN", "NET_ADMIN"]})]:
        capcache.cache_path().write_text(damaged)
        before = containers.creates
        assert probe(tmp_path, FakeClient(containers)) == (["BPF", "PERFMON"], ["SYS_ADMIN", "SYS_PTRACE"])
        assert containers.creates > before


def test_a_refused_capability_set_is_still_refused_and_not_remembered(tmp_path):
    containers = FakeContainers(refusal="invalid mount config")
    with pytest.raises(RunError, match=r"docker refused the capability set: .*invalid mount config"):
        probe(tmp_path, FakeClient(containers))
    assert not capcache.cache_path().exists()


def test_a_create_refusing_a_remembered_capability_forgets_the_answer(tmp_path):
    containers = FakeContainers()
    probe(tmp_path, FakeClient(containers))
    runner = runner_from(compose_cfg("runner=docker"), "capcache-test", tmp_path)
    runner.client, runner.cap_add = FakeClient(FakeContainers(unknown=("SYS_PTRACE",))), ["SYS_PTRACE"]
    unit = SimpleNamespace(argv=["evt", "trigger"], container_name="c", run_id="r", name="u", event="e")
    with pytest.raises(RunError, match="could not be created"):
        runner._create(unit)
    assert not capcache.cache_path().exists()


def test_an_unwritable_cache_leaves_the_probe_working(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("EVT_CACHE_DIR", str(blocker / "cache"))  # under a regular file: cannot be made
    containers = FakeContainers()
    assert probe(tmp_path, FakeClient(containers)) == (["BPF", "PERFMON"], ["SYS_ADMIN", "SYS_PTRACE"])
    assert probe(tmp_path, FakeClient(containers))[0] == ["BPF", "PERFMON"]


def test_a_daemon_that_does_not_say_who_it_is_is_probed_every_time(tmp_path):
    class Anonymous(FakeClient):
        def info(self):
            raise docker.errors.APIError("info unavailable")

    containers = FakeContainers()
    for _ in range(2):
        before = containers.creates
        assert probe(tmp_path, Anonymous(containers)) == (["BPF", "PERFMON"], ["SYS_ADMIN", "SYS_PTRACE"])
        assert containers.creates > before
    assert not capcache.cache_path().exists()


def test_the_local_daemon_is_known_by_its_process_without_asking_it(tmp_path, monkeypatch):
    import os

    class Silent(FakeClient):
        def info(self):
            raise AssertionError("the local daemon was asked who it is")

    pidfile = tmp_path / "docker.pid"
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setattr(capcache, "DOCKER_PIDFILE", pidfile)
    containers = FakeContainers()
    pidfile.write_text(f"{os.getpid()}\n")  # this process stands for the daemon
    assert probe(tmp_path, Silent(containers))[0] == ["BPF", "PERFMON"]
    before = containers.creates
    assert probe(tmp_path, Silent(containers))[0] == ["BPF", "PERFMON"]
    assert containers.creates == before, "the remembered answer was not used"
    pidfile.write_text(f"{os.getppid()}\n")  # another daemon process (a restart, an upgrade)
    probe(tmp_path, Silent(containers))
    assert containers.creates > before

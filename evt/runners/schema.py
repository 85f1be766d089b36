"""The runner config group's schemas (conf/runner/<name>.yaml): one dataclass per option,
registered in Hydra's ConfigStore. A runner class is built with its option's keys as
keyword arguments (evt.plugins.make_runner), never with the root config."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class RunnerConfig:
    """What every runner option holds (runner.*)."""

    name: str = MISSING
    _target_: str = MISSING  # the Runner class (evt.plugins.make_runner builds it)
    image: str = "${oc.env:EVT_TRIGGER_RUNNER_IMAGE,evt-trigger-runner:latest}"
    network: str = "none"
    # auto: privileged where the daemon can grant it, else every capability it holds
    privileged: str = "auto"  # auto | true | false
    cap_add: list[str] = field(default_factory=list)  # used when not privileged
    security_opt: list[str] = field(default_factory=lambda: ["seccomp=unconfined", "apparmor=unconfined"])
    ready_timeout: str = "60s"  # every unit waiting at the barrier
    # runner=docker: each unit's memory limit (docker's form: 64m, 1g); a unit that needs
    # more is ended by the kernel's OOM killer, and the run says so
    memory: str | None = None
    # docker: directories mounted as tmpfs in each unit container. The markers live in
    # /tmp; an open on the container's overlay filesystem costs about half again as much
    # as on the host's (benchmarks/bench_container.py). [] keeps them on the overlay.
    tmpfs: list[str] = field(default_factory=lambda: ["/tmp"])


@dataclass
class DockerRunnerConfig(RunnerConfig):
    name: str = "docker"
    _target_: str = "evt.runners.docker.DockerRunner"


@dataclass
class LocalRunnerConfig(RunnerConfig):
    name: str = "local"
    _target_: str = "evt.runners.local.LocalRunner"


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="runner", name="runner_schema", node=RunnerConfig)
    cs.store(group="runner", name="docker_schema", node=DockerRunnerConfig)
    cs.store(group="runner", name="local_schema", node=LocalRunnerConfig)


register()

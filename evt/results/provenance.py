"""What produced a run: evt's version and commit, the scenario names, the job's Hydra
overrides, the host and the tracer's version. Written into summary.json so that a
record compared months later still says where it came from."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from evt.paths import HOME
from evt.results.summary import SCHEMA_VERSION  # summary.json's layout (evt.results.summary)


@lru_cache(maxsize=1)
def evt_version() -> dict[str, object]:
    """The package version, plus the git commit (and whether the tree had changes) when
    evt runs from a checkout."""
    from importlib import metadata  # slow to import: only when a run is recorded, not for a dry run

    try:
        version = metadata.version("evt")
    except metadata.PackageNotFoundError:
        version = None
    commit = dirty = None
    if (HOME / ".git").exists():
        commit = _git("rev-parse", "HEAD") or None
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return {"version": version, "commit": commit, "dirty": dirty}


def _git(*args: str) -> str | None:
    """git's output in evt's checkout, None if it fails. subprocess, not sh: sh's pty and
    threads cost ~140 ms a call, on every run, against ~2 ms."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(HOME), *args], capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def docker_version() -> str | None:
    """The Docker engine's version, when one answers within a second."""
    try:
        import docker

        return docker.from_env(timeout=1).version().get("Version")
    except Exception:  # no engine here is a fact to record, not an error
        return None


@lru_cache(maxsize=1)
def host() -> dict[str, object]:
    import psutil

    return {
        "kernel": os.uname().release,
        "arch": os.uname().machine,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_bytes": psutil.virtual_memory().total,
        "docker_version": docker_version(),
    }


def job_overrides() -> list[str]:
    """The Hydra overrides of the running job ([] outside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def record(scenarios: Sequence[str], tracer: str, tracer_version: str | None = None) -> dict[str, object]:
    """The provenance fields of summary.json: the scenarios the run's events came from (none
    for events given only with -e) and the tracer's name, beside what this module finds out."""
    return {
        "schema_version": SCHEMA_VERSION,
        "evt_version": evt_version(),
        "scenario": list(scenarios),
        "overrides": job_overrides(),
        "host": host(),
        "tracer": {"name": tracer, "version": tracer_version},
    }


class Recording:
    """record() in a thread of its own, started as a run starts: git, the Docker engine and
    the tracer's binary answer while the units start instead of before them."""

    def __init__(self, scenarios: Sequence[str], tracer: str, tracer_version: Callable[[], str | None]):
        self._fields: dict[str, object] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._record, args=(scenarios, tracer, tracer_version), name="provenance", daemon=True
        )
        self._thread.start()

    def _record(self, scenarios: Sequence[str], tracer: str, tracer_version: Callable[[], str | None]) -> None:
        try:
            self._fields = record(scenarios, tracer, tracer_version())
        except BaseException as exc:  # raised where the run asks for the fields
            self._error = exc

    def fields(self) -> dict[str, object]:
        """The provenance fields, once recorded; record()'s error if it failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._fields

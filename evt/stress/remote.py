"""Sweeps on many hosts: Hydra's Ray launcher, with what a stress sweep needs around it.

A stress job owns its host, so every job asks for the whole `evt_host` resource each
evt host advertises when it joins (`ray start ... --resources '{"evt_host": 1}'`): two
jobs never share a machine. A job runs in a staging directory on its host and sends its
run directory back through Ray, so the submitting machine's sweep directory is complete
whether or not the hosts share a filesystem; files over the size caps stay on the host
and their location is recorded. A job whose host dies becomes a failed job (a run
directory holding the reason), and the other jobs carry on.

The job itself is run by hydra-ray-launcher's own remote runner (`_run_job`): evt adds
the placement, the staging and the way home, not a scheduler of its own.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from evt.errors import UsageError

log = logging.getLogger(__name__)

REMOTE_RECORD = "remote.json"  # in each job directory: where and when the job ran
LAUNCHER_TARGET = "hydra_plugins.evt_ray_launcher.evt_ray_launcher.EvtRayLauncher"


@dataclass(frozen=True)
class Caps:
    """How much of a job directory travels home through Ray."""

    max_file_bytes: int
    max_job_bytes: int


def _init_args(init_cfg: dict[str, Any], resource: str) -> dict[str, Any]:
    """ray.init arguments: a local Ray (no address) is one evt host by itself."""
    args = {k: v for k, v in init_cfg.items() if v is not None}
    if not args.get("address") or args["address"] == "local":
        # "local", not None: ray.init(None) would join whatever cluster last ran here
        args["address"] = "local"
        args.setdefault("resources", {resource: 1})
    return args


def probe_address(address: str, timeout_s: float = 5.0) -> str | None:
    """Why a cluster address cannot be reached, or None. ray.init itself retries for minutes."""
    if address in ("local", "auto"):
        return None
    host, sep, port = address.split("://")[-1].rpartition(":")
    if not sep or not port.isdigit():
        return f"{address!r} is not <host>:<port>"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"


def _unreachable(address: str, resource: str, why: str) -> UsageError:
    return UsageError(
        f"cannot reach the Ray cluster at {address}: {why}. Start its head (`ray start --head "
        f"--resources '{{\"{resource}\": 1}}'`) or fix hydra.launcher.ray.init.address=<head host>:<port>."
    )


def connect(init_cfg: dict[str, Any], resource: str, hosts: int | None) -> dict[str, float]:
    """Join (or start) the Ray cluster and check it can run the sweep; UsageError if not."""
    import ray

    args = _init_args(init_cfg, resource)
    why = probe_address(str(args["address"]))
    if why:
        raise _unreachable(args["address"], resource, why)
    if not ray.is_initialized():
        try:
            ray.init(**args)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise _unreachable(args["address"], resource, " ".join(str(exc).split())[:300]) from exc
    resources = ray.cluster_resources()
    check_cluster(resources, resource, hosts, args["address"])
    return resources


def check_cluster(resources: dict[str, float], resource: str, hosts: int | None, address: str | None) -> None:
    """A cluster without evt hosts, or with fewer than the sweep asks for, cannot run it."""
    available = int(resources.get(resource, 0))
    where = "the local Ray" if address in (None, "local") else address
    if available < 1:
        raise UsageError(
            f"the Ray cluster at {where} has no host advertising the {resource!r} resource, so no evt "
            f"job could ever be placed. Join each evt host with `ray start --address=<head> "
            f"--resources '{{\"{resource}\": 1}}'` (or name the resource your hosts advertise: remote.host_resource)."
        )
    if hosts is not None and hosts > available:
        raise UsageError(
            f"remote.hosts={hosts} asks for more hosts at once than the Ray cluster at {where} "
            f"has ({available} advertise {resource!r}): join more hosts or lower remote.hosts."
        )


def preflight(overrides: list[str], compose) -> None:
    """Before Hydra starts a sweep on Ray: the cluster is reachable and has evt hosts (exit 2 if
    not). `compose` is hydra_app's (passed in: hydra_app imports this module)."""
    relevant = [o for o in overrides if o.lstrip("+~").startswith(("hydra/launcher", "hydra.launcher", "remote."))]
    if not any(o.lstrip("+~").startswith("hydra/launcher") for o in relevant):
        return
    cfg = compose(relevant, with_hydra=True)
    if cfg.hydra.launcher.get("_target_") != LAUNCHER_TARGET:
        return
    from omegaconf import OmegaConf

    connect(
        cast(dict[str, Any], OmegaConf.to_container(cfg.hydra.launcher.ray.init, resolve=True)),
        cfg.remote.host_resource,
        cfg.remote.hosts,
    )


# -- on the host that runs the job -------------------------------------------------------


def pack_job_dir(job_dir: Path, caps: Caps) -> tuple[bytes, list[dict[str, Any]]]:
    """A gzipped tar of the job directory; files over the caps are listed, not packed."""
    left: list[dict[str, Any]] = []
    total = 0
    import tarfile  # here: every `evt stress` passes through preflight(), few pack a job

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(p for p in job_dir.rglob("*") if p.is_file() and not p.is_symlink()):
            size = path.stat().st_size
            rel = str(path.relative_to(job_dir))
            if size > caps.max_file_bytes or total + size > caps.max_job_bytes:
                left.append({"path": rel, "bytes": size, "host": socket.gethostname(), "location": str(path)})
                continue
            tar.add(path, arcname=rel, recursive=False)
            total += size
    return buffer.getvalue(), left


def remove_packed(job_dir: Path, left: list[dict[str, Any]]) -> None:
    """The staged copy goes once packed; what stayed on the host stays where it was recorded."""
    if not left:
        shutil.rmtree(job_dir, ignore_errors=True)
        return
    keep = {job_dir / item["path"] for item in left}
    for path in job_dir.rglob("*"):
        if path.is_file() and path not in keep:
            path.unlink()


def run_job_on_host(
    hydra_context, sweep_config, task_function, singleton_state, staging_root: str, caps: Caps
) -> dict[str, Any]:
    """The Ray task: run the Hydra job in a staging directory here, return its files."""
    import ray
    from omegaconf import open_dict

    from hydra_plugins.hydra_ray_launcher._launcher_util import _run_job

    node = {
        "hostname": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "ip": ray.util.get_node_ip_address(),
    }
    staged_sweep = Path(staging_root) / node["node_id"][:12] / Path(str(sweep_config.hydra.sweep.dir)).name
    with open_dict(sweep_config):
        sweep_config.hydra.sweep.dir = str(staged_sweep)
    started = time.time()
    job = _run_job(hydra_context, sweep_config, task_function, singleton_state)
    ended = time.time()
    assert job.hydra_cfg is not None  # run_job sets it before the task runs
    job_dir = Path(str(job.hydra_cfg.hydra.runtime.output_dir))
    error = None
    if job.status.name != "COMPLETED":
        error = f"{type(job._return_value).__name__}: {job._return_value}"
    exit_code = job._return_value if isinstance(job._return_value, int) else 1
    archive, left = pack_job_dir(job_dir, caps)
    remove_packed(job_dir, left)
    return {
        "node": node,
        "started": started,
        "ended": ended,
        "exit_code": exit_code,
        "error": error,
        "archive": archive,
        "left_on_host": left,
        "staging_dir": str(job_dir),
    }


# -- on the submitting machine ---------------------------------------------------------


def unpack_job(result: dict[str, Any], job_dir: Path) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(result["archive"]), mode="r:gz") as tar:
        tar.extractall(job_dir, filter="data")
    record = {k: result[k] for k in ("node", "started", "ended", "exit_code", "error", "left_on_host", "staging_dir")}
    (job_dir / REMOTE_RECORD).write_text(json.dumps(record, indent=2))


def record_lost_job(job_dir: Path, overrides: Sequence[str], reason: str) -> None:
    """A job that never came back still gets a run directory, so the sweep has its row."""
    import yaml

    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    summary = {"status": "failed", "failure": reason, "exit_code": 1, "partial": True}
    (job_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (job_dir / REMOTE_RECORD).write_text(json.dumps({"node": None, "exit_code": 1, "error": reason}, indent=2))


def failure_reason(exc: BaseException) -> str:
    from ray import exceptions as rex

    lost = (rex.NodeDiedError, rex.WorkerCrashedError, rex.LocalRayletDiedError, rex.ObjectLostError)
    what = "its host was lost" if isinstance(exc, lost) else "the Ray task failed"
    detail = " ".join(str(exc).split())[:400]
    return f"{what} ({type(exc).__name__}): {detail}"


def staged_files(staging_root: str | os.PathLike) -> list[Path]:
    """What jobs left in a staging directory (tests and `evt cleanup` look here)."""
    root = Path(staging_root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []

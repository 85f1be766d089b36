"""Hydra's Ray launcher placing one evt stress job per host and bringing results home.

Selected by conf/hydra/launcher/ray.yaml (`evt stress -m hydra/launcher=ray`); the work
is in evt.stress.remote, this class only wires it into the Ray launcher plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from omegaconf import OmegaConf, open_dict

from evt.cli import hydra_app
from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher

log = logging.getLogger(__name__)


class EvtRayLauncher(RayLauncher):
    # evt.stress.remote is imported where a sweep uses it: Hydra imports every plugin module
    # on every run, a single run and a dry run included

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from evt.stress import remote

        assert self.config is not None  # setup() sets it
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        self.options = self.config.remote
        remote.connect(
            cast(dict[str, Any], OmegaConf.to_container(self.ray_cfg.init, resolve=True)),
            self.options.host_resource,
            self.options.hosts,
        )
        log.info(f"evt on Ray: {len(job_overrides)} jobs, one per host at a time; results in {sweep_dir}")
        jobs = [self._submit(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        return [self._collect(*job) for job in jobs]

    def _submit(self, idx: int, overrides: list[str]):
        from evt.stress import remote

        assert self.config is not None and self.hydra_context is not None  # setup() sets them
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"job_id_for_{idx}"
            sweep_config.hydra.job.num = idx
        job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        options = cast(dict[str, Any], OmegaConf.to_container(self.ray_cfg.remote, resolve=True) or {})
        options.setdefault("resources", {})[self.options.host_resource] = 1  # the whole host
        caps = remote.Caps(int(self.options.max_file_mb * 2**20), int(self.options.max_job_mb * 2**20))
        import ray  # here, not at the top: Hydra imports every plugin module on every run, and ray takes ~0.7 s

        task = ray.remote(**options)(remote.run_job_on_host)
        ref = task.remote(
            self.hydra_context,
            sweep_config,
            self.task_function,
            Singleton.get_state(),
            str(self.options.staging_dir),
            caps,
        )
        return ref, sweep_config, overrides, job_dir

    def _collect(self, ref, sweep_config, overrides: list[str], job_dir: Path) -> JobReturn:
        import ray

        from evt.stress import remote

        try:
            result = ray.get(ref)
            remote.unpack_job(result, job_dir)
            code = int(result["exit_code"])
            if result["error"]:
                log.error(f"job {job_dir.name} failed on {result['node']['hostname']}: {result['error']}")
        except ray.exceptions.RayError as exc:
            reason = remote.failure_reason(exc)
            log.error(f"job {job_dir.name} ({' '.join(overrides)}) failed: {reason}")
            remote.record_lost_job(job_dir, overrides, reason)
            code = 1
        hydra_app.record_exit_code(code)  # the job ran elsewhere: its code comes back this way
        ret = JobReturn(
            overrides=overrides,
            cfg=sweep_config,
            hydra_cfg=sweep_config,
            working_dir=str(job_dir),
            task_name=str(sweep_config.hydra.job.name),
            status=JobStatus.COMPLETED,
        )
        ret.return_value = code
        return ret

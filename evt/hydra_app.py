"""Running `evt stress` as a Hydra application.

The overrides are first composed and validated with Hydra's compose API (bad input:
exit 2 before Hydra makes a run directory); then the Hydra app runs the job(s), so
run directories, `.hydra/`, logging, `--cfg`, multirun sweeps and callbacks are Hydra's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from evt import config as evt_config
from evt.errors import RunError, UsageError
from evt.paths import CONF_DIR

_exit_codes: list[int] = []


def compose(overrides: list[str]):
    """The composed config for these overrides (no run directory, nothing started)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=evt_config.HYDRA_VERSION_BASE):
            return hydra_compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(str(exc).split())
        raise UsageError(f"invalid configuration: {message}") from exc


def validate(cfg) -> None:
    """Everything a run checks before it starts anything (specs, catalog, tracer)."""
    from evt import stress

    with tempfile.TemporaryDirectory(prefix="evt-validate-") as tmp:
        stress.validate(cfg, Path(tmp))


def run(hydra_args: list[str], overrides: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    multirun = any(a in ("-m", "--multirun") for a in hydra_args)
    info_only = any(a in ("--cfg", "-c", "--info", "-i", "--hydra-help") for a in hydra_args)
    if not multirun:
        cfg = compose(overrides)
        if not info_only:
            validate(cfg)

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=evt_config.HYDRA_VERSION_BASE)
    def stress_job(cfg) -> int:
        from evt import stress

        output_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            code = stress.run_stress(cfg, output_dir)
        except UsageError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            code = 2
        except RunError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            code = 1
        _exit_codes.append(code)
        return code

    _exit_codes.clear()
    saved = sys.argv
    sys.argv = ["evt-stress", *hydra_args, *overrides]
    try:
        stress_job()
    finally:
        sys.argv = saved
    return max(_exit_codes, default=0)

"""Running `evt stress` and `evt bench` as Hydra applications.

A single run is composed, validated and planned once, before Hydra makes its run
directory (bad input: exit 2, nothing created): its session is prepared for the run
directory Hydra is then told to use, and the Hydra job runs that same session. Run
directories, `.hydra/`, logging (evt.log, see evt/cli/runlog.py), `--cfg`, multirun sweeps
(each job prepared inside its job) and callbacks are Hydra's. Each app is a config in
conf/ and a session class with `prepare(cfg, run_dir)` and `run() -> exit code`.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import warnings
from pathlib import Path

from omegaconf import OmegaConf

from evt.cli import runlog
from evt.config import schema as evt_config
from evt.errors import RunError, UsageError
from evt.paths import CONF_DIR
from evt.stress.request import new_run_id
from evt.stress.session import StressSession

log = logging.getLogger("evt.stress.session")
_exit_codes: list[int] = []
_prepared: list = []  # the single run's session, prepared before Hydra starts
_process_run_id: list[str] = []
APPS = {"stress": "config", "bench": "bench"}  # app: its config in conf/

# conf/hydra/launcher/ray.yaml overrides the Ray launcher plugin's config of the same name on
# purpose and is validated against the plugin's schema: that is what Hydra warns about here.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/ray' is validated against ConfigStore schema")


def process_run_id(given: str | None = None) -> str:
    """The id of this process's single run (`run_id=...` when given, else made once), or
    of its sweep: the default hydra.run.dir and hydra.sweep.dir end with it, so two runs
    started in the same second get two directories, named as the run's containers and
    records are."""
    if given:
        return str(given)
    if not _process_run_id:
        _process_run_id.append(new_run_id())
    return _process_run_id[0]


OmegaConf.register_new_resolver("evt_run_id", process_run_id, replace=True)


def session_class(app: str):
    """The app's session; `evt bench` (pandas, its report) is imported only when run."""
    if app == "bench":
        from evt.bench.session import BenchSession

        return BenchSession
    return StressSession


def compose(overrides: list[str], with_hydra: bool = False, app: str = "stress", hydra=None):
    """The composed config for these overrides (no run directory, nothing started). With
    `hydra` (the Hydra of a single run, see run_once): composed as Hydra's main composes a
    run, its own logging configured, the `hydra` node included."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        if hydra is not None:
            cfg = hydra.compose_config(APPS[app], overrides, run_mode=RunMode.RUN, with_log_configuration=True)
        else:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base=evt_config.HYDRA_VERSION_BASE):
                cfg = hydra_compose(APPS[app], overrides=overrides, return_hydra_config=with_hydra)
        # a bad interpolation in evt's keys fails here, not when a phase reads the key
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"]), resolve=True)
        if with_hydra or hydra is not None:
            OmegaConf.select(cfg, "hydra.run.dir")
        return cfg
    except (HydraException, OmegaConfBaseException) as exc:
        message = " ".join(str(exc).split())
        raise UsageError(f"invalid configuration: {message}") from exc
    except ValueError as exc:  # Hydra's defaults list refuses a group option that is not a name
        raise UsageError(group_option_message(exc)) from exc


def group_option_message(exc: ValueError) -> str:
    return (
        f"invalid configuration: {' '.join(str(exc).split())}: a config group (scenario=, tracer=, runner=, ...) "
        "takes the name of one of its options, e.g. scenario=smoke; `evt stress --help` lists them."
    )


def prepare_single_run(composed, app: str = "stress"):
    """The session of a single run and the run directory Hydra is to use for it, from its
    composed config (with the `hydra` node, which is left as it is)."""
    from omegaconf import open_dict

    run_dir = str(OmegaConf.select(composed, "hydra.run.dir"))  # ${now:...} resolved once, here
    cfg = copy.deepcopy(composed)
    with open_dict(cfg):
        del cfg["hydra"]  # the job's config, as Hydra hands it to a job
        cfg.run_id = process_run_id(cfg.get("run_id"))  # the id the default run directory ends with
    with runlog.terminal_only():
        return session_class(app).prepare(cfg, Path(run_dir).absolute()), run_dir


def run_once(overrides: list[str], app: str, task) -> None:
    """A single run in Hydra's run mode, its configuration composed once: what Hydra's main
    does for a run (compose, callbacks, run_job), with evt's preparation between the compose
    and the run directory, so that bad input makes no directory. Hydra's main would compose
    twice more (once to read hydra.mode, once to run): a second of CPU on a small machine."""
    from hydra import version
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import (
        create_automatic_config_search_path,
        detect_calling_file_or_module_from_task_function,
        detect_task_name,
    )
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import run_job
    from hydra.types import HydraContext, RunMode
    from omegaconf import open_dict

    version.setbase(evt_config.HYDRA_VERSION_BASE)
    calling_file, calling_module = detect_calling_file_or_module_from_task_function(task)  # as Hydra's main
    search_path = create_automatic_config_search_path(calling_file, calling_module, str(CONF_DIR))
    hydra = Hydra.create_main_hydra2(
        task_name=detect_task_name(calling_file, calling_module), config_search_path=search_path
    )
    try:
        cfg = compose(overrides, app=app, hydra=hydra)
        session, run_dir = prepare_single_run(cfg, app)
        _prepared.append(session)
        with open_dict(cfg):
            cfg.hydra.run.dir = run_dir
            cfg.hydra.mode = RunMode.RUN
        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name=APPS[app])
        ret = run_job(
            hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
            task_function=task,
            config=cfg,
            job_dir_key="hydra.run.dir",
            job_subdir_key=None,
        )
        callbacks.on_run_end(config=cfg, config_name=APPS[app], job_return=ret)
        _ = ret.return_value  # the job's exception, if it raised one
    finally:
        GlobalHydra.instance().clear()


def _job(cfg, app: str) -> int:
    """One Hydra job: the prepared session, or (in a sweep) this job's own."""
    from hydra.core.hydra_config import HydraConfig

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        session = _prepared.pop() if _prepared else session_class(app).prepare(cfg, output_dir)
        return session.run()
    except UsageError as exc:
        status, failure, code = "bad_input", str(exc), 2
        message = f"Error: {exc}"
    except RunError as exc:
        status, failure, code = "failed", str(exc), 1
        message = f"Error: {exc}"
    except Exception as exc:  # a bug or an unforeseen host state: one line, traceback in the run dir
        from evt.cli import crash

        status, failure, code = "error", f"{type(exc).__name__}: {exc}", 1
        message = crash.report(exc, output_dir)
    log.error("%s", message)
    if not (output_dir / "summary.json").exists():  # a sweep's table still gets a row for the job
        from evt.results import writers as results

        results.write_failure_summary(cfg, output_dir, status, failure, code)
    return code


def record_exit_code(code: int) -> None:
    """A job's exit code, as the job ran here or as a launcher brought it back."""
    _exit_codes.append(code)


def run(hydra_args: list[str], overrides: list[str], app: str = "stress") -> int:
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    multirun = any(a in ("-m", "--multirun") for a in hydra_args)
    info_only = any(a in ("--cfg", "-c", "--info", "-i", "--hydra-help") for a in hydra_args)
    _prepared.clear()
    _process_run_id.clear()
    _exit_codes.clear()

    def job(cfg) -> int:
        code = _job(cfg, app)
        record_exit_code(code)
        return code

    single = not multirun and not info_only and set(hydra_args) <= {"--run", "-r"}
    if not multirun and info_only:
        compose(overrides, app=app)
    elif not multirun and not single:  # Hydra flags evt does not run itself: Hydra's main composes again
        session, run_dir = prepare_single_run(compose(overrides, with_hydra=True, app=app), app)
        _prepared.append(session)
        overrides = [*overrides, f"hydra.run.dir={evt_config.quote_override(run_dir)}"]
    elif not info_only:
        from evt.stress import remote

        remote.preflight(overrides, compose)  # a launcher that cannot place jobs: exit 2 before any job

    main = hydra.main(config_path=str(CONF_DIR), config_name=APPS[app], version_base=evt_config.HYDRA_VERSION_BASE)(job)
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [f"evt-{app}", *hydra_args, *overrides]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's own failures reach us, not its trimmed traceback
    try:
        if single:
            run_once(overrides, app, job)
        else:
            main()
    except OSError as exc:  # the job catches its own: this is Hydra making the run directory or its files
        raise UsageError(
            f"cannot create the run directory or its files: {exc.strerror or exc} ({exc.filename or 'run directory'}); "
            "choose a writable directory with hydra.run.dir=DIR (multirun: hydra.sweep.dir=DIR) or free some space."
        ) from exc
    except (HydraException, OmegaConfBaseException) as exc:  # Hydra's own settings (hydra.*), read only now
        raise UsageError(f"invalid configuration: {' '.join(str(exc).split())}") from exc
    except ValueError as exc:  # jobs catch their own errors: this is Hydra composing a sweep's job
        raise UsageError(group_option_message(exc)) from exc
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error
    return max(_exit_codes, default=0)

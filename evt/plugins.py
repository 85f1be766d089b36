"""Builds the plugins of a run from the composed config: the tracer (`tracer=<name>`) and
the runner (`runner=<name>`).

Each conf/tracer/<name>.yaml and conf/runner/<name>.yaml names its class in `_target_`;
the class is imported only when chosen, so a host without one plugin's dependencies can
still run the others, and a new tracer or runner is a class plus a YAML, with nothing to
register here. Nothing that uses them asks which one it has.
"""

from __future__ import annotations

from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from evt.errors import UsageError
from evt.paths import CONF_DIR
from evt.runners.base import Runner
from evt.tracers.base import Tracer


def group_options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def tracer_names() -> list[str]:
    """The tracers a run can pick: the options of the tracer config group."""
    return group_options("tracer")


def plugin_class(target: object, base: type) -> type | None:
    """The subclass of `base` a `_target_` names; None when it names none."""
    try:  # _partial_: look the class up without calling it (its own errors stay its own)
        factory = instantiate({"_target_": str(target), "_partial_": True})
    except InstantiationException:
        return None
    cls = getattr(factory, "func", None)
    return cls if isinstance(cls, type) and issubclass(cls, base) else None


def _plugin(cfg, group: str, base: type) -> type:
    target = cfg[group].get("_target_")
    cls = plugin_class(target, base)
    if cls is None:
        choices = ", ".join(f"{group}={name}" for name in group_options(group))
        raise UsageError(
            f"unknown {group} {cfg[group].get('name')!r} (_target_ {target!r} is not a {group} class): "
            f"use one of {choices} (the {group} config group, conf/{group}/)."
        )
    return cls


def make_tracer(cfg, run_dir: Path) -> Tracer:
    return _plugin(cfg, "tracer", Tracer)(cfg, Path(run_dir))


def make_runner(cfg, run_id: str, run_dir: Path) -> Runner:
    return _plugin(cfg, "runner", Runner)(cfg, run_id, Path(run_dir))

"""Builds the plugins of a run from the composed config: the tracer (`tracer=<name>`).

Each conf/tracer/<name>.yaml names its class in `_target_`; the class is imported only
when chosen, so a host without one tracer's dependencies can still run the others, and
a new tracer is a class plus a YAML, with nothing to register here.
"""

from __future__ import annotations

from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from evt.errors import UsageError
from evt.paths import CONF_DIR
from evt.tracers.base import Tracer


def tracer_names() -> list[str]:
    """The tracers a run can pick: the options of the tracer config group."""
    return sorted(p.stem for p in (CONF_DIR / "tracer").glob("*.yaml"))


def tracer_class(target: object) -> type[Tracer] | None:
    """The Tracer subclass a `_target_` names; None when it names none."""
    try:  # _partial_: look the class up without calling it (its own errors stay its own)
        factory = instantiate({"_target_": str(target), "_partial_": True})
    except InstantiationException:
        return None
    cls = getattr(factory, "func", None)
    return cls if isinstance(cls, type) and issubclass(cls, Tracer) else None


def make_tracer(cfg, run_dir: Path) -> Tracer:
    target = cfg.tracer.get("_target_")
    cls = tracer_class(target)
    if cls is None:
        choices = ", ".join(f"tracer={name}" for name in tracer_names())
        raise UsageError(
            f"unknown tracer {cfg.tracer.get('name')!r} (_target_ {target!r} is not a tracer class): "
            f"use one of {choices} (the tracer config group, conf/tracer/)."
        )
    return cls(cfg, Path(run_dir))

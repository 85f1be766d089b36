"""Builds the plugins of a run, each from its own config node: the tracer (`tracer=<name>`)
and the runner (`runner=<name>`).

Each conf/tracer/<name>.yaml and conf/runner/<name>.yaml names its class in `_target_`
and holds the class's keyword arguments (its schema: a dataclass its plugin registers in
the ConfigStore, see docs/plugins.md). The class is looked up with hydra.utils.get_class
and built with hydra.utils.instantiate from its own node (a PluginOption, cut from the
root config where the run request is made, evt/stress/request.py) plus `run` (a
RunContext): no plugin ever sees the root config. A class is imported only when chosen,
so a host without one plugin's dependencies can still run the others, and a new tracer or
runner is a class, a schema module and a YAML, with nothing to register here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from evt.errors import UsageError
from evt.paths import CONF_DIR
from evt.runners.base import Runner
from evt.stress.plan import RunContext
from evt.tracers.base import Tracer

PLUGIN_GROUPS: dict[str, type] = {"tracer": Tracer, "runner": Runner}  # config group -> the base its classes extend


def group_options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def tracer_names() -> list[str]:
    """The tracers a run can pick: the options of the tracer config group."""
    return group_options("tracer")


def plugin_class(target: object, base: type) -> type | None:
    """The subclass of `base` a `_target_` names; None when it names none."""
    try:
        cls = get_class(str(target))
    except Exception:  # ImportError, ValueError: get_class says nothing more useful to a user
        return None
    return cls if issubclass(cls, base) else None


@dataclass(frozen=True)
class PluginOption:
    """A tracer's or runner's own config node, resolved and cut from the root config (what
    hydra.utils.instantiate builds the plugin from), and the option's name."""

    name: str
    node: DictConfig

    @classmethod
    def of(cls, node) -> PluginOption:
        """The option a group's node holds (cfg.tracer, cfg.runner, cfg.bench.baseline_tracer)."""
        return cls(name=str(node.get("name")), node=detached(node))


def build_plugin(option: PluginOption, group: str, run: RunContext):
    """The plugin an option describes, built with its keys and `run`."""
    base = PLUGIN_GROUPS[group]
    node = option.node
    target = node.get("_target_")
    if plugin_class(target, base) is None:
        choices = ", ".join(f"{group}={name}" for name in group_options(group))
        raise UsageError(
            f"unknown {group} {node.get('name')!r} (_target_ {target!r} is not a {group} class): "
            f"use one of {choices} (the {group} config group, conf/{group}/)."
        )
    try:
        return instantiate(copy.deepcopy(node), run=run)
    except InstantiationException as exc:
        # the plugin's own refusal (a UsageError naming the bad value) stays its own
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def detached(node) -> DictConfig:
    """The node resolved (`settings: ${tracee}` becomes the section's values) and cut from
    the root config, so nothing reaches the root through a plugin's keyword arguments."""
    node = copy.deepcopy(node)
    OmegaConf.resolve(node)
    node._set_parent(None)
    return node


def make_tracer(option: PluginOption, run: RunContext) -> Tracer:
    return build_plugin(option, "tracer", run)


def make_runner(option: PluginOption, run: RunContext) -> Runner:
    return build_plugin(option, "runner", run)

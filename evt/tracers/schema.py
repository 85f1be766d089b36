"""The tracer config group's shared schemas, and the options that need no package of
their own (tracer=none and the command tracers, conf/tracer/opensnoop.yaml ...).

A tracer class is built from its option's node (conf/tracer/<name>.yaml) with the node's
keys as keyword arguments plus `run` (evt.stress.plan.RunContext): never the root
config. A tracer with settings users type under a key of their own (tracee.*, bpftrace.*)
declares that section in its own schema module (evt.config.sections) and its option
passes it as `settings: ${<key>}`. See docs/plugins.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TracerConfig:
    """The tracer group (conf/tracer/<name>.yaml): its name and the class built for it."""

    name: str = MISSING
    _target_: str = MISSING  # a evt.tracers.base.Tracer subclass, built by evt.plugins


@dataclass
class ProcessTracerConfig:
    """What every tracer that runs a program has (evt.tracers.process.ProcessTracer)."""

    binary: str = ""  # the executable, looked up on PATH
    ready_timeout: str = "60s"  # start -> ready, at most
    init_cooldown: str = "0s"  # settling time after ready, before the units are released
    stop_timeout: str = "10s"  # first signal -> SIGKILL


@dataclass
class NoneTracerConfig(TracerConfig):
    name: str = "none"
    _target_: str = "evt.tracers.none.NoneTracer"


@dataclass
class CommandTracerConfig(TracerConfig, ProcessTracerConfig):
    """A streaming tracer run as a command and read line by line (evt/tracers/command.py);
    its settings are the option's own keys (tracer.binary=..., tracer.ready_timeout=...)."""

    _target_: str = "evt.tracers.command.CommandTracer"
    command: list[str] = field(default_factory=list)  # argv, each item a Jinja template (`{{ binary }}`)
    env: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # the evt events whose units it counts
    line: str | None = None  # an event line: named groups, those in `match` required
    # line group -> the unit's value (a Jinja template over its marker), e.g. comm: "{{ marker.comm }}";
    # no default: a merge would keep a default's keys beside the YAML's
    match: dict[str, str] = field(default_factory=dict)
    event_names: dict[str, str] = field(default_factory=dict)  # an `event` group's value -> evt event
    lost: str | None = None  # its lost-event message, the number in a group named `lost`
    # Ready when it prints a line matching ready_pattern (stdout or stderr) within
    # ready_timeout, or ready_delay after it started
    ready_pattern: str | None = None
    ready_delay: str | None = None
    stop_signal: str = "SIGINT"  # the signal that makes it flush its output and exit
    install_hint: str = ""  # how to install it, said when its binary is not found


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="tracer", name="tracer_schema", node=TracerConfig)
    cs.store(group="tracer", name="none_schema", node=NoneTracerConfig)
    cs.store(group="tracer", name="command_tracer_schema", node=CommandTracerConfig)


register()

"""evt/stress/request.py: the composed config becomes a typed run request once, at the
entrance; below it the session, the planner, the plugins' factory and the lines get typed
values (and a plugin its own node), never the root config."""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

import pytest
from omegaconf import Container, DictConfig

from evt.config.spec import EventSpec
from evt.errors import UsageError
from evt.plugins import PluginOption
from evt.stress import session as session_module
from evt.stress.request import Duration, RunRequest, StressSettings
from evt.workload import lines
from helpers import compose_cfg

EVT = Path(__file__).resolve().parents[2] / "evt"
# Modules below the entrance: none of their functions takes the composed config
BELOW_THE_ENTRANCE = (
    "stress/session.py",
    "stress/planner.py",
    "stress/plan.py",
    "stress/outcome.py",
    "stress/suite.py",
    "stress/progress.py",
    "stress/timeseries.py",
    "plugins.py",
    "workload/lines.py",
    "results/provenance.py",
    "bench/rounds.py",
)
ENTRANCES = {("stress/session.py", "prepare"), ("bench/rounds.py", "from_config")}


def test_the_request_holds_typed_settings_specs_and_plugin_options():
    request = RunRequest.from_config(
        compose_cfg("scenario=smoke", "runner=local", "tracer=none", "stress.timeout=90s", "stress.max_loss_pct=5")
    )
    assert request.settings.timeout == Duration("90s", 90_000_000_000) and request.settings.timeout.seconds == 90.0
    assert request.settings.stress_end_cooldown.text == "10s" and request.settings.max_loss_pct == 5.0
    assert request.settings.unit_signal_timeout == "15m0s" and request.settings.ready_timeout.seconds == 60.0
    assert request.specs and all(isinstance(spec, EventSpec) for spec in request.specs)
    assert (request.runner.name, request.tracer.name, request.scenarios) == ("local", "none", ("smoke",))
    assert request.run_id  # made when the config names none


def test_a_request_is_frozen():
    request = RunRequest.from_config(compose_cfg("events=[ptrace]", "tracer=none"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.run_id = "other"  # type: ignore[misc]


def test_bad_settings_keep_their_messages():
    with pytest.raises(UsageError, match=r"^invalid stress\.progress_interval 'often': expected a Go duration"):
        StressSettings.from_config(compose_cfg("stress.progress_interval=often"))
    with pytest.raises(UsageError, match=r"^invalid runner\.ready_timeout"):
        RunRequest.from_config(compose_cfg("events=[ptrace]", "runner.ready_timeout=never"))
    with pytest.raises(UsageError, match=r"^invalid run_id"):
        RunRequest.from_config(compose_cfg("events=[ptrace]", "run_id='a b'"))


def reaches_the_root(value: object) -> bool:
    return isinstance(value, Container) and value._get_root() is not value


def test_the_plugin_nodes_are_cut_from_the_root_config():
    request = RunRequest.from_config(compose_cfg("events=[ptrace]", "tracer=bpftrace"))
    for option in (request.runner, request.tracer):
        assert isinstance(option.node, DictConfig) and not reaches_the_root(option.node)
    assert request.tracer.node.settings.mode == "count"  # `settings: ${bpftrace}` resolved into the node


def no_config_in(value: object) -> bool:
    """Whether a value passed below the entrance is free of the composed config: no
    OmegaConf container, and within a dataclass none but a plugin's own detached node."""
    if isinstance(value, Container):
        return False
    if isinstance(value, PluginOption):
        return not reaches_the_root(value.node)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(no_config_in(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return all(no_config_in(item) for item in value)
    return True


def test_below_the_entrance_nothing_receives_the_config(tmp_path, monkeypatch):
    """A dry run from the composed config: every call the session makes to the planner, the
    plugins' factory, the host check and the lines gets typed values only."""
    calls: list[tuple[str, tuple, dict]] = []

    def spy(name, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            calls.append((name, args, kwargs))
            return func(*args, **kwargs)

        return wrapper

    for name in ("make_runner", "make_tracer", "build_plan", "print_plan", "check_host_fits"):
        monkeypatch.setattr(session_module, name, spy(name, getattr(session_module, name)))
    for name in ("start", "dry_run"):
        monkeypatch.setattr(lines, name, spy(f"lines.{name}", getattr(lines, name)))
    cfg = compose_cfg("events=[ptrace]", "runner=local", "tracer=none", "stress.dry_run=true")
    session = session_module.StressSession.prepare(cfg, tmp_path)
    assert session.run() == 0
    assert {name for name, _, _ in calls} == {
        "make_runner",
        "make_tracer",
        "build_plan",
        "print_plan",
        "check_host_fits",
        "lines.start",
        "lines.dry_run",
    }
    bad = [name for name, args, kwargs in calls if not no_config_in([*args, *kwargs.values()])]
    assert bad == []
    kept = [name for name, value in vars(session).items() if not no_config_in(value)]
    assert kept == [] and isinstance(session.request, RunRequest)


def test_the_spy_sees_a_config_where_there_is_one():
    cfg = compose_cfg("events=[ptrace]")
    assert not no_config_in(cfg) and not no_config_in([1, cfg.stress])
    assert not no_config_in(PluginOption("none", cfg.tracer))  # a node still inside the root config
    assert no_config_in(PluginOption.of(cfg.tracer))


def config_parameters(path: Path) -> list[str]:
    """Functions of a module with a parameter that takes the composed config."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
            if names & {"cfg", "config", "round_cfg"}:
                found.append(node.name)
    return found


def test_no_function_below_the_entrance_takes_the_config():
    offenders = [
        f"{module}:{name}"
        for module in BELOW_THE_ENTRANCE
        for name in config_parameters(EVT / module)
        if (module, name) not in ENTRANCES
    ]
    assert offenders == []


def test_the_parameter_check_sees_a_config_parameter(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def a(cfg): pass\ndef b(request, *, config=None): pass\ndef c(request): pass\n")
    assert config_parameters(source) == ["a", "b"]

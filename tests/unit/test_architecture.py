"""Limits that keep evt easy to change (issue #7): short modules and functions, no import
cycle (imports inside functions count), the session never asks which tracer or runner it
has, and runners never load the trigger's internals."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import Container, DictConfig, OmegaConf

from evt.plugins import PLUGIN_GROUPS, PluginOption, build_plugin, group_options, plugin_class
from helpers import compose_cfg, plugin_run

EVT = Path(__file__).resolve().parents[2] / "evt"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Where asking for a tracer's or runner's name is the point: the plugins themselves.
NAME_CHECKS_ALLOWED = ("tracers/", "runners/")
# every option of the plugin config groups (conf/tracer/*.yaml, conf/runner/*.yaml)
PLUGIN_NAMES = {name for group in PLUGIN_GROUPS for name in group_options(group)}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the evt package."""
    found = {}
    for path in sorted(EVT.rglob("*.py")):
        parts = list(path.relative_to(EVT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The evt modules this one imports, at any depth (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from evt.x import Name` -> evt.x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {name: imported(name, path, set(mods)) for name, path in mods.items()}
    # importing evt.a.b runs evt/a/__init__.py first: a package's parents are imported too
    for name in graph:
        graph[name] = {dep for dep in graph[name] if not name.startswith(dep + ".")}
    return graph


def test_no_module_is_longer_than_the_limit():
    long = {
        str(p.relative_to(EVT)): n
        for p in EVT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_longer_than_the_limit():
    long = {}
    for path in EVT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(EVT)}:{node.name}"] = length
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_import_cycle():
    assert import_cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles_through_function_level_imports(tmp_path):
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text("import os\nfrom evt import x\n\ndef f():\n    from evt.y import Z\n    from . import w\n")
    assert imported("evt.m", source, {"evt", "evt.x", "evt.y", "evt.w", "evt.m"}) == {"evt", "evt.x", "evt.y", "evt.w"}


def name_comparisons(path: Path) -> list[int]:
    """Lines comparing `<something>.name` with a plugin's name (==, !=, in)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = [o for o in operands if isinstance(o, ast.Attribute) and o.attr == "name"]
        literals = {
            c.value for o in operands for c in ast.walk(o) if isinstance(c, ast.Constant) and isinstance(c.value, str)
        }
        if names and literals & PLUGIN_NAMES:
            found.append(node.lineno)
    return found


def test_only_the_plugins_and_the_schema_ask_which_tracer_or_runner_runs():
    offenders = [
        f"{path.relative_to(EVT)}:{line}"
        for path in EVT.rglob("*.py")
        if not str(path.relative_to(EVT)).startswith(NAME_CHECKS_ALLOWED)
        for line in name_comparisons(path)
    ]
    assert offenders == []


def test_the_name_check_sees_the_forms_it_forbids(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        'a = cfg.tracer.name == "tracee"\nb = "docker" != cfg.runner.name\n'
        'c = x.name in ("none", "y")\nd = x.name == "other"\n'
    )
    assert name_comparisons(source) == [1, 2, 3]


@pytest.mark.parametrize("runner", ["evt.runners.base", "evt.runners.docker", "evt.runners.local"])
def test_runners_do_not_load_the_trigger_or_libc(runner):
    code = (
        f"import sys, {runner}; print(sorted(m for m in sys.modules if m in ('evt.workload.trigger', "
        "'evt.workload.actions', 'ctypes')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plugin_names_come_from_the_config_groups():
    assert {"tracee", "bpftrace", "opensnoop", "execsnoop", "none", "docker", "local"} <= PLUGIN_NAMES


def reaches_the_root_config(value: object) -> bool:
    """Whether a value is, or leads through its parents to, the composed root config."""
    if not isinstance(value, Container):
        return False
    root = value._get_root()
    return isinstance(root, DictConfig) and "stress" in root and "tracer" in root


@pytest.mark.parametrize("group,option", [(g, o) for g in PLUGIN_GROUPS for o in group_options(g)])
def test_no_tracer_or_runner_receives_the_root_config(group, option, tmp_path):
    """Each plugin is built from its own node and the run: no parameter takes a config
    beside its own keys, and nothing it keeps leads back to the root config."""
    cfg = compose_cfg(f"{group}={option}")
    cls = plugin_class(cfg[group]._target_, PLUGIN_GROUPS[group])
    assert cls is not None
    parameters = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert not parameters & {"cfg", "config", "root"}, f"{cls.__qualname__} takes {parameters}"
    plugin = build_plugin(PluginOption.of(cfg[group]), group, plugin_run(cfg, tmp_path, "r1"))
    kept = [name for name, value in vars(plugin).items() if value is cfg or reaches_the_root_config(value)]
    assert kept == [], f"{cls.__qualname__} keeps the root config in {kept}"


def test_the_root_config_check_sees_it(tmp_path):
    cfg = compose_cfg()
    assert reaches_the_root_config(cfg) and reaches_the_root_config(cfg.tracee)
    assert not reaches_the_root_config(OmegaConf.create(OmegaConf.to_container(cfg.tracee)))

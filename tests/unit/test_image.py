"""The trigger-runner image's recipe: pinned dependencies in a layer of their own, before
evt's sources (the build itself is exercised by `make test`'s image and
benchmarks/bench_image.py)."""

from __future__ import annotations

import re
import tomllib

from evt import paths
from evt.runners import image

ROOT = paths.CHECKOUT


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / image.CONSTRAINTS).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"] + ["setuptools", "wheel"]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", dep).group()).lower() for dep in wanted}
    assert names - set(pins()) == set()


def test_the_installed_versions_are_the_pinned_ones():
    from importlib.metadata import distributions

    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions()}
    drift = {
        name: (version, installed[name])
        for name, version in pins().items()
        if name in installed and name not in ("setuptools", "wheel") and installed[name] != version
    }
    assert drift == {}, "make setup installs through constraints.txt"


def test_dependencies_are_installed_before_the_sources_are_copied():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    install_deps = next(i for i, line in enumerate(lines) if "wheels/*.whl" in line)
    first_source = next(
        i for i, line in enumerate(lines) if re.match(r"COPY (evt|conf|templates|triggers|pyproject.toml) ", line)
    )
    assert any("constraints.txt" in line for line in lines[: install_deps + 1])
    assert install_deps < first_source


def copy_recipe(target):
    for name in ["Dockerfile", "pyproject.toml", image.CONSTRAINTS]:
        (target / name).write_bytes((ROOT / name).read_bytes())
    for folder in ["evt", "conf", "templates", "triggers"]:
        (target / folder).mkdir()
    (target / "evt" / "a.py").write_text("x = 1\n")


def test_a_source_change_makes_the_image_stale_but_keeps_the_wheels(tmp_path):
    copy_recipe(tmp_path)
    before, key = image.source_hash(tmp_path), image.wheels_key(tmp_path)
    (tmp_path / "evt" / "a.py").write_text("x = 2\n")
    assert image.source_hash(tmp_path) != before and image.wheels_key(tmp_path) == key
    wheels = tmp_path / ".build" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "kept.whl").write_text("")
    wheels.with_name("wheels.stamp").write_text(key)
    image.prepare_wheels(wheels, tmp_path)  # made from the same pins: nothing to do
    assert [p.name for p in wheels.iterdir()] == ["kept.whl"]


def test_a_new_pin_makes_the_wheels_again(tmp_path):
    copy_recipe(tmp_path)
    key = image.wheels_key(tmp_path)
    with open(tmp_path / image.CONSTRAINTS, "a") as f:
        f.write("sh==2.4.0\n")
    assert image.wheels_key(tmp_path) != key

"""evt finds conf/, templates/ and triggers/ in a checkout (installed from a wheel:
tests/integration/test_install.py)."""

from __future__ import annotations

from pathlib import Path

from evt import paths

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_top_level_directories():
    assert paths.CHECKOUT == ROOT
    assert paths.TRIGGERS_DIR == ROOT / "triggers" and paths.CONF_DIR == ROOT / "conf"


def test_the_wheel_lists_every_package_of_evt():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "evt").rglob("__init__.py")}
    assert packages <= listed

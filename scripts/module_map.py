#!/usr/bin/env python3
"""The module map of docs/architecture.md, generated from the code: every package and
module under evt/ with the first sentence of its docstring, between the markers
`<!-- module-map -->` and `<!-- /module-map -->`.

`python3 scripts/module_map.py` rewrites the map; `--check` exits 1 when the page differs
from the code (tests/unit/test_docs.py runs that, so the map cannot drift). Docstrings are
read with `ast`, without importing evt.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- module-map -->\n)(.*?)(<!-- /module-map -->)", re.S)


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text()))
    if not doc:
        return "(no docstring)"
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?[.:;])(\s|$)", paragraph)
    sentence = match.group(1) if match else paragraph
    return sentence.rstrip(".:;")


def entries(package: Path, depth: int = 0) -> list[str]:
    """The map's lines for a package: itself, its modules, then its subpackages."""
    rel = package.relative_to(ROOT).as_posix()
    lines = [f"{'  ' * depth}- `{rel}/` — {summary(package / '__init__.py')}"]
    for module in sorted(p for p in package.glob("*.py") if p.name != "__init__.py"):
        lines.append(f"{'  ' * (depth + 1)}- `{module.name}` — {summary(module)}")
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
        lines += entries(sub, depth + 1)
    return lines


def render() -> str:
    return "\n".join(entries(ROOT / "evt")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when docs/architecture.md is not what the code gives"
    )
    args = parser.parse_args()
    text = PAGE.read_text()
    if not BLOCK.search(text):
        print(f"{PAGE}: no <!-- module-map --> block", file=sys.stderr)
        return 1
    updated = BLOCK.sub(lambda m: m.group(1) + render() + m.group(3), text)
    if args.check:
        if updated != text:
            print(f"{PAGE}: the module map differs from evt/: run `python3 scripts/module_map.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())

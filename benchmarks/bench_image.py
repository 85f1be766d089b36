#!/usr/bin/env python3
"""The trigger-runner image: a full build vs the rebuild after a one-line source change,
measured side by side in one run (target: the rebuild takes under a third of the full
build, since dependencies sit in a layer of their own before the sources).

Both builds run on a copy of the checkout's image sources (the checkout is not touched),
FROM the local Debian base, tagged <EVT_TRIGGER_RUNNER_IMAGE>-bench, removed at the end.
The full build uses no layer cache; the rebuild follows a one-line change in evt/.
Usage: benchmarks/bench_image.py [--base-image evt-base:bookworm] [--strict]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from evt.runners import image
from evt.runners.docker import docker_client

SOURCES = ["Dockerfile", ".dockerignore", "pyproject.toml", image.CONSTRAINTS, "evt", "conf", "templates", "triggers"]


def copy_sources(target: Path) -> None:
    root = image.checkout()
    for name in SOURCES:
        if (root / name).is_dir():
            shutil.copytree(root / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(root / name, target / name)


def timed_build(tag: str, base: str, source: Path, nocache: bool) -> float:
    started = time.monotonic()
    image.build(tag, base, source=source, nocache=nocache)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default=os.environ.get("EVT_BASE_IMAGE", image.DEFAULT_BASE))
    parser.add_argument("--strict", action="store_true", help="exit 1 when the rebuild misses the target")
    args = parser.parse_args()
    repository, _, version = image.image_name().partition(":")
    tag = f"{repository}:{version or 'latest'}-bench"
    with tempfile.TemporaryDirectory(prefix="evt-bench-image-") as tmp:
        source = Path(tmp)
        copy_sources(source)
        try:
            full = timed_build(tag, args.base_image, source, nocache=True)
            with open(source / "evt" / "__init__.py", "a") as f:
                f.write("# a one-line source change\n")
            rebuild = timed_build(tag, args.base_image, source, nocache=False)
        finally:
            try:
                docker_client().images.remove(tag, force=True)
            except Exception as exc:  # nothing built, or already gone
                print(f"(removing {tag}: {exc})", file=sys.stderr)
    ratio = rebuild / full
    print(f"full build (no cache)             {full:7.1f} s")
    print(f"rebuild after a one-line change   {rebuild:7.1f} s")
    print(f"rebuild / full                    {ratio:7.2f}  (target < 0.33)")
    return 1 if args.strict and ratio >= 1 / 3 else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The trigger-runner image: a full build vs the rebuild after a one-line source change,
measured side by side in one run (target: the rebuild takes under a third of the full
build, since dependencies sit in a layer of their own before the sources).

Both builds run on a copy of the checkout's image sources (the checkout is not touched),
FROM the local Debian base, tagged <EVT_TRIGGER_RUNNER_IMAGE>-bench, removed at the end.
The full build uses no layer cache; the rebuild follows a one-line change in evt/.
At the tiny size (EVT_BENCH_TINY=1) the first build may use the layer cache and the
checkout's prepared wheels, so both builds take seconds: the code path, not the figure.
Usage: benchmarks/bench_image.py [--base-image evt-base:bookworm] [--strict]
Writes benchmarks/results/bench_image.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import Record, tiny

from evt.runners import image
from evt.runners.docker import docker_client


def sources(root: Path) -> list[str]:
    """What the image is built from: the Dockerfile and everything it COPYs from the checkout
    (the prepared wheels under .build/ are made by the build itself)."""
    copied = [line.split()[1] for line in (root / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    return ["Dockerfile", ".dockerignore", *[name for name in copied if not name.startswith(".build")]]


def copy_sources(target: Path) -> None:
    root = image.checkout()
    for name in sources(root):
        if (root / name).is_dir():
            shutil.copytree(root / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(root / name, target / name)
    wheels = root / ".build" / "wheels"
    if tiny() and wheels.is_dir():  # the tiny size measures the code path: reuse the checkout's wheels
        shutil.copytree(wheels.parent, target / ".build")


def timed_build(tag: str, base: str, source: Path, nocache: bool) -> float:
    started = time.monotonic()
    image.build(tag, base, source=source, nocache=nocache)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default=os.environ.get("EVT_BASE_IMAGE", image.DEFAULT_BASE))
    parser.add_argument("--strict", action="store_true", help="exit 1 when the rebuild misses the target")
    args = parser.parse_args()
    record = Record(
        "bench_image",
        "the trigger-runner image: a full build without layer cache vs the rebuild after a one-line change in evt/",
        {"base_image": args.base_image},
    )
    repository, _, version = image.image_name().partition(":")
    tag = f"{repository}:{version or 'latest'}-bench"
    with tempfile.TemporaryDirectory(prefix="evt-bench-image-") as tmp:
        source = Path(tmp)
        copy_sources(source)
        try:
            full = timed_build(tag, args.base_image, source, nocache=not tiny())
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
    record.figure(
        "rebuild after a one-line change",
        rebuild,
        "s",
        baseline=full,
        baseline_label="full build without layer cache (wheels prepared too)",
        op="<",
        target=0.33,
    )
    record.write()
    return 1 if args.strict and ratio >= 1 / 3 else 0


if __name__ == "__main__":
    sys.exit(main())

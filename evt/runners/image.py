"""The trigger-runner image: a local Debian base image and the image itself.

`evt image base` makes a base image with no registry: mmdebstrap writes a Debian rootfs
tarball from Debian's packages and the docker SDK imports it. `evt image build` builds
the Dockerfile FROM that base (or the Dockerfile's public default), with the Python
dependencies as wheels prepared on the host, so the build needs no index either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import sh

from evt import paths
from evt.errors import RunError, UsageError
from evt.runners.docker import docker_client

DEFAULT_IMAGE = "evt-trigger-runner:latest"
DEFAULT_BASE = "evt-base:bookworm"
SOURCE_LABEL = "evt.source-hash"
CONSTRAINTS = "constraints.txt"  # the pinned versions, also used by make setup
# What the catalog's scripts run, plus Python for evt itself.
BASE_PACKAGES = [
    "python3",
    "python3-venv",
    "ca-certificates",
    "strace",
    "bpftool",
    "bpftrace",
    "inotify-tools",
    "iputils-ping",
    "netcat-openbsd",
    "sudo",
    "util-linux",
    "procps",
    "coreutils",
]


def image_name() -> str:
    return os.environ.get("EVT_TRIGGER_RUNNER_IMAGE") or DEFAULT_IMAGE


def checkout() -> Path:
    """The sources the image is built from: only a checkout has the Dockerfile."""
    if paths.CHECKOUT is None:
        raise UsageError(
            f"evt runs from an installed wheel ({paths.PACKAGE}); the trigger-runner image is built from a "
            "checkout: clone evt and run `make image` (or `evt image build`) there."
        )
    return paths.CHECKOUT


def source_hash(source: Path | None = None) -> str:
    """Hash of everything the image copies in: an image with another hash is stale."""
    source = source or checkout()
    digest = hashlib.sha256()
    for rel in ["Dockerfile", "pyproject.toml", CONSTRAINTS]:
        digest.update((source / rel).read_bytes())
    for folder in ["evt", "hydra_plugins", "conf", "templates", "triggers"]:
        for path in sorted((source / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(source)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_base(tag: str = DEFAULT_BASE, suite: str = "bookworm") -> None:
    """Debian rootfs via mmdebstrap, imported as an image."""
    client = docker_client(timeout=600)
    with tempfile.TemporaryDirectory(prefix="evt-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        try:
            sh.mmdebstrap(
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(tarball),
                _out=sys.stderr,
                _err=sys.stderr,
            )
        except sh.CommandNotFound as exc:
            raise UsageError("mmdebstrap not installed: run `make setup` (or apt-get install mmdebstrap).") from exc
        except sh.ErrorReturnCode as exc:
            raise RunError(f"mmdebstrap failed with exit code {exc.exit_code}") from exc
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version or "latest")
    print(f"base image {tag} imported")


def dependencies(source: Path) -> list[str]:
    import tomllib

    return tomllib.loads((source / "pyproject.toml").read_text())["project"]["dependencies"]


def wheels_key(source: Path) -> str:
    """What the image's dependency wheels are made from: the pins and the dependencies."""
    return hashlib.sha256("\n".join([(source / CONSTRAINTS).read_text(), *dependencies(source)]).encode()).hexdigest()


def prepare_wheels(target: Path, source: Path) -> None:
    """Wheels of evt's dependencies (and the build backend), at the versions pinned in
    constraints.txt, for an offline image build. The directory holds exactly these, so
    the image's dependency layer is rebuilt only when a pin or a dependency changes;
    they are made again only then (a stamp beside them records what they were made from)."""
    deps = dependencies(source)
    wanted = wheels_key(source)
    stamp = target.with_name(target.name + ".stamp")
    if target.is_dir() and stamp.is_file() and stamp.read_text() == wanted:
        return
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    pip = sh.Command(sys.executable).bake("-m", "pip")
    try:
        # `pip wheel` also turns sdist-only dependencies (antlr4 for omegaconf) into wheels
        pip(
            "wheel",
            "-q",
            "-w",
            str(target),
            "-c",
            str(source / CONSTRAINTS),
            *deps,
            "setuptools",
            "wheel",
            _err=sys.stderr,
        )
    except sh.ErrorReturnCode as exc:
        raise RunError(f"pip could not prepare the image's Python dependencies (exit {exc.exit_code})") from exc
    stamp.write_text(wanted)


def build(
    tag: str | None = None, base_image: str | None = None, source: Path | None = None, nocache: bool = False
) -> str:
    """Build the image from a checkout (default: the one evt runs from)."""
    tag = tag or image_name()
    client = docker_client(timeout=600)
    source = source or checkout()
    prepare_wheels(source / ".build" / "wheels", source)
    buildargs = {"BASE_IMAGE": base_image} if base_image else {}
    print(f"building {tag}" + (f" FROM {base_image}" if base_image else ""))
    try:
        client.images.build(
            path=str(source),
            tag=tag,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            nocache=nocache,
            labels={SOURCE_LABEL: source_hash(source)},
        )
    except Exception as exc:  # docker.errors.BuildError carries the build log
        log = "".join(chunk.get("stream", "") for chunk in getattr(exc, "build_log", []) or [])
        raise RunError(f"image build failed: {exc}\n{log[-2000:]}") from exc
    print(f"image {tag} built")
    return tag


def image_status(tag: str | None = None) -> str:
    """'missing', 'stale' (built from other sources) or 'current'."""
    import docker

    tag = tag or image_name()
    try:
        image = docker_client(timeout=600).images.get(tag)
    except docker.errors.ImageNotFound:
        return "missing"
    return "current" if image.labels.get(SOURCE_LABEL) == source_hash() else "stale"

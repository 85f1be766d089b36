"""The trigger-runner image: a local Debian base image and the image itself.

`evt image base` makes a base image with no registry: mmdebstrap writes a Debian rootfs
tarball from Debian's packages and the docker SDK imports it. `evt image build` builds
the Dockerfile FROM that base (or the Dockerfile's public default), with the Python
dependencies as wheels prepared on the host, so the build needs no index either.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import sh

from evt.errors import RunError, UsageError
from evt.paths import HOME
from evt.runners.docker import docker_client

DEFAULT_IMAGE = "evt-trigger-runner:latest"
DEFAULT_BASE = "evt-base:bookworm"
SOURCE_LABEL = "evt.source-hash"
# What the catalog's scripts run, plus Python for evt itself.
BASE_PACKAGES = [
    "python3", "python3-venv", "ca-certificates", "strace", "bpftool", "bpftrace", "inotify-tools",
    "iputils-ping", "netcat-openbsd", "sudo", "util-linux", "procps", "coreutils",
]


def image_name() -> str:
    return os.environ.get("EVT_TRIGGER_RUNNER_IMAGE") or DEFAULT_IMAGE


def source_hash() -> str:
    """Hash of everything the image copies in: an image with another hash is stale."""
    digest = hashlib.sha256()
    for rel in ["Dockerfile", "pyproject.toml"]:
        digest.update((HOME / rel).read_bytes())
    for folder in ["evt", "conf", "templates", "triggers"]:
        for path in sorted((HOME / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(HOME)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_base(tag: str = DEFAULT_BASE, suite: str = "bookworm") -> None:
    """Debian rootfs via mmdebstrap, imported as an image."""
    client = docker_client(timeout=600)
    with tempfile.TemporaryDirectory(prefix="evt-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        try:
            sh.mmdebstrap("--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(tarball),
                          _out=sys.stderr, _err=sys.stderr)
        except sh.CommandNotFound as exc:
            raise UsageError("mmdebstrap not installed: run `make setup` (or apt-get install mmdebstrap).") from exc
        except sh.ErrorReturnCode as exc:
            raise RunError(f"mmdebstrap failed with exit code {exc.exit_code}") from exc
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version or "latest")
    print(f"base image {tag} imported")


def prepare_wheels(target: Path) -> None:
    """Wheels of evt's dependencies (and the build backend) for an offline image build."""
    import tomllib

    deps = tomllib.loads((HOME / "pyproject.toml").read_text())["project"]["dependencies"]
    target.mkdir(parents=True, exist_ok=True)
    pip = sh.Command(sys.executable).bake("-m", "pip")
    try:
        # `pip wheel` also turns sdist-only dependencies (antlr4 for omegaconf) into wheels
        pip("wheel", "-q", "-w", str(target), *deps, "setuptools>=64", "wheel", _err=sys.stderr)
    except sh.ErrorReturnCode as exc:
        raise RunError(f"pip could not prepare the image's Python dependencies (exit {exc.exit_code})") from exc


def build(tag: str | None = None, base_image: str | None = None) -> str:
    tag = tag or image_name()
    client = docker_client(timeout=600)
    prepare_wheels(HOME / ".build" / "wheels")
    buildargs = {"BASE_IMAGE": base_image} if base_image else {}
    print(f"building {tag}" + (f" FROM {base_image}" if base_image else ""))
    try:
        client.images.build(path=str(HOME), tag=tag, buildargs=buildargs, rm=True, forcerm=True,
                            labels={SOURCE_LABEL: source_hash()})
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

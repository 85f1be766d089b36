"""Stock distribution kernels for the VM: a name (debian-6.1) to a Debian package, the
package fetched with apt from Debian's archive and its kernel image kept in evt's cache.

A name is resolved through Debian's meta-package (the newest ABI the archive has today),
or given as the exact package (linux-image-6.1.0-57-cloud-amd64). Once fetched, a kernel
stays in the cache keyed by package and version; with no archive reachable the last
resolution of a name is used again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evt.errors import RunError, UsageError, brief
from evt.paths import cache_root

# Debian's cloud flavour: virtio and the serial console built in, BTF and kprobes on.
KERNELS = {
    "debian-6.1": "linux-image-cloud-amd64",  # bookworm's own kernel
    "debian-6.12": "linux-image-6.12-cloud-amd64",  # bookworm's newer LTS (linux-6.12, +deb12)
}
PACKAGE = re.compile(r"linux-image-[0-9][a-z0-9.+~-]*-amd64")
APT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Kernel:
    name: str  # as asked for (debian-6.1)
    package: str
    version: str
    vmlinuz: Path
    release: str  # uname -r


def validate(name: str) -> str:
    if name in KERNELS or PACKAGE.fullmatch(name):
        return name
    raise UsageError(
        f"unknown kernel {brief(name)}: use {' or '.join(KERNELS)}, or a Debian kernel package such as "
        "linux-image-6.1.0-57-cloud-amd64 (`apt-cache search linux-image | grep cloud-amd64` lists them)."
    )


def _apt(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


def _depends(meta: str) -> str | None:
    done = _apt(["apt-cache", "depends", "--no-recommends", "--no-suggests", meta])
    found = re.findall(r"Depends: (linux-image-\S+)", done.stdout) if done.returncode == 0 else []
    return found[0] if found else None


def _version(package: str) -> str | None:
    done = _apt(["apt-cache", "show", "--no-all-versions", package])
    found = re.findall(r"^Version: (\S+)", done.stdout, re.M) if done.returncode == 0 else []
    return found[0] if found else None


def resolve(name: str) -> tuple[str, str]:
    """(package, version) for a kernel name; apt's lists are refreshed once if they lack it."""
    memo = cache_root() / "kernels" / f"{name}.json"
    for attempt in range(2):
        package = (KERNELS.get(name) and _depends(KERNELS[name])) or (name if PACKAGE.fullmatch(name) else None)
        version = _version(package) if package else None
        if package and version:
            memo.parent.mkdir(parents=True, exist_ok=True)
            memo.write_text(json.dumps({"package": package, "version": version}))
            return package, version
        if attempt == 0:
            _apt(["apt-get", "update", "-qq"])
    if memo.is_file():
        known = json.loads(memo.read_text())
        return known["package"], known["version"]
    raise RunError(
        f"kernel {name}: apt knows no package for it (apt-cache depends {KERNELS.get(name, name)}); "
        "check that Debian's archive (bookworm, main) is in the apt sources and reachable."
    )


def fetch(name: str) -> Kernel:
    """The kernel's image, from the cache or downloaded with `apt-get download`."""
    package, version = resolve(name)
    home = cache_root() / "kernels" / f"{package}_{version}"
    if not (home / "release").is_file():
        home.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=home.parent, prefix=".fetch-") as tmp:
            os.chmod(tmp, 0o755)
            done = _apt(["apt-get", "download", f"{package}={version}"], cwd=Path(tmp))
            debs = list(Path(tmp).glob("*.deb"))
            if done.returncode != 0 or not debs:
                raise RunError(
                    f"kernel {name}: `apt-get download {package}={version}` failed: {done.stderr.strip()[-300:]}"
                )
            extracted = Path(tmp) / "root"
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extracted)], check=True, capture_output=True)
            images = sorted((extracted / "boot").glob("vmlinuz-*"))
            if not images:
                raise RunError(f"kernel {name}: package {package} holds no /boot/vmlinuz-*")
            staged = Path(tmp) / "kernel"
            staged.mkdir()
            shutil.move(str(images[0]), staged / "vmlinuz")
            (staged / "release").write_text(images[0].name.removeprefix("vmlinuz-"))
            shutil.rmtree(home, ignore_errors=True)
            os.replace(staged, home)  # a complete entry or none, whatever interrupts the fetch
    return Kernel(name, package, version, home / "vmlinuz", (home / "release").read_text().strip())

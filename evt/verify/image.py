"""The VM's initramfs, built once and cached: a Debian root file system (mmdebstrap, minbase
plus bpftrace, python3 and the tools the trigger scripts run) and, on top, evt installed
from a wheel of this checkout with the /init that runs the checker.

The two parts are separate cpio archives, each cached under its own key (the package list;
the checkout's contents), and the kernel unpacks them one after the other: an edit to evt
rebuilds only the small one. Builds write to a temporary name and rename, under a lock, so
an interrupted or concurrent build never leaves a half archive in the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from evt.errors import RunError, UsageError
from evt.paths import CHECKOUT, PACKAGE, cache_root
from evt.procs import ManagedProcess, exit_text

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# bpftrace and python3 for the checker; the rest are what the trigger scripts run
GUEST_PACKAGES = (
    "bpftrace",
    "bpftool",
    "python3",
    "python3-yaml",
    "python3-jinja2",
    "python3-psutil",
    "iproute2",
    "sudo",
    "strace",
    "inotify-tools",
    "netcat-openbsd",
    "iputils-ping",
    "util-linux",
    "procps",
    "coreutils",
)
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "var/cache/apt", "var/lib/apt/lists")
CHECKOUT_PARTS = ("evt", "triggers", "templates", "conf", "pyproject.toml")
MMDEBSTRAP_TIMEOUT_S = 1800.0
FORMAT = "1"  # bump when the layout of either archive changes
INIT = """#!/bin/sh
# evt verify's VM: mount what bpftrace and the triggers need, run the checker (results on
# the second serial port), power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname evt-verify
ip link set lo up
ulimit -l unlimited
echo "evt-verify: init at $(cut -d' ' -f1 /proc/uptime) s"
python3 -m evt.verify.guest /dev/ttyS1
echo "evt-verify: powering off at $(cut -d' ' -f1 /proc/uptime) s"
echo o > /proc/sysrq-trigger
sleep 60
"""


def vm_dir() -> Path:
    return cache_root() / "vm"


@contextmanager
def _locked() -> Iterator[None]:
    vm_dir().mkdir(parents=True, exist_ok=True)
    with open(vm_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # every build holds the lock while its temporary exists: one found now is a killed build's
        for stale in [*vm_dir().glob(".rootfs-*"), *vm_dir().glob(".evt-*"), *vm_dir().glob(".initrd-*")]:
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        yield


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def checkout_digest() -> str:
    """The contents evt would install in the VM: the checkout's package and data files."""
    h = hashlib.sha256(FORMAT.encode() + INIT.encode())
    root = CHECKOUT or PACKAGE
    for part in CHECKOUT_PARTS if CHECKOUT else (".",):
        for path in sorted((root / part).rglob("*")) if (root / part).is_dir() else [root / part]:
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _cpio(tree: Path, archive: Path) -> None:
    """`tree` as a newc cpio archive (the initramfs format), written to `archive`."""
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    listing = "\0".join([".", *names]).encode() + b"\0"
    with open(archive, "wb") as out:
        done = subprocess.run(
            ["cpio", "--null", "-o", "-H", "newc", "--quiet"],
            input=listing,
            cwd=tree,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    if done.returncode:
        raise RunError(f"cpio failed on {tree}: {done.stderr.decode(errors='replace')[-300:]}")


def _need(binary: str, package: str) -> None:
    if not shutil.which(binary):
        raise UsageError(
            f"{binary} is not installed: the VM image needs it; run `make setup` (or apt-get install {package})."
        )


def _no_record(pid: int, role: str) -> None:
    pass


def rootfs(log: Callable[[str], None] = print, register: Callable[[int, str], None] = _no_record) -> Path:
    """The Debian root file system archive, from the cache or built with mmdebstrap
    (`register` records its process for `evt cleanup`)."""
    archive = vm_dir() / f"rootfs-{_digest(FORMAT, SUITE, *GUEST_PACKAGES)}.cpio"
    if archive.is_file():
        return archive
    _need("mmdebstrap", "mmdebstrap")
    _need("cpio", "cpio")
    with _locked(), tempfile.TemporaryDirectory(dir=vm_dir(), prefix=".rootfs-") as tmp:
        if archive.is_file():  # built by another evt while this one waited for the lock
            return archive
        started = time.monotonic()
        log(f"building the VM's root file system with mmdebstrap ({SUITE}, {len(GUEST_PACKAGES)} packages)...")
        tree = Path(tmp) / "root"
        argv = [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(GUEST_PACKAGES)}",
            "--quiet",
            SUITE,
            str(tree),
            MIRROR,
        ]
        proc = ManagedProcess(argv, Path(tmp) / "mmdebstrap.log")  # dies with evt; its group is killed on the way out
        register(proc.pid, "mmdebstrap")
        try:
            code = proc.wait_exit(MMDEBSTRAP_TIMEOUT_S)
        finally:
            proc.stop(10.0)
        if code != 0:
            raise RunError(f"mmdebstrap {exit_text(code)}: {' | '.join(proc.tail(8))}")
        for part in TRIMMED:
            shutil.rmtree(tree / part, ignore_errors=True)
        _cpio(tree, Path(tmp) / "rootfs.cpio")
        os.replace(Path(tmp) / "rootfs.cpio", archive)
        log(
            f"root file system built in {time.monotonic() - started:.0f} s: "
            f"{archive} ({archive.stat().st_size >> 20} MiB)"
        )
    return archive


def _install_evt(site: Path, tmp: Path) -> None:
    """evt into the guest's site-packages: the checkout's wheel (no dependencies: the guest
    has Debian's), or, when evt runs from an installed wheel, that installed package."""
    if CHECKOUT is None:
        shutil.copytree(PACKAGE, site / "evt", ignore=shutil.ignore_patterns("__pycache__"))
        return
    wheels = tmp / "wheels"
    for argv in (
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(CHECKOUT)],
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site)],
    ):
        if argv[3] == "install":
            argv.append(str(next(wheels.glob("evt-*.whl"))))
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode:
            raise RunError(
                f"building evt's wheel for the VM failed: {' '.join(argv[2:4])}: {done.stderr.strip()[-500:]}"
            )


def overlay() -> Path:
    """evt and the /init, as the second archive."""
    archive = vm_dir() / f"evt-{checkout_digest()}.cpio"
    if archive.is_file():
        return archive
    with _locked(), tempfile.TemporaryDirectory(dir=vm_dir(), prefix=".evt-") as tmp:
        tree = Path(tmp) / "root"
        site = tree / "usr/lib/python3/dist-packages"
        site.mkdir(parents=True)
        _install_evt(site, Path(tmp))
        for leftover in site.glob("*.dist-info"):
            shutil.rmtree(leftover)
        (tree / "init").write_text(INIT)
        os.chmod(tree / "init", 0o755)
        (tree / "etc").mkdir()
        (tree / "etc/hosts").write_text("127.0.0.1 localhost evt-verify\n")
        _cpio(tree, Path(tmp) / "evt.cpio")
        for old in vm_dir().glob("evt-*.cpio"):  # one checkout's archive at a time
            old.unlink()
        os.replace(Path(tmp) / "evt.cpio", archive)
    return archive


def initrd(log: Callable[[str], None] = print, register: Callable[[int, str], None] = _no_record) -> Path:
    """The VM's initramfs: both archives concatenated (the kernel unpacks one after the
    other), cached for this root file system and checkout."""
    base, top = rootfs(log, register), overlay()
    combined = vm_dir() / f"initrd-{base.stem}-{top.stem}.cpio"
    if combined.is_file():
        return combined
    with _locked(), tempfile.NamedTemporaryFile(dir=vm_dir(), prefix=".initrd-", delete=False) as out:
        try:
            for part in (base, top):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.close()
            for old in vm_dir().glob("initrd-*.cpio"):  # a booted VM has its copy in memory already
                old.unlink()
            os.replace(out.name, combined)
        finally:
            if os.path.exists(out.name):
                os.unlink(out.name)
    return combined

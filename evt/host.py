"""What this host can do: binaries, capabilities, kernel features.

Each check returns None when the need is met, else the reason as one short phrase
(`bpftrace not installed`, `needs kprobes: kernel built without CONFIG_KPROBES`); `evt
list` shows it and `evt trigger`/`evt stress` refuse to start with it.
"""

from __future__ import annotations

import gzip
import os
import shutil
from functools import cache, lru_cache
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}


def capability_set(status_field: str = "CapEff", pid: int | str = "self") -> set[str]:
    """Names of the capabilities in a process's CapEff/CapBnd (from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(status_field + ":"):
            mask = int(line.split()[1], 16)
            return {name for name, bit in CAPABILITIES.items() if mask >> bit & 1}
    return set()


@cache
def kernel_config() -> dict[str, str]:
    """The running kernel's build config, where the kernel exposes it."""
    release = os.uname().release
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{release}")):
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except OSError:
            continue
        config = {}
        for line in raw.decode(errors="replace").splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                key, value = line.split("=", 1)
                config[key] = value
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                config[line[2 : -len(" is not set")]] = "n"
        return config
    return {}


def tracefs_mounted() -> bool:
    return (TRACEFS / "events").is_dir()


def _config_missing(option: str) -> str | None:
    value = kernel_config().get(option)
    if value == "n":
        return f"kernel built without {option}"
    return None


def check_kernel_feature(feature: str) -> str | None:
    """None if the kernel has the feature, else why not."""
    if feature == "kprobes":
        missing = _config_missing("CONFIG_KPROBES")
        if missing:
            return f"needs kprobes: {missing}"
        if tracefs_mounted() and not (TRACEFS / "kprobe_events").exists():
            return "needs kprobes: /sys/kernel/tracing has no kprobe_events (kernel built without CONFIG_KPROBES)"
        return None
    if feature == "bpf":
        missing = _config_missing("CONFIG_BPF_SYSCALL")
        return f"needs bpf: {missing}" if missing else None
    if feature == "user_namespaces":
        missing = _config_missing("CONFIG_USER_NS")
        if missing:
            return f"needs user namespaces: {missing}"
        try:
            if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
                return "needs user namespaces: /proc/sys/user/max_user_namespaces is 0"
        except (OSError, ValueError):
            pass
        return None
    if feature == "tracefs":
        return (
            None
            if tracefs_mounted()
            else ("needs tracefs: mount it with `mount -t tracefs tracefs /sys/kernel/tracing`")
        )
    if feature == "inotify":
        missing = _config_missing("CONFIG_INOTIFY_USER")
        return f"needs inotify: {missing}" if missing else None
    raise ValueError(f"unknown kernel feature {feature!r}")


KERNEL_FEATURES = ("kprobes", "bpf", "user_namespaces", "tracefs", "inotify")


def check_binary(name: str) -> str | None:
    return None if shutil.which(name) else f"{name} not installed"


def check_capability(
    name: str, held: set[str] | None = None, fix: str = "run as root or grant the capability"
) -> str | None:
    """None if `held` (default: this process's effective set) grants the capability, else
    why not, ending in how to `fix` it."""
    held = capability_set() if held is None else held
    if name in held:
        return None
    # CAP_BPF and CAP_PERFMON split off CAP_SYS_ADMIN (Linux 5.8); either grants the need.
    if name in ("CAP_BPF", "CAP_PERFMON") and "CAP_SYS_ADMIN" in held:
        return None
    return f"needs {name}: {fix}"


def machine() -> str:
    return os.uname().machine


def check_arch(arches: tuple[str, ...]) -> str | None:
    """None if this machine is one of the architectures (uname -m names: x86_64, aarch64)."""
    if not arches or machine() in arches:
        return None
    return f"needs {' or '.join(arches)}: this machine is {machine()}"


@lru_cache(maxsize=1)
def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or, on hybrid hosts,
    /sys/fs/cgroup/unified); None without one."""
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split()[4])
    except OSError:
        pass
    return None


def process_cgroup2(pid: int) -> Path | None:
    """The cgroup v2 directory a process belongs to (bpftrace's `cgroup` builtin is its id)."""
    root = cgroup2_root()
    if root is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return root / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def all_capabilities() -> set[str]:
    """Every capability this kernel knows (0..cap_last_cap)."""
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = max(CAPABILITIES.values())
    return {name for name, bit in CAPABILITIES.items() if bit <= last}

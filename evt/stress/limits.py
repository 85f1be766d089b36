"""Whether this host can run what a command asks for: tasks (pids and threads) and memory.

A spec is refused before anything starts when its workers and units would not fit, with a
message naming the limit and how to raise it, instead of a fork failing or the OOM killer
stepping in half-way through a run. The per-worker and per-unit figures are measured
(`evt trigger --parallel 4` on this project's hosts: a native worker's RSS is ~18 MiB, of
which ~1 MiB is its own, the rest shared with its parent; a unit's parent ~25 MiB RSS plus
its container's shim), rounded up so that the estimate errs on the side of refusing.
"""

from __future__ import annotations

from pathlib import Path

from evt.errors import UsageError

WORKER_MIB = 4  # memory one worker needs of its own over a run (copy-on-write pages it dirties)
UNIT_MIB = 40  # a unit's parent process and its container's shim
UNIT_TASKS = 16  # a unit's parent's threads, plus a container shim's threads


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tasks_in_use() -> int:
    """Every task (thread) on the host: the fourth field of /proc/loadavg is running/total."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        import psutil

        return len(psutil.pids())


def memory_available() -> int:
    """Bytes of memory available without swapping: MemAvailable in /proc/meminfo, which is
    what psutil reports too; psutil (its own estimate) where the kernel does not say. Read
    directly because every unit checks it at its start, and psutil costs an import there."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    return psutil.virtual_memory().available


def _sum(workers: int, per_worker: object, units: int, per_unit: object) -> str:
    parts = [f"{workers:,} workers x {per_worker}"] + ([f"{units:,} units x {per_unit}"] if units else [])
    return " and ".join(parts)


def check_host_fits(workers: int, units: int) -> None:
    """UsageError unless `workers` worker processes in `units` units fit this host now."""
    tasks = workers + units * UNIT_TASKS
    pid_max = _read_int("/proc/sys/kernel/pid_max")
    threads_max = _read_int("/proc/sys/kernel/threads-max")
    limits = {
        name: value for name, value in (("kernel.pid_max", pid_max), ("kernel.threads-max", threads_max)) if value
    }
    if limits:
        name, limit = min(limits.items(), key=lambda item: item[1])
        in_use = tasks_in_use()
        if tasks > limit - in_use:
            raise UsageError(
                f"this run needs about {tasks:,} tasks ({_sum(workers, 1, units, UNIT_TASKS)}) "
                "but the host has room for "
                f"{max(limit - in_use, 0):,} more ({name}={limit}, {in_use:,} tasks in use): lower instances or the "
                f"number of events, or raise the limit with `sysctl -w {name}=N` (kernel.pid_max goes up to 4194304)."
            )
    need_mib = workers * WORKER_MIB + units * UNIT_MIB
    available_mib = memory_available() // (1 << 20)
    if need_mib > available_mib:
        raise UsageError(
            f"this run needs about {need_mib:,} MiB of memory "
            f"({_sum(workers, f'{WORKER_MIB} MiB', units, f'{UNIT_MIB} MiB')}) "
            f"but the host has {available_mib:,} MiB available (MemAvailable in /proc/meminfo): lower "
            "instances or the number of events, or free memory."
        )

"""The audit rules of a run's units: which syscalls each native event makes, how tightly
audit can scope them, and the `auditctl` arguments that load them.

Audit filters in the kernel by syscall, process (pid, ppid), path and more, but not by
comm: a unit's rules are scoped to its workers (ppid = the unit's root process, which
forks them) or, for exec, to the processes its workers spawn (ppid = each worker), and on
top of that to the marker file's path where the host sees it. What audit cannot tell
apart (a worker's set-up syscalls before it takes the marker comm) the log reader filters
by the unit's marker (evt/tracers/auditd/records.py). Every rule of a unit carries the
key `evt-<marker token>`: the records name their unit, and `auditctl -D -k KEY` removes
exactly evt's rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from evt.stress.plan import Unit

# The syscalls by which each native action makes its target event (evt/native.py), the
# alternatives of one libc call included (an architecture has only some of them): one
# audited syscall per op. Events not listed are not counted by this tracer.
SYSCALLS: dict[str, tuple[str, ...]] = {
    "security_file_open": ("open", "openat", "openat2"),
    "security_socket_connect": ("connect",),
    "security_socket_bind": ("bind",),
    "security_socket_create": ("socket",),
    "ptrace": ("ptrace",),
    "sched_process_exec": ("execve", "execveat"),
    "security_inode_unlink": ("unlink", "unlinkat"),
    "security_inode_symlink": ("symlink", "symlinkat"),
    "do_truncate": ("truncate", "ftruncate"),
    "socked_dup": ("dup", "dup2", "dup3"),
    "security_bpf_prog": ("bpf",),
    "switch_task_ns": ("unshare",),
}
# Events made by a process a worker spawns (its comm is the exec'd file's, not the marker's)
SPAWNED = frozenset({"sched_process_exec"})
KEY_PREFIX = "evt-"


def key_of(unit: Unit) -> str:
    """The audit key of a unit's rules and records (the marker's token, unique per run and event)."""
    return f"{KEY_PREFIX}{unit.marker.token}"


def audited(units: list[Unit]) -> list[Unit]:
    """The units whose events audit sees: native units of the events in SYSCALLS."""
    return [u for u in units if u.mode == "native" and u.event in SYSCALLS]


@dataclass(frozen=True)
class Scope:
    """Where a unit's events come from, as far as the host can tell (see scope_of)."""

    parents: tuple[int, ...]  # the ppid of the processes making the events
    path: str | None = None  # the file the events name, when the host sees it at that path


def rule_args(unit: Unit, scope: Scope, known: set[str], arch: str = "b64") -> list[list[str]]:
    """The `auditctl` arguments adding a unit's rules: one rule per parent process."""
    syscalls = [name for name in SYSCALLS[unit.event] if name in known]
    if not syscalls:
        raise ValueError(f"none of {', '.join(SYSCALLS[unit.event])} is a syscall audit knows on this machine")
    if not scope.parents:
        raise ValueError(f"unit {unit.name} has no process to scope its audit rules to")
    rules = []
    for parent in scope.parents:
        args = ["-a", "always,exit", "-F", f"arch={arch}"]
        for name in syscalls:
            args += ["-S", name]
        args += ["-F", f"ppid={int(parent)}"]
        if scope.path:
            args += ["-F", f"path={scope.path}"]
        rules.append([*args, "-k", key_of(unit)])
    return rules


def delete_args(key: str) -> list[str]:
    """The `auditctl` arguments deleting every rule with this key."""
    return ["-D", "-k", key]


def syscall_names(dump: str) -> set[str]:
    """The syscall names of `ausyscall --dump` output (`<number>\\t<name>` lines)."""
    names = set()
    for line in dump.splitlines():
        number, _, name = line.partition("\t")
        if number.strip().isdigit() and name.strip():
            names.add(name.strip())
    return names


def scope_of(unit: Unit) -> Scope:
    """The processes a unit's events come from and, where the host sees it, their file."""
    if not unit.pid:
        raise ValueError("its runner gave no process id")
    if unit.event in SPAWNED:  # made by the processes its workers spawn
        try:
            parents = tuple(child.pid for child in psutil.Process(unit.pid).children())
        except psutil.NoSuchProcess:
            raise ValueError(f"its process {unit.pid} has exited") from None
    else:
        parents = (unit.pid,)
    path = None
    if unit.event == "security_file_open":
        try:  # the unit's own view of its marker file is the host's (no mount namespace of its own)
            if os.path.samefile(f"/proc/{unit.pid}/root{unit.marker.file}", unit.marker.file):
                path = unit.marker.file
        except OSError:
            pass
    return Scope(parents=parents, path=path)

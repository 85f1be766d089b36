"""What must hold before evt starts a Tracee: its binary runs, no Tracee runs already,
and its HTTP address is free.

Two Tracees share the kernel's buffers and the HTTP port, so results would mix; the
checks find a running one as upstream's scripts do (scripts/tracee_common.sh: `pgrep -x`
for the process names `tracee`, `tracee-e2e`, `tracee-e2e-net`) and, for v0.24.x, which
still writes one, by its PID file; they say how to stop it or how to measure it instead
(tracee.auto=false). A Tracee whose HTTP bind fails only logs `HTTP server error` and
runs on without HTTP, so another process's `/healthz` would answer for it: the address
must be free before start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import socket
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

TRACEE_NAMES = ("tracee", "tracee-e2e", "tracee-e2e-net")  # process names (comm) a running Tracee has


def binary_problem(binary: str) -> str | None:
    """Why `binary` cannot be run as Tracee, in Tracee's Go evt's words; None when it can."""
    path = Path(binary)
    if os.sep not in binary and not path.exists():
        found = shutil.which(binary)
        if found:
            path = Path(found)
    if not path.exists():
        return (
            f"tracee binary not found at {json.dumps(binary)}\n\n"
            "The tracee binary is required for stress testing when using --auto-tracee (default).\n\n"
            "To build tracee:\n  make tracee\n\n"
            "To use a different binary path:\n"
            "  evt stress --tracee-binary /path/to/tracee ...   (tracee.binary=/path/to/tracee)\n\n"
            "To manually start tracee instead:\n  evt stress --auto-tracee=false ...   (tracee.auto=false)\n\n"
            "To measure with bpftrace instead of Tracee:\n  evt stress tracer=bpftrace ...\n\n"
            "Note: Use --keep-tracee to prevent automatic termination after the stress test"
        )
    if not path.is_file() or not os.access(path, os.X_OK) or not (path.stat().st_mode & 0o111):
        return (
            f"tracee binary {json.dumps(binary)} exists but is not executable\n\n"
            f"Make it executable with: chmod +x {shlex.quote(binary)}"
        )
    return None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def find_tracee_processes(
    names: tuple[str, ...] | None = None, exclude: set[int] | None = None
) -> list[tuple[int, str]]:
    """Live processes whose name is exactly one of `names`, as `pgrep -x` matches.
    (Go evt's `pgrep -a tracee` matched any name containing "tracee", such as
    tracee_start.sh.)"""
    names = TRACEE_NAMES if names is None else names
    exclude = (exclude or set()) | {os.getpid()}
    found: list[tuple[int, str]] = []
    for proc in psutil.process_iter(["pid", "name", "exe", "cmdline", "status"]):
        info = proc.info
        if info["pid"] in exclude or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if info.get("name") in names:
            found.append((info["pid"], " ".join(info.get("cmdline") or []) or info.get("exe") or info["name"]))
    return found


def running_tracee(pidfile: str | None, names: tuple[str, ...] | None = None) -> list[str]:
    """Descriptions of every running Tracee: a process named as Tracee is, or (v0.24.x,
    `pidfile` given) a PID file holding a live pid."""
    found: list[str] = []
    pids: set[int] = set()
    try:
        text = Path(pidfile).read_text().strip() if pidfile else ""
    except OSError:
        text = ""
    if text:
        if text.isdigit() and alive(int(text)):
            pids.add(int(text))
            found.append(f"  - Tracee running with PID {text} (from PID file: {pidfile})")
        else:
            log.warning("Warning: Found stale Tracee PID file at %s (PID: %s)", pidfile, text)
    for pid, cmdline in find_tracee_processes(names):
        if pid not in pids:
            pids.add(pid)
            found.append(f"  - {pid} {cmdline}")
    return found


def already_running_message(found: list[str]) -> str:
    pids = " ".join(re.findall(r"^  - (?:Tracee running with PID )?(\d+)", "\n".join(found), re.M))
    return (
        "tracee is already running:\n" + "\n".join(found) + "\n\n"
        "Please stop all Tracee instances before running the stress test "
        "(two Tracees share the kernel's buffers and the HTTP port, and the results would mix).\n"
        f"You can stop them with: sudo kill -TERM {pids}\n"
        "Or run against the Tracee that is already running: evt stress --auto-tracee=false ... (tracee.auto=false)"
    )


def address_problem(host: str, port: int) -> str | None:
    """Why Tracee could not listen on host:port (something listens there already); None
    when it is free. Bound as Go's net.Listen binds (SO_REUSEADDR), then released."""
    bind_host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(bind_host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"tracee.http_address host {host!r} does not resolve ({exc})"
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
            sock.listen(1)
        except OSError as exc:
            return f"{host}:{port} is already in use ({exc.strerror or exc})"
    return None

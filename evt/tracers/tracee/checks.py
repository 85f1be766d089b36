"""What must hold before evt starts a Tracee: its binary runs, and no Tracee runs already.

Two Tracees share the kernel's buffers and the HTTP port, so results would mix; the
checks find a running one by its PID file or by its executable name, and say how to
stop it or how to measure it instead (tracee.auto=false).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

TRACEE_NAME = "tracee"  # the executable name a running Tracee has


def binary_problem(binary: str) -> str | None:
    """Why `binary` cannot be run as Tracee, in the original's words; None when it can."""
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
            "To use a different binary path:\n  evt stress --tracee-binary /path/to/tracee ...   (tracee.binary=/path/to/tracee)\n\n"
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


def find_tracee_processes(exclude: set[int] | None = None) -> list[tuple[int, str]]:
    """Live processes that ARE Tracee: executable or argv[0] basename exactly `tracee`.
    (The original matched any command line containing "tracee"; that also caught
    editors, greps and this tool's own runs.)"""
    exclude = (exclude or set()) | {os.getpid()}
    found: list[tuple[int, str]] = []
    for proc in psutil.process_iter(["pid", "exe", "cmdline", "status"]):
        info = proc.info
        if info["pid"] in exclude or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        exe = info.get("exe") or ""
        argv = info.get("cmdline") or []
        argv0 = os.path.basename(argv[0]) if argv else ""
        if os.path.basename(exe) == TRACEE_NAME or argv0 == TRACEE_NAME:
            found.append((info["pid"], " ".join(argv) or exe))
    return found


def running_tracee(pidfile: str) -> list[str]:
    """Descriptions of every running Tracee (pidfile with a live pid, or a `tracee` process)."""
    found: list[str] = []
    pids: set[int] = set()
    try:
        text = Path(pidfile).read_text().strip()
    except OSError:
        text = ""
    if text:
        if text.isdigit() and alive(int(text)):
            pids.add(int(text))
            found.append(f"  - Tracee running with PID {text} (from PID file: {pidfile})")
        else:
            log.warning("Warning: Found stale Tracee PID file at %s (PID: %s)", pidfile, text)
    for pid, cmdline in find_tracee_processes():
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

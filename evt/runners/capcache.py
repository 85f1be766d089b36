"""What the docker runner's capability probe found, remembered between runs.

The probe (DockerRunner._probe_caps) creates throw-away containers until the daemon
accepts the capability set, dropping each capability it calls unknown: a tenth of a
second or more on every run with runner.privileged=auto on a daemon that cannot run
privileged containers. Its answer depends only on the daemon (the local one: its process
and binary; any other: its ID and the versions of the engine, containerd and runc, which
decide the capabilities it knows), the image and the set asked for: it is kept in one
small file under evt's cache with exactly that key, and a run whose key differs in
anything probes again and replaces it. A file that cannot be read, written or parsed, or
whose answer does not fit the set asked for, is a miss.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evt.paths import cache_root

CACHE_FILE = "docker-capabilities.json"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"  # where docker.from_env() connects without DOCKER_HOST
DOCKER_PIDFILE = Path("/var/run/docker.pid")  # written by the dockerd listening there


def cache_path() -> Path:
    return cache_root() / CACHE_FILE


def probe_key(client: Any, image_id: str | None, cap_add: list[str]) -> dict[str, object] | None:
    """What the probe's answer depends on: this daemon, this image, this capability set
    (None when the daemon does not say who it is: then the probe runs, and fails as it would)."""
    daemon = local_daemon(client) or daemon_info(client)
    if daemon is None:
        return None
    return {"daemon": daemon, "image_id": image_id, "cap_add": sorted(cap_add)}


def local_daemon(client: Any) -> dict[str, object] | None:
    """The local dockerd on the default socket, as /proc knows it: this boot, its pid and
    start time (a restarted daemon is another one) and its binary (an upgraded one too).
    Free, where `docker info` costs a round trip of tens of milliseconds on a busy host."""
    if os.environ.get("DOCKER_HOST", DEFAULT_SOCKET) != DEFAULT_SOCKET or "localhost" not in client.api.base_url:
        return None
    try:
        pid = int(DOCKER_PIDFILE.read_text().strip())
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]  # field 22, starttime
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        binary = os.stat(f"/proc/{pid}/exe")
    except (OSError, ValueError, IndexError):
        return None
    return {
        "boot_id": boot,
        "pid": pid,
        "started": started,
        "binary": [binary.st_dev, binary.st_ino, binary.st_size, binary.st_mtime_ns],
    }


def daemon_info(client: Any) -> dict[str, object] | None:
    """Any other daemon, as `docker info` names it: its ID and the versions of the engine,
    containerd and runc (an upgrade may teach it capabilities)."""
    try:
        info = client.info()
    except Exception:
        return None
    return {
        "url": str(client.api.base_url),
        "id": info.get("ID"),
        "server_version": info.get("ServerVersion"),
        "containerd": (info.get("ContainerdCommit") or {}).get("ID"),
        "runc": (info.get("RuncCommit") or {}).get("ID"),
    }


def cached_unknown(key: dict[str, object] | None, cap_add: list[str]) -> list[str] | None:
    """The capabilities the probe found unknown for this key, or None (probe again)."""
    if key is None:
        return None
    try:
        entry = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    unknown = entry.get("unknown")
    if not isinstance(unknown, list) or not all(isinstance(c, str) and c in cap_add for c in unknown):
        return None
    return unknown


def remember(key: dict[str, object] | None, unknown: list[str]) -> None:
    """Keep the probe's answer; evt runs on without it where the cache cannot be written."""
    if key is None:
        return
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"key": key, "unknown": unknown}, indent=2) + "\n")
        partial.replace(path)  # a concurrent run reads the old answer or the new one, never half of one
    except OSError:
        pass


def forget() -> None:
    """Drop the remembered answer (a daemon refused a capability it was said to know)."""
    try:
        cache_path().unlink()
    except OSError:
        pass

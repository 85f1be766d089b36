"""What the docker runner's capability probe found, remembered between runs.

The probe (DockerRunner._probe_caps) creates throw-away containers until the daemon
accepts the capability set, dropping each capability it calls unknown: a few tenths of
a second on every run with runner.privileged=auto on a daemon that cannot run privileged
containers. Its answer depends only on the daemon (its ID, its version and those of
containerd and runc, which decide the capabilities it knows), the image and the set
asked for: it is kept in one small file under evt's cache with exactly that key, and a
run whose key differs in anything probes again and replaces it. A file that cannot be
read, written or parsed, or whose answer does not fit the set asked for, is a miss.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evt.paths import cache_root

CACHE_FILE = "docker-capabilities.json"


def cache_path() -> Path:
    return cache_root() / CACHE_FILE


def probe_key(client: Any, image_id: str | None, cap_add: list[str]) -> dict[str, object] | None:
    """What the probe's answer depends on: this daemon, this image, this capability set
    (None when the daemon does not say who it is: then the probe runs, and fails as it would)."""
    try:
        info = client.info()
    except Exception:
        return None
    return {
        "daemon": str(client.api.base_url),
        "daemon_id": info.get("ID"),
        "server_version": info.get("ServerVersion"),
        "containerd": (info.get("ContainerdCommit") or {}).get("ID"),
        "runc": (info.get("RuncCommit") or {}).get("ID"),
        "image_id": image_id,
        "cap_add": sorted(cap_add),
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

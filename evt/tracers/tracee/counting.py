"""Counting Tracee's JSON event output: per event name and container, and per unit.

Tracee writes one JSON object per line. Two shapes exist (samples in
tests/support/fixtures/tracee/):
- older: `eventName`, `containerId` (newer old-style builds: `container: {id}`),
  `hostProcessId`, `hostParentProcessId`, `processId`, `cgroupId`;
- current (`v1beta1.Event`): `name`, `workload.container.id`,
  `workload.process.host_pid` / `pid` (a number or `{"value": N}`),
  `workload.process.thread.host_tid`, `workload.process.ancestors[].host_pid`.

Events of native units count only when they carry the run's marker (the workers'
marker comm, or a path in the marker directory), as bpftrace's filters do.
Events are matched to units by container id (full id or its 12-character prefix, either
side), by the unit's cgroup (the cgroup v2 directory's inode is Tracee's `cgroupId`),
or, for units running as host processes, by the unit's process tree: the pids seen
under the unit while it ran, grown with every event whose parent or ancestor is in it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from evt import faults
from evt.stress.plan import Unit
from evt.workload.catalog import tracee_name

SHORT_ID = 12  # docker's short container id


@dataclass(frozen=True)
class EventInfo:
    """The fields of one Tracee event that counting needs, from either JSON shape."""

    name: str
    container_id: str = ""
    host_pid: int | None = None
    host_ppid: int | None = None
    ancestors: tuple[int, ...] = ()
    cgroup_id: int | None = None
    process_name: str = ""  # the thread's comm
    strings: tuple[str, ...] = ()  # the string arguments (pathname, ...)


def _int(value: object) -> int | None:
    if isinstance(value, dict):  # protobuf wrapper types: {"value": N}
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(args: object, key: str) -> tuple[str, ...]:
    """String argument values: legacy `args[].value`, v1beta1 `data[].str`."""
    if not isinstance(args, list):
        return ()
    return tuple(a[key] for a in args if isinstance(a, dict) and isinstance(a.get(key), str))


def event_info(raw: object) -> EventInfo | None:
    """Normalise one decoded JSON event; None when it is not a Tracee event."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("eventName"), str):  # older shape
        container = raw.get("containerId")
        if not isinstance(container, str) or not container:
            nested = raw.get("container")
            container = nested.get("id") if isinstance(nested, dict) else ""
        pid = _int(raw.get("hostProcessId"))
        if pid is None:
            pid = _int(raw.get("processId"))
        ppid = _int(raw.get("hostParentProcessId"))
        if ppid is None:
            ppid = _int(raw.get("parentProcessId"))
        return EventInfo(
            name=raw["eventName"],
            container_id=_str(container),
            host_pid=pid,
            host_ppid=ppid,
            cgroup_id=_int(raw.get("cgroupId")),
            process_name=_str(raw.get("processName")),
            strings=_strings(raw.get("args"), "value"),
        )
    if isinstance(raw.get("name"), str):  # current shape (v1beta1.Event)
        workload_raw = raw.get("workload")
        workload = workload_raw if isinstance(workload_raw, dict) else {}
        container_raw = workload.get("container")
        container = container_raw if isinstance(container_raw, dict) else {}
        process_raw = workload.get("process")
        process = process_raw if isinstance(process_raw, dict) else {}
        thread_raw = process.get("thread")
        thread = thread_raw if isinstance(thread_raw, dict) else {}
        pid = _int(process.get("host_pid"))
        if pid is None:
            pid = _int(thread.get("host_pid"))
        if pid is None:
            pid = _int(process.get("pid"))
        ancestors: list[int] = []
        for anc in process.get("ancestors") or []:
            if isinstance(anc, dict):
                apid = _int(anc.get("host_pid"))
                if apid is None:
                    apid = _int(anc.get("pid"))
                if apid is not None:
                    ancestors.append(apid)
        return EventInfo(
            name=raw["name"],
            container_id=_str(container.get("id")),
            host_pid=pid,
            host_ppid=ancestors[0] if ancestors else None,
            ancestors=tuple(ancestors),
            process_name=_str(thread.get("name")),
            strings=_strings(raw.get("data"), "str"),
        )
    return None


def iter_events(path: str | os.PathLike) -> Iterator[EventInfo | None]:
    """Each line of a Tracee JSON output file as an EventInfo (None: not an event)."""
    with open(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                raw = json.loads(line)
            except ValueError:
                yield None
                continue
            yield event_info(raw)


def same_container(a: str, b: str) -> bool:
    """Full id or 12-character prefix on either side."""
    if not a or not b:
        return False
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    short, full = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= SHORT_ID and full.startswith(short)


@dataclass
class UnitScope:
    """How events are told to belong to one unit."""

    name: str
    event: str
    container_id: str | None = None
    cgroup_id: int | None = None
    pids: set[int] = field(default_factory=set)  # the unit's process tree, host pids
    # The run's marker, for native units: their comms and the marker directory. An event
    # of the unit counts only when it carries one (the unit's own set-up, e.g. Python
    # opening its modules, is not a target event). Empty: every event in scope counts.
    comms: tuple[str, ...] = ()
    marker_dir: str | None = None

    def marked(self, info: EventInfo) -> bool:
        if not self.comms and not self.marker_dir:
            return True
        if info.process_name in self.comms:
            return True
        marker_dir = self.marker_dir
        return marker_dir is not None and marker_dir != "" and any(s.startswith(marker_dir + "/") for s in info.strings)


@dataclass
class EventCounts:
    path: str
    lines: int = 0
    malformed: int = 0  # lines that were not a Tracee JSON event
    by_event_container: Counter = field(default_factory=Counter)  # (event, container id) -> n
    by_unit: dict[str, Counter] = field(default_factory=dict)  # unit -> event -> n
    marked: dict[str, Counter] = field(default_factory=dict)  # the same, carrying the unit's marker
    unmatched: int = 0  # events matched to no unit

    @property
    def total(self) -> int:
        return sum(self.by_event_container.values())

    def observed(self, units: Iterable[UnitScope]) -> dict[str, int]:
        """Per unit: the events of the unit's own event name matched to it and its marker."""
        return {u.name: self.marked.get(u.name, Counter()).get(u.event, 0) for u in units}

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "lines": self.lines,
            "malformed": self.malformed,
            "events": self.total,
            "unmatched": self.unmatched,
            "by_event_container": [
                {"event": ev, "container_id": cid, "count": n}
                for (ev, cid), n in sorted(self.by_event_container.items())
            ],
            "by_unit": {name: dict(sorted(c.items())) for name, c in self.by_unit.items()},
            "by_unit_marked": {name: dict(sorted(c.items())) for name, c in self.marked.items()},
        }


def _match(info: EventInfo, scopes: list[UnitScope]) -> UnitScope | None:
    if info.container_id:
        for scope in scopes:
            if scope.container_id and same_container(info.container_id, scope.container_id):
                return scope
    if info.cgroup_id is not None and info.cgroup_id > 1:
        for scope in scopes:
            if scope.cgroup_id is not None and scope.cgroup_id == info.cgroup_id:
                return scope
    if info.host_pid is not None:
        for scope in scopes:
            if scope.pids and info.host_pid in scope.pids:
                return scope
        parents = ((info.host_ppid,) if info.host_ppid is not None else ()) + info.ancestors
        for parent in parents:
            for scope in scopes:
                if scope.pids and parent in scope.pids:
                    scope.pids.add(info.host_pid)  # children appear after their parents
                    return scope
    return None


def count_events(path: str | os.PathLike, scopes: Iterable[UnitScope] = ()) -> EventCounts:
    """Count a Tracee JSON output file per (event, container) and per unit."""
    scopes = [
        UnitScope(s.name, s.event, s.container_id, s.cgroup_id, set(s.pids), s.comms, s.marker_dir) for s in scopes
    ]
    counts = EventCounts(
        path=str(path), by_unit={s.name: Counter() for s in scopes}, marked={s.name: Counter() for s in scopes}
    )
    for info in iter_events(path):
        counts.lines += 1
        if info is None:
            counts.malformed += 1
            continue
        counts.by_event_container[(info.name, info.container_id)] += 1
        scope = _match(info, scopes) if scopes else None
        if scope is None:
            counts.unmatched += 1
        else:
            counts.by_unit[scope.name][info.name] += 1
            if scope.marked(info):
                counts.marked[scope.name][info.name] += 1
    return counts


def cgroup_inode(path: str | None) -> int | None:
    """The inode of a cgroup v2 directory: what Tracee reports as the event's cgroupId."""
    if not path:
        return None
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def write_counts(counts: EventCounts, dest: Path) -> None:
    dest.write_text(json.dumps(counts.as_dict(), indent=2) + "\n")


class UnitWatch:
    """What counting needs to know of the units while they run: each unit's cgroup
    inode, and for units running as host processes every pid seen under the unit, so
    events of its short-lived children still match after those are gone."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self._trees: dict[str, set[int]] = {}
        self._cgroups: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, units: list[Unit], follow_trees: bool) -> None:
        """Note the units' cgroups; with `follow_trees`, follow local units' process trees."""
        for u in units:
            self._cgroups[u.name] = cgroup_inode(u.cgroup_path)
        local = [u for u in units if u.pid and not u.container_id]
        if not local or not follow_trees:
            return
        self._trees.update({u.name: {u.pid} for u in local if u.pid})
        self._thread = faults.start_thread(self._follow, local, name="tracee-unit-trees")

    def _follow(self, units: list[Unit]) -> None:
        while not self._stop.is_set():
            for u in units:
                try:
                    kids = psutil.Process(u.pid).children(recursive=True)
                except psutil.Error:
                    continue
                with self._lock:
                    self._trees[u.name].update(k.pid for k in kids)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=2)

    def scopes(self, units: list[Unit]) -> list[UnitScope]:
        """How each unit's events are told apart: container, cgroup, process tree, marker."""
        scopes = []
        with self._lock:
            for u in units:
                local = {u.pid} if u.pid and not u.container_id else set()
                native = (
                    u.mode == "native"
                )  # native workers carry the run's marker; script ops run their scripts' tools
                scopes.append(
                    UnitScope(
                        name=u.name,
                        event=tracee_name(u.event),  # Tracee's name: socket_dup for socked_dup
                        container_id=u.container_id,
                        cgroup_id=self._cgroups.get(u.name),
                        pids=set(self._trees.get(u.name, set())) | local,
                        comms=(u.marker.comm, u.marker.child_comm) if native else (),
                        marker_dir=u.marker.dir if native else None,
                    )
                )
        return scopes

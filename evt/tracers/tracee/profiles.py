"""What Tracee's perf gate records while Tracee runs, besides its resources (procs.py):
CPU profile slices and heap snapshots from `/debug/pprof` (tracee.pprof) in
`tracer/pprof/`: `cpu-slice-NNNN.pprof` (tracee.pprof_slice long, 10 s by default), every
tracee.pprof_heap_every slices `heap-NNNN.pprof` and `goroutine-NNNN.txt`, and, before
Tracee is stopped, `heap-final.pprof` and `goroutine-final.txt`. The files are what the
endpoint served (gzipped pprof protobufs from a real Tracee), kept as they are.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from evt import faults
from evt.tracers.tracee import prometheus as prom

log = logging.getLogger(__name__)


class PprofCollector:
    def __init__(self, url: str, dest: Path, slice_s: float, heap_every: int):
        self.url = url
        self.dest = Path(dest)
        self.slice_s = slice_s
        self.heap_every = max(int(heap_every), 1)
        self.slices = 0
        self.heaps = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PprofCollector:
        self.dest.mkdir(parents=True, exist_ok=True)
        self._thread = faults.start_thread(self._run, name="pprof")
        return self

    def _get(self, path: str, timeout: float) -> bytes | None:
        status, body = prom.http_fetch(f"{self.url}{path}", timeout=timeout)
        if status != 200 or not isinstance(body, bytes):
            if not self._stop.is_set():
                self.errors.append(f"{path}: {body if isinstance(body, str) else 'HTTP ' + str(status)}")
            return None
        return body

    def _keep(self, name: str, body: bytes | None) -> bool:
        if body is None:
            return False
        (self.dest / name).write_bytes(body)
        return True

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            seconds = max(round(self.slice_s), 1)  # Go's handler takes whole seconds
            body = self._get(f"/debug/pprof/profile?seconds={seconds}", timeout=seconds + 10)
            if self._stop.is_set():
                return  # cut short by the stop: not a full slice
            if body is None:
                self._stop.wait(1.0)  # not serving (yet): try again, without spinning
                continue
            self.slices += self._keep(f"cpu-slice-{n:04d}.pprof", body)
            if n % self.heap_every == 0:
                self.heaps += self._keep(f"heap-{n:04d}.pprof", self._get("/debug/pprof/heap", 10))
                self._keep(f"goroutine-{n:04d}.txt", self._get("/debug/pprof/goroutine?debug=1", 10))

    def stop(self) -> None:
        """No more slices (one in flight is dropped); the final heap and goroutine dumps."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.heaps += self._keep("heap-final.pprof", self._get("/debug/pprof/heap", 10))
        self._keep("goroutine-final.txt", self._get("/debug/pprof/goroutine?debug=1", 10))

    def record(self) -> dict[str, object]:
        return {
            "pprof_slices_collected": self.slices,
            "heap_snapshots_collected": self.heaps,
            "cpu_profile_status": "ok" if self.slices else "missing",
            "pprof_errors": self.errors[:5],
        }

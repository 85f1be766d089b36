"""Tracee's HTTP server as evt uses it: /healthz for readiness, /metrics scraped at both
ends of the run (the pages kept in the run directory, their deltas reported) and every
tracee.metrics_interval in between (`metrics_timeseries.txt`, as Tracee's perf gate
keeps it: a `--- <UTC ISO 8601> ---` line, the page, a blank line), and the endpoint
lines Tracee's Go evt prints."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from evt import faults
from evt.tracers.tracee import prometheus as prom
from evt.tracers.tracee.command import http_parts

log = logging.getLogger(__name__)

PYROSCOPE_SERVER = "http://localhost:4040"  # where Tracee's `--server pyroscope` pushes
PYROSCOPE_UI = f"{PYROSCOPE_SERVER}/?query=tracee.cpu"
GRAFANA_UI = "http://localhost:3000/"


class TraceeServer:
    """One Tracee's HTTP server at `url`; scraped pages go to `dest` as metrics-<which>.prom."""

    def __init__(self, url: str, dest: Path):
        self.url = url
        self.dest = dest
        self.scrapes = prom.Scrapes()
        self._follow_stop = threading.Event()
        self._follower: threading.Thread | None = None

    def not_healthy(self) -> str | None:
        """None when /healthz answers 200 with the body `OK`; otherwise what it answered
        (main: refused, then 503 `NOT OK`; v0.24.x: 200 `NOT OK`)."""
        status, body = prom.http_get(f"{self.url}/healthz", timeout=1.0)
        if status == 200 and body.strip() == "OK":
            return None
        if not status:
            return body
        return f"HTTP {status} {body.strip()[:40]!r}"

    def scrape(self, which: str) -> None:
        """Keep the /metrics page as the run's `start` or `end` scrape; a failed scrape
        is a warning and an entry in scrapes.errors (the run goes on without it)."""
        try:
            text = prom.scrape(f"{self.url}/metrics")
            prom.parse(text)
        except prom.ScrapeError as exc:
            self.scrapes.errors.append(f"{which}: {exc}")
            log.warning("Warning: %s; Tracee's counters will be missing from the results", exc)
            return
        self.dest.mkdir(parents=True, exist_ok=True)
        (self.dest / f"metrics-{which}.prom").write_text(text)
        if which == "start":
            self.scrapes.start_text = text
        else:
            self.scrapes.end_text = text
        self._record(text)

    def _record(self, text: str) -> None:
        """One page in metrics_timeseries.txt, as the perf gate keeps them."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.dest / "metrics_timeseries.txt", "a") as fh:
            fh.write(f"--- {stamp} ---\n{text.rstrip(chr(10))}\n\n")

    def follow(self, interval_s: float) -> None:
        """Scrape /metrics every `interval_s` into metrics_timeseries.txt until unfollow()
        (the start and end scrapes go there too)."""
        self.dest.mkdir(parents=True, exist_ok=True)
        self._follower = faults.start_thread(self._follow, interval_s, name="metrics")

    def _follow(self, interval_s: float) -> None:
        while not self._follow_stop.wait(interval_s):
            status, body = prom.http_get(f"{self.url}/metrics", timeout=5.0)
            if status == 200 and not self._follow_stop.is_set():
                self.scrapes.between.append(body)
                self._record(body)

    def unfollow(self) -> None:
        self._follow_stop.set()
        if self._follower is not None:
            self._follower.join(timeout=6.0)


def pyroscope_notice() -> str:
    """tracee.pyroscope: the query link, or why there is nothing to see there."""
    status, body = prom.http_get(PYROSCOPE_SERVER, timeout=2.0)
    if status:
        return f"Pyroscope UI: {PYROSCOPE_UI}"
    return (
        f"Warning: Pyroscope does not answer at {PYROSCOPE_SERVER} ({body}): Tracee pushes its profiles "
        f"there (app `tracee`); start a Pyroscope server to see them at {PYROSCOPE_UI}"
    )


def endpoints(tcfg) -> list[str]:
    """Go evt's endpoint lines for --wait-before-trigger (port from tracee.http_address)."""
    host, port = http_parts(tcfg.http_address)
    shown = "localhost" if host in ("", "0.0.0.0", "127.0.0.1", "localhost", "[::]", "[::1]") else host
    lines: list[str] = []
    if tcfg.pyroscope:
        lines += [f"Pyroscope UI: {PYROSCOPE_UI}", f"Grafana dashboard: {GRAFANA_UI}"]
    if tcfg.pprof:
        lines.append(f"Pprof endpoint: http://{shown}:{port}/debug/pprof")
    if tcfg.metrics:
        lines.append(f"Metrics endpoint: http://{shown}:{port}/metrics")
        if not tcfg.pyroscope:
            lines.append(f"Grafana dashboard: {GRAFANA_UI}")
    return lines

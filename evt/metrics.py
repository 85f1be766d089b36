"""Tracee's Prometheus `/metrics`: scrape, parse, and the counter deltas over a run.

Tracee registers its counters in the `tracee` namespace (pkg/metrics/stats.go); before
November 2025 the same counters were named `tracee_ebpf_*`. Both spellings are read and
reported under the current name. Parsing uses prometheus_client's text parser, which
names every counter sample `<family>_total` (so `tracee_events_filtered`, a counter
without the suffix, comes back as `tracee_events_filtered_total`): the aliases below
cover that too.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

# Reported name -> the sample names it may appear under, in order of preference.
COUNTERS: dict[str, tuple[str, ...]] = {}
for _name in (
    "events_total",
    "events_filtered",
    "lostevents_total",
    "write_lostevents_total",
    "errors_total",
    "bpf_logs_total",
    "network_capture_events_total",
    "network_capture_lostevents_total",
):
    _base = _name[: -len("_total")] if _name.endswith("_total") else _name
    COUNTERS[f"tracee_{_name}"] = (
        f"tracee_{_base}_total",
        f"tracee_{_base}",
        f"tracee_ebpf_{_base}_total",
        f"tracee_ebpf_{_base}",
    )
COUNTERS["process_cpu_seconds_total"] = ("process_cpu_seconds_total",)

# The counters that mean "events the tracer lost" (submission and write buffers).
LOST_COUNTERS = ("tracee_lostevents_total", "tracee_write_lostevents_total")


class ScrapeError(Exception):
    """The endpoint did not answer with a parsable Prometheus text page."""


def parse(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text page, keyed by sample name (labels appended
    as `name{k="v",...}` when present). ScrapeError when the text does not parse."""
    samples: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = sample.name
                if sample.labels:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    key = f"{key}{{{labels}}}"
                samples[key] = float(sample.value)
    except (ValueError, TypeError, IndexError) as exc:
        raise ScrapeError(f"not a Prometheus text page: {exc}") from exc
    return samples


def counters(samples: dict[str, float]) -> dict[str, float]:
    """The known counters of a parsed page under their current names (tracee_ebpf_* accepted)."""
    found: dict[str, float] = {}
    for name, aliases in COUNTERS.items():
        for alias in aliases:
            if alias in samples:
                found[name] = samples[alias]
                break
    return found


def deltas(start: dict[str, float] | None, end: dict[str, float] | None) -> dict[str, float]:
    """Counter increases between two parsed pages (as returned by counters()).

    A counter missing from the start page counts from 0 (the process may have registered
    it late); one that went down was reset (the process restarted), so its end value is
    the increase, as Prometheus' increase() treats resets. Counters missing from the end
    page are left out.
    """
    if not end:
        return {}
    start = start or {}
    out: dict[str, float] = {}
    for name, value in end.items():
        before = start.get(name, 0.0)
        if math.isnan(value) or math.isnan(before):
            continue
        diff = value - before if value >= before else value
        out[name] = int(diff) if float(diff).is_integer() else diff
    return out


def lost(delta: dict[str, float]) -> dict[str, int]:
    """The lost-event counters of a delta, as integers."""
    return {name: int(delta[name]) for name in LOST_COUNTERS if name in delta}


def _opener() -> urllib.request.OpenerDirector:
    # No proxies: the endpoint is Tracee's local HTTP server; an http_proxy in the
    # environment must not route loopback requests elsewhere.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 with the reason when nothing answered."""
    try:
        with _opener().open(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read().decode("utf-8", "replace")
        except Exception:  # pragma: no cover - a broken error body
            body = ""
        return exc.code, body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)


def scrape(url: str, timeout: float = 5.0) -> str:
    """The text of a /metrics page; ScrapeError saying what failed otherwise."""
    status, body = http_get(url, timeout)
    if status != 200:
        what = f"HTTP {status}" if status else body
        raise ScrapeError(f"scraping {url} failed: {what}")
    return body


@dataclass
class Scrapes:
    """The start and end scrapes of one run and what they say."""

    start_text: str | None = None
    end_text: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def start(self) -> dict[str, float] | None:
        return counters(parse(self.start_text)) if self.start_text is not None else None

    @property
    def end(self) -> dict[str, float] | None:
        return counters(parse(self.end_text)) if self.end_text is not None else None

    def deltas(self) -> dict[str, float]:
        """Deltas over the run; empty unless both scrapes exist (a lone end page would
        count Tracee's start-up too, which is not the run)."""
        if self.start_text is None or self.end_text is None:
            return {}
        return deltas(self.start, self.end)

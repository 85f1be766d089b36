"""Tracee's Prometheus `/metrics`: scrape, parse, and the counter deltas over a run.

Tracee registers its counters in the `tracee` namespace (pkg/metrics/stats.go); before
November 2025 (v0.24.x) the same counters were named `tracee_ebpf_*` and the signature
ones `tracee_rules_*`. Both generations are read and reported under the current name.
Besides the headline counters a run reports: signature and detector counters as deltas
(`detector_id` kept as a label), the pipeline channel depths and loaded signatures (gauges)
as maxima over every page scraped, and, from a `METRICS=1` build, the per-event kernel
submit counts `tracee_bpf_perf_event_submit_{attempts,failures}{event_name,internal}`
as deltas per event (syscall events such as ptrace have no series). Parsing uses prometheus_client's text parser, which
names every counter sample `<family>_total` (so `tracee_events_filtered`, a counter
without the suffix, comes back as `tracee_events_filtered_total`): the aliases below
cover that too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # urllib.request and prometheus_client are imported when a run scrapes, not to plan one
    import urllib.request

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
# Counters reported as deltas whatever their labels (current names; see current_name()).
DELTA_PREFIXES = ("tracee_signatures_events_total", "tracee_signatures_detections_total", "tracee_detectors_")
# Gauges reported as their maximum over the run, as `<name>_max`.
MAX_PREFIXES = ("tracee_pipeline_channels_", "tracee_signatures_total")
SUBMIT = {
    "tracee_bpf_perf_event_submit_attempts": "submit_attempts",
    "tracee_bpf_perf_event_submit_failures": "submit_failures",
}

# The counters that mean "events the tracer lost" (submission and write buffers).
LOST_COUNTERS = ("tracee_lostevents_total", "tracee_write_lostevents_total")


class ScrapeError(Exception):
    """The endpoint did not answer with a parsable Prometheus text page."""


def parse(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text page, keyed by sample name (labels appended
    as `name{k="v",...}` when present). ScrapeError when the text does not parse."""
    from prometheus_client.parser import text_string_to_metric_families

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


def current_name(key: str) -> str:
    """A sample key under Tracee's current metric names (v0.24.x's names mapped)."""
    if key.startswith("tracee_rules_signatures_total"):
        return "tracee_signatures_total" + key[len("tracee_rules_signatures_total") :]
    if key.startswith("tracee_rules_"):
        return "tracee_signatures_" + key[len("tracee_rules_") :]
    if key.startswith("tracee_ebpf_"):
        return "tracee_" + key[len("tracee_ebpf_") :]
    return key


def run_counters(samples: dict[str, float]) -> dict[str, float]:
    """counters() plus the signature and detector counters (histograms left out)."""
    found = counters(samples)
    for key, value in samples.items():
        name = current_name(key)
        base = name.split("{", 1)[0]
        if name.startswith(DELTA_PREFIXES) and base.endswith("_total") and not base.endswith("_created"):
            found[name] = value
    return found


def gauge_maxima(pages: list[dict[str, float]]) -> dict[str, float]:
    """`<gauge>_max` over parsed pages, for the pipeline channel depths and signatures loaded."""
    out: dict[str, float] = {}
    for samples in pages:
        for key, value in samples.items():
            name = current_name(key)
            if name.startswith(MAX_PREFIXES) and not math.isnan(value):
                label = f"{name}_max"
                out[label] = max(out.get(label, value), value)
    return {k: int(v) if float(v).is_integer() else v for k, v in out.items()}


def submit_counts(samples: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per event name: its kernel submit `submit_attempts` and `submit_failures`."""
    out: dict[str, dict[str, float]] = {}
    for key, value in samples.items():
        name, _, labels = current_name(key).partition("{")
        column = SUBMIT.get(name)
        if column is None:
            continue
        match = _EVENT_LABEL.search(labels)
        if match:
            out.setdefault(match.group(1), {})[column] = value
    return out


_EVENT_LABEL = re.compile(r'event_name="([^"]*)"')


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
    import urllib.request

    # No proxies: the endpoint is Tracee's local HTTP server; an http_proxy in the
    # environment must not route loopback requests elsewhere.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_fetch(url: str, timeout: float = 2.0) -> tuple[int, bytes | str]:
    """(status, body bytes) of a GET; status 0 with the reason (a str) when nothing answered."""
    import urllib.error

    try:
        with _opener().open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read()
        except Exception:  # pragma: no cover - a broken error body
            body = b""
        return exc.code, body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body text) of a GET; status 0 with the reason when nothing answered."""
    status, body = http_fetch(url, timeout)
    return status, body.decode("utf-8", "replace") if isinstance(body, bytes) else body


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
    between: list[str] = field(default_factory=list)  # pages scraped during the run (timeseries)

    @property
    def start(self) -> dict[str, float] | None:
        return counters(parse(self.start_text)) if self.start_text is not None else None

    @property
    def end(self) -> dict[str, float] | None:
        return counters(parse(self.end_text)) if self.end_text is not None else None

    def deltas(self) -> dict[str, float]:
        """Deltas over the run (headline, signature and detector counters) and the gauge
        maxima over every page; empty unless both scrapes exist (a lone end page would
        count Tracee's start-up too, which is not the run)."""
        if self.start_text is None or self.end_text is None:
            return {}
        start, end = parse(self.start_text), parse(self.end_text)
        out = deltas(run_counters(start), run_counters(end))
        pages = [start, *(self._parsed(text) for text in self.between), end]
        out.update(gauge_maxima([p for p in pages if p]))
        return out

    def submit_deltas(self) -> dict[str, dict[str, int]] | None:
        """Per event name, the run's submit attempts and failures; None when the end page
        has no per-event series (not a METRICS=1 build) or a scrape is missing."""
        if self.start_text is None or self.end_text is None:
            return None
        end = submit_counts(parse(self.end_text))
        if not end:
            return None
        start = submit_counts(parse(self.start_text))
        return {
            event: {k: int(v) for k, v in deltas(start.get(event), values).items()} for event, values in end.items()
        }

    @staticmethod
    def _parsed(text: str) -> dict[str, float]:
        try:
            return parse(text)
        except ScrapeError:
            return {}

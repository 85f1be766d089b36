"""Prometheus scrape parsing and counter deltas (evt.tracers.tracee.prometheus), against Tracee's real names."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evt.tracers.tracee import prometheus as prom
from helpers import fixture, free_port


def test_fixture_counters_under_current_names():
    text = fixture("metrics.prom").read_text()
    c = prom.counters(prom.parse(text))
    assert c["tracee_events_total"] == 184233
    assert c["tracee_lostevents_total"] == 5120
    assert c["tracee_write_lostevents_total"] == 0
    assert c["tracee_errors_total"] == 0
    # a counter registered without _total: the parser reports it as ..._total, we keep Tracee's name
    assert c["tracee_events_filtered"] == 1022
    assert c["tracee_bpf_logs_total"] == 3
    assert c["process_cpu_seconds_total"] == pytest.approx(12.43)
    assert "go_goroutines" not in c and "process_resident_memory_bytes" not in c


def test_fixture_raw_samples_keep_everything():
    samples = prom.parse(fixture("metrics.prom").read_text())
    assert samples["go_goroutines"] == 57
    assert samples["process_resident_memory_bytes"] == pytest.approx(2.87309824e08)


def test_pre_november_2025_names_are_accepted():
    text = fixture("metrics.prom").read_text().replace("tracee_", "tracee_ebpf_")
    c = prom.counters(prom.parse(text))
    assert c["tracee_events_total"] == 184233
    assert c["tracee_lostevents_total"] == 5120
    assert c["tracee_events_filtered"] == 1022


def test_current_name_wins_when_both_present():
    text = "tracee_events_total 5\ntracee_ebpf_events_total 9\n"
    assert prom.counters(prom.parse(text))["tracee_events_total"] == 5


def test_labels_are_kept_in_keys():
    samples = prom.parse('x_total{b="2",a="1"} 3\n')
    assert samples == {'x_total{a="1",b="2"}': 3.0}


def test_deltas_and_lost():
    start = {"tracee_events_total": 100, "tracee_lostevents_total": 10, "tracee_write_lostevents_total": 0}
    end = {
        "tracee_events_total": 1100,
        "tracee_lostevents_total": 17,
        "tracee_write_lostevents_total": 3,
        "tracee_errors_total": 2,
    }
    d = prom.deltas(start, end)
    assert d == {
        "tracee_events_total": 1000,
        "tracee_lostevents_total": 7,
        "tracee_write_lostevents_total": 3,
        "tracee_errors_total": 2,
    }
    assert all(isinstance(v, int) for v in d.values())
    assert prom.lost(d) == {"tracee_lostevents_total": 7, "tracee_write_lostevents_total": 3}


def test_deltas_counter_reset_counts_end_value():
    assert prom.deltas({"tracee_events_total": 500}, {"tracee_events_total": 40}) == {"tracee_events_total": 40}


def test_deltas_need_an_end():
    assert prom.deltas({"tracee_events_total": 1}, None) == {}
    assert prom.deltas(None, {"tracee_events_total": 4}) == {"tracee_events_total": 4}


def test_scrapes_require_both_pages():
    page = fixture("metrics.prom").read_text()
    assert prom.Scrapes(start_text=None, end_text=page).deltas() == {}
    later = page.replace("tracee_events_total 184233", "tracee_events_total 185233").replace(
        "tracee_lostevents_total 5120", "tracee_lostevents_total 5130"
    )
    d = prom.Scrapes(start_text=page, end_text=later).deltas()
    assert d["tracee_events_total"] == 1000
    assert d["tracee_lostevents_total"] == 10
    assert d["tracee_write_lostevents_total"] == 0


def test_unparsable_text_is_a_scrape_error():
    with pytest.raises(prom.ScrapeError):
        prom.parse("this is { not prometheus\n")


@pytest.fixture
def http_server():
    pages = {"/metrics": (200, fixture("metrics.prom").read_text())}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            code, body = pages.get(self.path, (404, "404 page not found\n"))
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_scrape_over_http(http_server):
    text = prom.scrape(f"{http_server}/metrics")
    assert prom.counters(prom.parse(text))["tracee_events_total"] == 184233


def test_scrape_http_error(http_server):
    with pytest.raises(prom.ScrapeError, match="HTTP 404"):
        prom.scrape(f"{http_server}/nope")


def test_scrape_nothing_listening():
    with pytest.raises(prom.ScrapeError, match=r"scraping http://127\.0\.0\.1:"):
        prom.scrape(f"http://127.0.0.1:{free_port()}/metrics", timeout=1)


# ---------------------------------------------------------------- per-event, signatures, detectors, channels


def fixture_scrapes(legacy: bool = False) -> prom.Scrapes:
    pages = [fixture(n).read_text() for n in ("metrics-current.prom", "metrics-current-end.prom")]
    if legacy:  # v0.24.x names for the same series
        pages = [
            p.replace("tracee_signatures_", "tracee_rules_")
            .replace("tracee_", "tracee_ebpf_")
            .replace("tracee_ebpf_rules_", "tracee_rules_")
            for p in pages
        ]
    return prom.Scrapes(start_text=pages[0], end_text=pages[1])


@pytest.mark.parametrize("legacy", [False, True])
def test_per_event_submit_deltas_both_metric_generations(legacy):
    per_event = fixture_scrapes(legacy).submit_deltas()
    assert per_event["security_file_open"] == {"submit_attempts": 1357636, "submit_failures": 48193}
    assert per_event["sched_process_exec"] == {"submit_attempts": 60794, "submit_failures": 1377}
    assert "ptrace" not in per_event  # a syscall event: no series
    # the fixture's identity: lost events = failures of the non-internal events
    deltas = fixture_scrapes(legacy).deltas()
    assert deltas["tracee_lostevents_total"] == 1377 + 48193 + 0 == 49570


@pytest.mark.parametrize("legacy", [False, True])
def test_signature_detector_deltas_and_channel_maxima(legacy):
    deltas = fixture_scrapes(legacy).deltas()
    assert deltas["tracee_signatures_events_total"] == 1380916
    assert deltas["tracee_signatures_detections_total"] == 0
    assert deltas['tracee_detectors_events_processed_total{detector_id="TRC-102"}'] == 12
    assert deltas["tracee_pipeline_channels_decode_max"] == 211  # mid-run depth; 0 at the end
    assert deltas["tracee_signatures_total_max"] == 0
    assert not any("duration_seconds" in k for k in deltas)  # histograms are not counters


def test_channel_maxima_cover_the_pages_between():
    scrapes = fixture_scrapes()
    scrapes.between.append("# TYPE tracee_pipeline_channels_decode gauge\ntracee_pipeline_channels_decode 999\n")
    assert scrapes.deltas()["tracee_pipeline_channels_decode_max"] == 999


def test_no_per_event_series_is_none_not_zero():
    page = fixture("metrics.prom").read_text()
    assert prom.Scrapes(start_text=page, end_text=page).submit_deltas() is None

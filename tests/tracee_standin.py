#!/usr/bin/env python3
"""A STAND-IN FOR TRACEE, FOR TESTS ONLY. THIS IS NOT TRACEE.

It traces nothing and loads no eBPF. It only imitates what evt's Tracee integration
depends on, so that the lifecycle code (start, readiness, crash detection, metric
scrapes, stop, keep) can be tested on machines where no Tracee binary exists:

- it accepts Tracee's flags (`--scope`, `--events`, `--output`, `--server`, others are
  logged and ignored) and rejects malformed `--server`/`--output` values as Tracee does;
- with any `--server metrics|healthz|pprof|pyroscope` it serves HTTP on
  `--server http-address=<host:port>` (default 127.0.0.1:3366): `/healthz` (200 once
  "ready", 503 before), `/metrics` (Prometheus text with tracee_* counters), and
  `/debug/pprof/` (a placeholder page);
- with JSON output to a file (`--output json:<path>` or `destinations.<n>.format=json`
  + `.path=<file>`) it truncates the file at start and, once ready, copies the lines of
  the file named by EVT_STANDIN_EVENTS into it;
- it logs to stderr and stops on SIGTERM.

Every number it reports is made up. Results obtained with it say nothing about Tracee.

Behaviour switches (environment):
  EVT_STANDIN_MODE      comma-separated: crash_at_start | crash_after=<s> | ignore_sigterm
                        | never_ready | slow_ready=<s>
  EVT_STANDIN_EVENTS    a JSON-lines file to copy into the JSON output once ready
  EVT_STANDIN_EVENTS_PER_SCRAPE / EVT_STANDIN_LOST_PER_SCRAPE /
  EVT_STANDIN_WRITE_LOST_PER_SCRAPE
                        counter increase per /metrics request (default 1000 / 0 / 0):
                        scrape n reports tracee_events_total = 100 + n * per_scrape, ...
  EVT_STANDIN_METRIC_PREFIX   `tracee` (default) or `tracee_ebpf` (pre-Nov-2025 names)
  EVT_STANDIN_PIDFILE   write the pid here once started (Tracee writes /tmp/tracee/tracee.pid)
  EVT_STANDIN_MAX_LIFETIME    exit after this many seconds whatever happens (default 300):
                        a safety net so a failed test cannot leave it running for ever
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER_BOOL = ("metrics", "healthz", "pprof", "pyroscope")
STARTED = time.monotonic()


def say(msg: str) -> None:
    print(f"[tracee stand-in {os.getpid()}] {msg}", file=sys.stderr, flush=True)


def parse_modes(text: str) -> dict[str, float | bool]:
    modes: dict[str, float | bool] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" in part:
            key, val = part.split("=", 1)
            modes[key] = float(val)
        else:
            modes[part] = True
    return modes


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="tracee (stand-in)", add_help=False)
    p.add_argument("--scope", "-s", action="append", default=[])
    p.add_argument("--events", "-e", action="append", default=[])
    p.add_argument("--output", "-o", action="append", default=[])
    p.add_argument("--server", action="append", default=[])
    return p.parse_known_args(argv)


# Event names real Tracee has no event for: it refuses them at start (pkg/cmd/flags/errors.go).
# socked_dup is the original evt's typo of socket_dup; evt must never pass it on.
UNKNOWN_EVENTS = {"socked_dup"}


def fail(msg: str) -> None:
    say(f"error: {msg}")
    sys.exit(1)


def server_config(values: list[str]) -> tuple[dict[str, bool], str]:
    enabled = dict.fromkeys(SERVER_BOOL, False)
    address = "127.0.0.1:3366"
    for value in values:
        name, sep, arg = value.partition("=")
        if name in SERVER_BOOL and not sep:
            enabled[name] = True
        elif name in ("http-address", "grpc-address") and sep and arg:
            if name == "http-address":
                address = arg
        else:
            fail(f"invalid server flag: '{name}', use 'trace man server' for more info")
    return enabled, address


def json_output(values: list[str]) -> str | None:
    """The JSON file the --output values ask for (None: none, stdout, or not JSON)."""
    dests: dict[str, dict[str, str]] = {}
    path = None
    for value in values:
        if value.startswith("destinations."):
            key, sep, val = value.partition("=")
            parts = key.split(".")
            if not sep or len(parts) != 3 or not parts[1] or parts[2] not in ("type", "format", "path", "url"):
                fail(f"invalid output flag: {value}")
            dests.setdefault(parts[1], {})[parts[2]] = val
        elif value == "none" or value in ("json", "table", "sort-events") or value.startswith("gotemplate="):
            continue
        elif value.startswith(("json:", "table:", "webhook:", "forward:")):
            kind, _, arg = value.partition(":")
            if kind == "json" and arg not in ("", "stdout"):
                path = arg
        else:
            fail(f"invalid output flag: {value}")
    for dest in dests.values():
        if dest.get("type", "file") == "file" and dest.get("format") == "json":
            if dest.get("path", "stdout") not in ("stdout", "stderr", ""):
                path = dest["path"]
    return path


class State:
    def __init__(self, modes: dict[str, float | bool], enabled: dict[str, bool]):
        self.modes = modes
        self.enabled = enabled
        self.scrapes = 0
        self.lock = threading.Lock()
        self.ready_at = None if modes.get("never_ready") else STARTED + float(modes.get("slow_ready", 0.0))

    def ready(self) -> bool:
        return self.ready_at is not None and time.monotonic() >= self.ready_at

    def metrics(self) -> str:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        prefix = os.environ.get("EVT_STANDIN_METRIC_PREFIX", "tracee")
        per = int(os.environ.get("EVT_STANDIN_EVENTS_PER_SCRAPE", "1000"))
        lost = int(os.environ.get("EVT_STANDIN_LOST_PER_SCRAPE", "0"))
        wlost = int(os.environ.get("EVT_STANDIN_WRITE_LOST_PER_SCRAPE", "0"))
        values = {
            "events_total": 100 + n * per,
            "events_filtered": 0,
            "network_capture_events_total": 0,
            "bpf_logs_total": 0,
            "errors_total": 0,
            "lostevents_total": n * lost,
            "write_lostevents_total": n * wlost,
            "network_capture_lostevents_total": 0,
        }
        lines = ["# stand-in for Tracee's /metrics: made-up values"]
        for name, value in values.items():
            lines += [f"# HELP {prefix}_{name} stand-in counter", f"# TYPE {prefix}_{name} counter",
                      f"{prefix}_{name} {value}"]
        cpu = sum(os.times()[:2])
        lines += ["# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
                  "# TYPE process_cpu_seconds_total counter", f"process_cpu_seconds_total {cpu:.2f}"]
        return "\n".join(lines) + "\n"


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:  # quiet
            return

        def _send(self, code: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz" and state.enabled["healthz"]:
                if state.ready():
                    self._send(200, "OK")
                else:
                    self._send(503, "not ready")
            elif path == "/metrics" and state.enabled["metrics"]:
                self._send(200, state.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif path.startswith("/debug/pprof") and state.enabled["pprof"]:
                self._send(200, "stand-in pprof index\n")
            else:
                self._send(404, "404 page not found\n")

    return Handler


def serve(address: str, state: State) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = Server((host, int(port)), make_handler(state))
    except OSError as exc:
        fail(f"http server: listen tcp {address}: {exc}")
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    return httpd


def main(argv: list[str]) -> int:
    if argv[:1] == ["version"]:  # Tracee's `version` command, with the stand-in named as such
        print("Tracee version: stand-in (NOT TRACEE)")
        return 0
    args, rest = parse_args(argv)
    modes = parse_modes(os.environ.get("EVT_STANDIN_MODE", ""))
    say(f"NOT TRACEE: a test stand-in; argv={argv!r}")
    if rest:
        say(f"ignoring flags the stand-in does not model: {rest!r}")
    enabled, address = server_config(args.server)
    out_path = json_output(args.output)
    say(f"scope={args.scope!r} events={args.events!r} output={args.output!r} server={args.server!r}")
    for event in ",".join(args.events).split(","):
        if event in UNKNOWN_EVENTS:
            fail(f"invalid event to trace: {event}")

    if modes.get("crash_at_start"):
        say("loading eBPF programs (pretend)")
        time.sleep(0.2)
        say("error: stand-in crash_at_start: failed to load eBPF object")
        return 1

    stop = threading.Event()
    if modes.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, lambda *_: say("SIGTERM received and ignored (ignore_sigterm)"))
    else:
        def on_term(*_: object) -> None:
            say("SIGTERM received, shutting down")
            stop.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)

    if out_path:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        open(out_path, "w").close()  # Tracee creates/truncates its output file
    pidfile = os.environ.get("EVT_STANDIN_PIDFILE")
    if pidfile:
        os.makedirs(os.path.dirname(os.path.abspath(pidfile)), exist_ok=True)
        with open(pidfile, "w") as fh:
            fh.write(f"{os.getpid()}\n")

    state = State(modes, enabled)
    httpd = serve(address, state) if any(enabled.values()) else None
    say(f"serving on {address}" if httpd else "no HTTP endpoints")

    max_life = float(os.environ.get("EVT_STANDIN_MAX_LIFETIME", "300"))
    crash_after = modes.get("crash_after")
    emitted = False
    while not stop.is_set():
        now = time.monotonic() - STARTED
        if not emitted and state.ready():
            emitted = True
            say("ready")
            events = os.environ.get("EVT_STANDIN_EVENTS")
            if events and out_path:
                with open(events, "rb") as src, open(out_path, "ab") as dst:
                    shutil.copyfileobj(src, dst)
                say(f"wrote the events of {events} to {out_path}")
        if crash_after is not None and now >= float(crash_after):
            say("fatal error: stand-in crash_after: ring buffer poll failed")
            os._exit(2)
        if now >= max_life:
            say(f"EVT_STANDIN_MAX_LIFETIME={max_life:g}s reached, exiting")
            break
        stop.wait(0.05)

    if httpd is not None:
        httpd.shutdown()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

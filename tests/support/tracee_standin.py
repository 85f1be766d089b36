#!/usr/bin/env python3
"""A STAND-IN FOR TRACEE, FOR TESTS ONLY. THIS IS NOT TRACEE.

It traces nothing and loads no eBPF. It only imitates what evt's Tracee integration
depends on, so that the lifecycle code (start, readiness, crash detection, metric
scrapes, stop, keep) can be tested on machines where no Tracee binary exists:

- it behaves as one of two Tracee flavours (EVT_STANDIN_FLAVOUR, docs/tracee.md
  "Tracee today"): `main` (default; `tracee version` says v0.24.1-215-g7c9ec9788) or
  `v0.24` (says v0.24.1);
- it accepts the flags that flavour has and refuses, with Tracee's words and exit 1,
  what that flavour refuses: unknown flags (`--perf-buffer-size` on main, `--buffers`
  on v0.24), bad `--buffers`/`--server`/`--output` values, `destinations.*`/`streams.*`
  on v0.24, and event names Tracee has no event for (`socked_dup`:
  `invalid event to trace: socked_dup`);
- with any `--server metrics|healthz|pprof|pyroscope` it serves HTTP on
  `--server http-address=<host:port>` (default 127.0.0.1:3366). main: the port opens
  only once "ready" (connection refused before), `/healthz` then answers 503 `NOT OK`
  until the heartbeat's first beat (EVT_STANDIN_HEARTBEAT, default 0.3 s), then 200
  `OK`. v0.24: the port opens at start, `/healthz` is always 200 with body `NOT OK`
  until ready + heartbeat, then `OK`. Both: the server closes the moment SIGTERM
  arrives (a scrape after it is refused); when the port is taken it logs
  `HTTP server error` and runs on without HTTP, as Tracee does. `/metrics` is
  Prometheus text (made-up tracee_* counters, or the fixture pages of
  EVT_STANDIN_METRICS_FILES); `/debug/pprof/profile?seconds=N` answers after N seconds
  with a gzip placeholder (not a real profile), `/debug/pprof/heap` at once;
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
  EVT_STANDIN_METRICS_FILES   comma-separated Prometheus pages: the first /metrics
                        request gets the first, request n the n-th, later ones the last
  EVT_STANDIN_FLAVOUR   main (default) | v0.24;  EVT_STANDIN_VERSION overrides what
                        `version` prints
  EVT_STANDIN_HEARTBEAT seconds of 503 (main) / `NOT OK` (v0.24) after ready (default 0.3)
  EVT_STANDIN_SHUTDOWN  seconds between SIGTERM (HTTP closed) and exit (default 0.2)
  EVT_STANDIN_PIDFILE   write the pid here once started (Tracee writes /tmp/tracee/tracee.pid)
  EVT_STANDIN_MAX_LIFETIME    exit after this many seconds whatever happens (default 300):
                        a safety net so a failed test cannot leave it running for ever
"""

from __future__ import annotations

import argparse
import gzip
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
FLAVOUR = os.environ.get("EVT_STANDIN_FLAVOUR", "main")
VERSIONS = {"main": "v0.24.1-215-g7c9ec9788", "v0.24": "v0.24.1"}
# Tracee event names the stand-in knows (pkg/events/core.go has ~400; these are the ones
# evt's triggers and tests name). `socked_dup` is NOT one: Tracee's event is socket_dup.
EVENTS = frozenset(
    [
        "arch_prctl",
        "bpf_attach",
        "commit_creds",
        "debugfs_create_dir",
        "debugfs_create_file",
        "device_add",
        "do_truncate",
        "kallsyms_lookup_name",
        "kprobe_attach",
        "magic_write",
        "process_execute_failed",
        "ptrace",
        "sched_process_exec",
        "sched_process_exit",
        "sched_process_fork",
        "security_bpf_prog",
        "security_file_open",
        "security_inode_symlink",
        "security_inode_unlink",
        "security_path_notify",
        "security_sb_mount",
        "security_socket_bind",
        "security_socket_connect",
        "security_socket_create",
        "shared_object_loaded",
        "socket_dup",
        "switch_task_ns",
        "openat",
        "execve",
        "vfs_write",
        "vfs_read",
        "anti_debugging",
    ]
)
BUFFER_KEYS = ("kernel.events", "kernel.artifacts", "kernel.control-plane", "pipeline")


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Tracee's flags for the flavour; an unknown one is refused as cobra refuses it."""
    p = argparse.ArgumentParser(prog="tracee (stand-in)", add_help=False)
    p.add_argument("--scope", "-s", action="append", default=[])
    p.add_argument("--events", "-e", action="append", default=[])
    p.add_argument("--output", "-o", action="append", default=[])
    p.add_argument("--server", action="append", default=[])
    for flag in ("--log", "-l", "--policy", "-p", "--enrichment", "--capture", "-c", "--signatures-dir"):
        p.add_argument(flag, action="append", default=[])
    if FLAVOUR == "v0.24":
        p.add_argument("--perf-buffer-size", "-b", type=int)
        p.add_argument("--blob-perf-buffer-size", type=int)
        p.add_argument("--pipeline-channel-size", type=int)
        p.add_argument("--install-path")
    else:
        p.add_argument("--buffers", "-b", action="append", default=[])
        p.add_argument("--artifacts", "-a", action="append", default=[])
    args, rest = p.parse_known_args(argv)
    if rest:
        fail(f"unknown flag: {rest[0].split('=')[0]}")
    return args


def check_events(values: list[str]) -> list[str]:
    events = [e for value in values for e in value.split(",") if e]
    for event in events:
        if event not in EVENTS:
            fail(f"invalid event to trace: {event}")
    return events


def check_buffers(values: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or key not in BUFFER_KEYS or "," in val:
            fail(f"invalid buffers flag: '{value}', use 'trace man buffers' for more info")
        if not val.lstrip("-").isdigit():
            fail(f"invalid buffer flag: {key} value must be a positive integer, use 'trace man buffers' for more info")
        if int(val) <= 0:
            fail(f"invalid buffer flag: {key} value can't be negative or zero, use 'trace man buffers' for more info")
        sizes[key] = int(val)
    return sizes


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
        if FLAVOUR == "v0.24" and value.startswith(("destinations.", "streams.")):
            fail(f"invalid output flag: {value}, use 'trace man output' for more info")
        if value.startswith("streams."):
            check_stream(value)
            continue
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
        if (
            dest.get("type", "file") == "file"
            and dest.get("format") == "json"
            and dest.get("path", "stdout") not in ("stdout", "stderr", "")
        ):
            path = dest["path"]
    return path


def check_stream(value: str) -> None:
    key, sep, val = value.partition("=")
    parts = key.split(".")
    field = ".".join(parts[2:])
    if (
        not sep
        or len(parts) < 3
        or field not in ("destinations", "filters.events", "filters.policies", "buffer.size", "buffer.mode")
    ):
        fail(f"invalid output flag: {value}")
    if field == "buffer.mode" and val not in ("block", "drop"):
        fail(f"invalid output flag: {value}: buffer mode must be block or drop")
    if field == "buffer.size" and not val.isdigit():
        fail(f"invalid output flag: {value}: buffer size must be an integer")


class State:
    def __init__(self, modes: dict[str, float | bool], enabled: dict[str, bool]):
        self.modes = modes
        self.enabled = enabled
        self.scrapes = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready_at = None if modes.get("never_ready") else STARTED + float(modes.get("slow_ready", 0.0))
        self.heartbeat_s = float(os.environ.get("EVT_STANDIN_HEARTBEAT", "0.3"))

    def ready(self) -> bool:
        return self.ready_at is not None and time.monotonic() >= self.ready_at

    def healthy(self) -> bool:
        """Running and the heartbeat has beaten (it starts unhealthy)."""
        return self.ready() and time.monotonic() >= self.ready_at + self.heartbeat_s and not self.stopping.is_set()

    def metrics(self) -> str:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        prefix = os.environ.get("EVT_STANDIN_METRIC_PREFIX", "tracee")
        files = [f for f in os.environ.get("EVT_STANDIN_METRICS_FILES", "").split(",") if f]
        if files:
            with open(files[min(n, len(files)) - 1]) as fh:
                text = fh.read()
            if prefix == "tracee_ebpf":  # v0.24.x names
                text = text.replace("tracee_signatures_", "tracee_rules_")
                text = "\n".join(
                    line.replace("tracee_", "tracee_ebpf_", 1) if "tracee_rules_" not in line else line
                    for line in text.split("\n")
                )
            return text
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
            lines += [
                f"# HELP {prefix}_{name} stand-in counter",
                f"# TYPE {prefix}_{name} counter",
                f"{prefix}_{name} {value}",
            ]
        cpu = sum(os.times()[:2])
        lines += [
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {cpu:.2f}",
        ]
        return "\n".join(lines) + "\n"


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:  # quiet
            return

        def _send(self, code: int, body: str | bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/healthz" and state.enabled["healthz"]:
                body = "OK" if state.healthy() else "NOT OK"  # no newline, as Tracee writes it
                code = 200 if FLAVOUR == "v0.24" or body == "OK" else 503
                self._send(code, body)
            elif path == "/metrics" and state.enabled["metrics"]:
                self._send(200, state.metrics(), "text/plain; version=0.0.4; charset=utf-8")
                say(f"served /metrics (scrape {state.scrapes})")
            elif path.startswith("/debug/pprof") and state.enabled["pprof"]:
                self._pprof(path, query)
            else:
                self._send(404, "404 page not found\n")

        def _pprof(self, path: str, query: str) -> None:
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            if path == "/debug/pprof/profile":
                state.stopping.wait(float(params.get("seconds", "30")))  # Go samples that long
                self._send(
                    200, gzip.compress(b"stand-in CPU profile: not a pprof protobuf"), "application/octet-stream"
                )
            elif path in ("/debug/pprof/heap", "/debug/pprof/allocs"):
                self._send(
                    200, gzip.compress(b"stand-in heap profile: not a pprof protobuf"), "application/octet-stream"
                )
            elif path == "/debug/pprof/goroutine":
                self._send(200, "goroutine profile: total 1\n1 @ stand-in\n")
            else:
                self._send(200, "stand-in pprof index\n")

    return Handler


def serve(address: str, state: State) -> ThreadingHTTPServer | None:
    """Listen as Tracee does; a port in use is logged and Tracee runs on without HTTP."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True  # as Go's net.Listen
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = Server((host, int(port)), make_handler(state))
    except OSError as exc:
        say(f"HTTP server error: listen tcp {address}: bind: {exc.strerror or exc} (running on without HTTP)")
        return None
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    say(f"serving on {address}")
    return httpd


def main(argv: list[str]) -> int:
    if argv[:1] in (["version"], ["v"]):  # Tracee's `version` command, with the stand-in named as such
        version = os.environ.get("EVT_STANDIN_VERSION", VERSIONS.get(FLAVOUR, FLAVOUR))
        print(f"Tracee version: {version} stand-in (NOT TRACEE)")
        return 0
    modes = parse_modes(os.environ.get("EVT_STANDIN_MODE", ""))
    say(f"NOT TRACEE: a test stand-in ({FLAVOUR} flavour); argv={argv!r}")
    args = parse_args(argv)
    events = check_events(args.events)
    buffers = check_buffers(getattr(args, "buffers", []))
    enabled, address = server_config(args.server)
    out_path = json_output(args.output)
    say(f"scope={args.scope!r} events={events!r} output={args.output!r} server={args.server!r} buffers={buffers!r}")

    if modes.get("crash_at_start"):
        say("loading eBPF programs (pretend)")
        time.sleep(0.2)
        say("error: stand-in crash_at_start: failed to load eBPF object")
        return 1

    stop = threading.Event()
    state = State(modes, enabled)
    if modes.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, lambda *_: say("SIGTERM received and ignored (ignore_sigterm)"))
    else:

        def on_term(*_: object) -> None:
            say("SIGTERM received, shutting down")
            state.stopping.set()
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

    wants_http = any(enabled.values())
    httpd = serve(address, state) if wants_http and FLAVOUR == "v0.24" else None
    if not wants_http:
        say("no HTTP endpoints")

    max_life = float(os.environ.get("EVT_STANDIN_MAX_LIFETIME", "300"))
    crash_after = modes.get("crash_after")
    emitted = False
    while not stop.is_set():
        now = time.monotonic() - STARTED
        if not emitted and state.ready():
            emitted = True
            say("ready")
            if wants_http and FLAVOUR != "v0.24":  # main: the server starts in the ready callback
                httpd = serve(address, state)
            events_file = os.environ.get("EVT_STANDIN_EVENTS")
            if events_file and out_path:
                with open(events_file, "rb") as src, open(out_path, "ab") as dst:
                    shutil.copyfileobj(src, dst)
                say(f"wrote the events of {events_file} to {out_path}")
        if crash_after is not None and now >= float(crash_after):
            say("fatal error: stand-in crash_after: ring buffer poll failed")
            os._exit(2)
        if now >= max_life:
            say(f"EVT_STANDIN_MAX_LIFETIME={max_life:g}s reached, exiting")
            break
        stop.wait(0.05)

    if httpd is not None:  # at once: a scrape after SIGTERM finds nothing
        httpd.shutdown()
        httpd.server_close()
    time.sleep(float(os.environ.get("EVT_STANDIN_SHUTDOWN", "0.2")))  # detaching probes, pretend
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

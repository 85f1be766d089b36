"""Tracee as the tracer under test: its command line, lifecycle, metrics and event counts.

Everything the original Go tool did with Tracee (reference/TRACEE.md) plus what it did
not: a readiness check on /healthz instead of a fixed sleep, metric scrapes at both ends
of the run with their deltas, the tracer's CPU and peak RSS, and per-unit event counts
from Tracee's JSON output.

The command line is a Jinja template (templates/tracee.cmd.j2, or tracee.template) that
renders one argument per line; the lines become the argv list as they are, so no shell
ever parses them. The template keeps the one difference between Tracee versions evt
cares about: the output syntax (`destinations.*` today, `json:<path>` before).

With tracee.auto=false (the seed's `--auto-tracee=false`) the user starts Tracee; this
class then only prints what to run (manual_instructions), scrapes the configured
metrics endpoint if it answers, samples the running `tracee` process if it finds exactly
one, and counts the JSON output file if there is one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from evt import metrics as prom
from evt import tracee_events
from evt.errors import RunError, UsageError
from evt.paths import TEMPLATES_DIR
from evt.plan import Unit
from evt.spec import EVENT_NAME, format_duration, parse_seconds
from evt.templating import render
from evt.tracers.base import ProcessSampler, Tracer, TracerReport

log = logging.getLogger(__name__)

TRACEE_NAME = "tracee"  # the executable name a running Tracee has
OUTPUT_SYNTAXES = ("destinations", "legacy")
DESTINATION_NAME = "evt"  # the --output destinations.<name>.* evt declares
LOG_TAIL_LINES = 20
MANUAL_PROMPT = "Press ENTER when Tracee is ready to continue..."
PYROSCOPE_UI = "http://localhost:4040/?query=tracee.cpu"
GRAFANA_UI = "http://localhost:3000/"

_CONTAINER_ID = re.compile(r"[0-9a-fA-F]{12,64}")
_HTTP_ADDRESS = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]*):(\d{1,5})")


def _runner_name(cfg) -> str | None:
    try:
        return str(cfg.runner.name)
    except Exception:  # no runner composed (a bare structured config): placeholders say container
        return None


def _seconds(text: object, what: str) -> float:
    return parse_seconds(str(text), what)


# ---------------------------------------------------------------- output


@dataclass
class OutputSpec:
    """tracee.output, understood: none, JSON to a file, or --output values passed as given."""

    kind: str  # none | json | raw
    path: str | None = None  # kind json: the file (or stdout)
    specs: list[str] = field(default_factory=list)  # kind raw: each one --output value
    json_file: str | None = None  # a JSON file evt can count, whatever the kind
    name: str = DESTINATION_NAME

    def as_context(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "specs": self.specs, "name": self.name}


def parse_output(value: object, syntax: str, run_dir: Path) -> OutputSpec:
    """tracee.output: `none`; `json` (a file in run_dir/tracer/) or `json:<path>`;
    or one or more raw --output values separated by spaces (`destinations.x.format=json
    destinations.x.path=/tmp/e.json`, `table`, `webhook:<url>`, ...)."""
    if syntax not in OUTPUT_SYNTAXES:
        raise UsageError(
            f"invalid tracee.output_syntax {syntax!r}: use destinations (current Tracee, "
            "`--output destinations.<name>.path=...`) or legacy (Tracee before it, `--output json:<path>`)."
        )
    text = str(value if value is not None else "none").strip()
    if "\n" in text or "\r" in text:
        raise UsageError(f"invalid tracee.output {text!r}: no line breaks.")
    if text in ("", "none"):
        return OutputSpec("none")
    if text in ("json", "json:"):
        path = str((run_dir / "tracer" / "events.json").resolve())
        return OutputSpec("json", path=path, json_file=path)
    if text.startswith("json:") and " " not in text:
        path = text[len("json:"):]
        if path in ("stdout", "stderr"):
            return OutputSpec("json", path=path)
        path = os.path.abspath(path)
        return OutputSpec("json", path=path, json_file=path)
    specs = text.split()
    return OutputSpec("raw", specs=specs, json_file=_json_file_of(specs))


def _json_file_of(specs: list[str]) -> str | None:
    """The JSON file a list of raw --output values writes, when there is one."""
    dests: dict[str, dict[str, str]] = {}
    for spec in specs:
        if spec.startswith("json:"):
            path = spec[len("json:"):]
            if path and path not in ("stdout", "stderr"):
                return os.path.abspath(path)
        if spec.startswith("destinations.") and "=" in spec:
            key, val = spec.split("=", 1)
            parts = key.split(".")
            if len(parts) == 3:
                dests.setdefault(parts[1], {})[parts[2]] = val
    for dest in dests.values():
        if dest.get("type", "file") == "file" and dest.get("format") == "json":
            path = dest.get("path", "stdout")
            if path not in ("", "stdout", "stderr"):
                return os.path.abspath(path)
    return None


# ---------------------------------------------------------------- command line


def http_parts(address: str) -> tuple[str, int]:
    match = _HTTP_ADDRESS.fullmatch(str(address).strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise UsageError(
            f"invalid tracee.http_address {address!r}: expected host:port such as 127.0.0.1:3366."
        )
    return match.group(1), int(match.group(2))


def base_url(address: str) -> str:
    """Where evt reaches Tracee's HTTP server (an any-address listens on loopback too)."""
    host, port = http_parts(address)
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host in ("[::]",):
        host = "[::1]"
    return f"http://{host}:{port}"


def scopes_for(units: list[Unit], runner: str | None = None) -> list[str]:
    """Tracee --scope values for the units: their containers, else their process trees.
    Units not started yet get placeholders (for the plan and --dry-run)."""
    ids = [u.container_id for u in units if u.container_id]
    pids = [u.pid for u in units if u.pid and not u.container_id]
    if ids and pids:
        raise RunError(
            "some units run in containers and some as host processes; Tracee ANDs a container "
            "scope with a tree scope, so one Tracee cannot be scoped to both. Use one runner."
        )
    if ids:
        for cid in ids:
            if not _CONTAINER_ID.fullmatch(cid):
                raise RunError(f"unexpected container id {cid!r} (expected 12-64 hex digits)")
        return ["container=" + ",".join(ids)]
    if pids:
        return [f"tree={int(pid)}" for pid in pids]
    if not units:
        return []
    if runner == "local":
        return [f"tree=<pid-of-{u.name}>" for u in units]
    return ["container=" + ",".join(f"<id-of-{u.container_name or u.name}>" for u in units)]


def _no_newline(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise UsageError(f"invalid {what} {value!r}: arguments cannot contain line breaks.")
    return value


def template_location(template: str) -> tuple[str, Path]:
    """(template name, search directory): a name under templates/ or a path to a file."""
    template = str(template)
    candidate = Path(template)
    if os.sep in template or candidate.is_absolute():
        if not candidate.is_file():
            raise UsageError(
                f"tracee.template {template!r} does not exist; give a file path or a name under "
                f"{TEMPLATES_DIR} (default tracee.cmd.j2)."
            )
        return candidate.name, candidate.resolve().parent
    if not (TEMPLATES_DIR / template).is_file():
        raise UsageError(
            f"tracee.template {template!r} not found in {TEMPLATES_DIR}; use tracee.cmd.j2 or a path to a template."
        )
    return template, TEMPLATES_DIR


def render_command(cfg, units: list[Unit], run_dir: Path, binary: str | None = None) -> list[str]:
    """Tracee's argv, rendered from tracee.template (one argument per line)."""
    tcfg = cfg.tracee
    events = list(dict.fromkeys(u.event for u in units))
    for event in events:
        if not EVENT_NAME.fullmatch(event):
            raise UsageError(f"invalid event name {event!r}: only [a-z0-9_]+ reaches Tracee's command line.")
    output = parse_output(tcfg.output, str(tcfg.output_syntax), run_dir)
    for value in (output.path or "", *output.specs):
        _no_newline(value, "tracee.output")
    http_parts(tcfg.http_address)
    extra = [_no_newline(str(a), "tracee.extra_args entry") for a in (tcfg.extra_args or [])]
    name, search = template_location(str(tcfg.template))
    runner = _runner_name(cfg)
    text = render(
        name,
        search,
        binary=_no_newline(str(binary or tcfg.binary), "tracee.binary"),
        scopes=scopes_for(units, runner),
        events=events,
        output=output.as_context(),
        output_syntax=str(tcfg.output_syntax),
        server={
            "metrics": bool(tcfg.metrics),
            "healthz": bool(tcfg.healthz),
            "pprof": bool(tcfg.pprof),
            "pyroscope": bool(tcfg.pyroscope),
        },
        http_address=str(tcfg.http_address).strip(),
        extra_args=extra,
    )
    return [line.strip() for line in text.split("\n") if line.strip()]


# ---------------------------------------------------------------- checks


def binary_problem(binary: str) -> str | None:
    """Why `binary` cannot be run as Tracee, in the original's words; None when it can."""
    path = Path(binary)
    if os.sep not in binary and not path.exists():
        found = shutil.which(binary)
        if found:
            path = Path(found)
    if not path.exists():
        return (
            f"tracee binary not found at {json.dumps(binary)}\n\n"
            "The tracee binary is required for stress testing when using --auto-tracee (default).\n\n"
            "To build tracee:\n  make tracee\n\n"
            "To use a different binary path:\n  evt stress --tracee-binary /path/to/tracee ...   (tracee.binary=/path/to/tracee)\n\n"
            "To manually start tracee instead:\n  evt stress --auto-tracee=false ...   (tracee.auto=false)\n\n"
            "To measure with bpftrace instead of Tracee:\n  evt stress tracer=bpftrace ...\n\n"
            "Note: Use --keep-tracee to prevent automatic termination after the stress test"
        )
    if not path.is_file() or not os.access(path, os.X_OK) or not (path.stat().st_mode & 0o111):
        return (
            f"tracee binary {json.dumps(binary)} exists but is not executable\n\n"
            f"Make it executable with: chmod +x {shlex.quote(binary)}"
        )
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def find_tracee_processes(exclude: set[int] | None = None) -> list[tuple[int, str]]:
    """Live processes that ARE Tracee: executable or argv[0] basename exactly `tracee`.
    (The original matched any command line containing "tracee"; that also caught
    editors, greps and this tool's own runs.)"""
    exclude = (exclude or set()) | {os.getpid()}
    found: list[tuple[int, str]] = []
    for proc in psutil.process_iter(["pid", "exe", "cmdline", "status"]):
        info = proc.info
        if info["pid"] in exclude or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        exe = info.get("exe") or ""
        argv = info.get("cmdline") or []
        argv0 = os.path.basename(argv[0]) if argv else ""
        if os.path.basename(exe) == TRACEE_NAME or argv0 == TRACEE_NAME:
            found.append((info["pid"], " ".join(argv) or exe))
    return found


def running_tracee(pidfile: str, say: Callable[[str], None] | None = None) -> list[str]:
    """Descriptions of every running Tracee (pidfile with a live pid, or a `tracee` process)."""
    found: list[str] = []
    pids: set[int] = set()
    try:
        text = Path(pidfile).read_text().strip()
    except OSError:
        text = ""
    if text:
        if text.isdigit() and _alive(int(text)):
            pids.add(int(text))
            found.append(f"  - Tracee running with PID {text} (from PID file: {pidfile})")
        elif say:
            say(f"Warning: Found stale Tracee PID file at {pidfile} (PID: {text})")
    for pid, cmdline in find_tracee_processes():
        if pid not in pids:
            pids.add(pid)
            found.append(f"  - {pid} {cmdline}")
    return found


def already_running_message(found: list[str]) -> str:
    pids = " ".join(re.findall(r"^  - (?:Tracee running with PID )?(\d+)", "\n".join(found), re.M))
    return (
        "tracee is already running:\n" + "\n".join(found) + "\n\n"
        "Please stop all Tracee instances before running the stress test "
        "(two Tracees share the kernel's buffers and the HTTP port, and the results would mix).\n"
        f"You can stop them with: sudo kill -TERM {pids}\n"
        "Or run against the Tracee that is already running: evt stress --auto-tracee=false ... (tracee.auto=false)"
    )


# ---------------------------------------------------------------- manual mode helpers


def endpoints(cfg) -> list[str]:
    """The original's endpoint lines for --wait-before-trigger (port from tracee.http_address)."""
    tcfg = cfg.tracee
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


def manual_instructions(units, cfg=None, run_dir: Path | None = None) -> list[str]:
    """What the original prints with --auto-tracee=false: the scope filter and a Tracee
    command line to start in another terminal (the caller then waits for ENTER, see
    MANUAL_PROMPT). Pass the run's cfg so the suggestion carries tracee.binary, the
    output and the server flags; without it Tracee's defaults (./dist/tracee) are shown.
    `manual_instructions(cfg, units)` is accepted too."""
    if isinstance(cfg, (list, tuple)):  # called as (cfg, units)
        units, cfg = cfg, units
    if cfg is None:
        from omegaconf import OmegaConf

        from evt.config import TraceeConfig

        cfg = OmegaConf.create({"tracee": OmegaConf.structured(TraceeConfig)})
    units = list(units)
    run_dir = Path(run_dir) if run_dir is not None else Path.cwd()
    lines = []
    for scope in scopes_for(units, _runner_name(cfg)):
        what = "Container scope filter" if scope.startswith("container=") else "Process tree scope filter"
        lines.append(f"{what}: --scope {scope}")
    argv = render_command(cfg, units, run_dir)
    lines += ["", "Please start Tracee in another terminal with:", f"  sudo {shlex.join(argv)}"]
    return lines


def kept_message(pid: int) -> list[str]:
    return [
        "",
        "=== Keeping Tracee Running (--keep-tracee) ===",
        f"Tracee is still running (PID: {pid})",
        f"To stop Tracee later, run: sudo kill -TERM {pid}",
    ]


# ---------------------------------------------------------------- the tracer


class TraceeTracer(Tracer):
    name = "tracee"

    def __init__(self, cfg, run_dir: Path, out: Callable[[str], None] | None = None):
        super().__init__(cfg, run_dir)
        self.tcfg = cfg.tracee
        self.out = out or (lambda msg: print(msg, flush=True))
        self.dir = self.run_dir / "tracer"
        self.log_path = self.dir / "tracee.log"
        self.auto = bool(self.tcfg.auto)
        self.keep = bool(self.tcfg.keep)
        self.url = base_url(self.tcfg.http_address)
        self.output = parse_output(self.tcfg.output, str(self.tcfg.output_syntax), self.run_dir)
        self.argv: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None  # Tracee's pid (ours, or the user's in manual mode)
        self.sampler: ProcessSampler | None = None
        self.scrapes = prom.Scrapes()
        self.crashed: str | None = None
        self.ready = False
        self.ready_s: float | None = None
        self.stop_method: str | None = None  # exited | sigterm | sigkill | kept | manual
        self.exit_code: int | None = None
        self._units: list[Unit] = []
        self._stopping = False
        self._stopped = False
        self._drained = False
        self._started_at: float | None = None
        self._trees: dict[str, set[int]] = {}
        self._cgroups: dict[str, int | None] = {}
        self._tree_lock = threading.Lock()
        self._tree_stop = threading.Event()
        self._tree_thread: threading.Thread | None = None

    # -- plan

    def check(self, units: list[Unit]) -> None:
        parse_output(self.tcfg.output, str(self.tcfg.output_syntax), self.run_dir)
        template_location(str(self.tcfg.template))
        for key in ("init_cooldown", "ready_timeout", "start_grace", "stop_timeout", "drain"):
            _seconds(self.tcfg[key], f"tracee.{key}")
        if not self.auto:
            return
        problem = binary_problem(str(self.tcfg.binary))
        if problem:
            raise UsageError(problem)
        found = running_tracee(str(self.tcfg.pidfile), self.out)
        if found:
            raise UsageError(already_running_message(found))

    def command(self, units: list[Unit]) -> list[str]:
        return render_command(self.cfg, units, self.run_dir, self._binary())

    def manual_instructions(self, units: list[Unit]) -> list[str]:
        return manual_instructions(units, self.cfg, self.run_dir)

    def endpoints(self) -> list[str]:
        return endpoints(self.cfg)

    def _binary(self) -> str:
        binary = str(self.tcfg.binary)
        if os.sep not in binary and not Path(binary).exists():
            return shutil.which(binary) or binary
        return os.path.abspath(binary)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    # -- lifecycle

    def start(self, units: list[Unit]) -> None:
        self._units = list(units)
        self.dir.mkdir(parents=True, exist_ok=True)
        missing = [u.name for u in units if not u.container_id and not u.pid]
        if missing:
            raise RunError(
                f"Tracee cannot be scoped before every unit exists; no container id or pid for: {', '.join(missing)}"
            )
        self.argv = self.command(units)
        self._write_command()
        self._watch_units(units)
        if not self.auto:
            return
        if self.output.json_file:
            Path(self.output.json_file).parent.mkdir(parents=True, exist_ok=True)
        self.out(f"Starting Tracee: {shlex.join(self.argv)}")
        self.out(f"Tracee logs: {self.log_path}")
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the group
                close_fds=True,
            )
        except OSError as exc:
            raise RunError(f"could not start Tracee ({self.argv[0]}): {exc}") from exc
        finally:
            logf.close()
        self.pid = self.proc.pid
        self._started_at = time.monotonic()
        self.sampler = ProcessSampler(self.pid).start()
        self.out(f"Tracee started with PID: {self.pid}")

    def wait_ready(self) -> None:
        if not self.auto:
            self._manual_ready()
            return
        if self.proc is None:
            raise RunError("Tracee was not started (start() was not called or failed).")
        self.out("Waiting for Tracee to initialize...")
        if self.tcfg.healthz:
            self._wait_healthz()
        else:
            grace = _seconds(self.tcfg.start_grace, "tracee.start_grace")
            if not self._wait_alive(grace):
                raise RunError(self._crash_message("during start-up"))
        self.ready = True
        self.ready_s = time.monotonic() - (self._started_at or time.monotonic())
        cooldown = _seconds(self.tcfg.init_cooldown, "tracee.init_cooldown")
        if cooldown > 0:
            self.out(f"Tracee running, waiting {format_duration(int(cooldown * 1e9))} for stabilization...")
            if not self._wait_alive(cooldown):
                raise RunError(self._crash_message("during the init cooldown"))
        self.out("Tracee initialization complete")
        self.out(f"Tracee is ready (PID: {self.pid})")
        if self.tcfg.metrics:
            self._scrape("start")

    def poll(self) -> str | None:
        if self.crashed:
            return self.crashed
        if self._stopping or self._stopped:
            return None
        if self.proc is not None:
            code = self.proc.poll()
            if code is not None:
                self.exit_code = code
                self.crashed = f"Tracee {self._exit_text(code)} while the units ran; log: {self.log_path}"
                tail = self._log_tail(3)
                if tail:
                    self.crashed += " (last lines: " + " | ".join(tail) + ")"
                return self.crashed
        elif self.pid is not None and not _alive(self.pid):  # the user's Tracee (manual mode)
            self.crashed = f"the Tracee process {self.pid} (started by you) exited while the units ran"
            return self.crashed
        return None

    def drain(self) -> None:
        if self._drained:
            return
        self._drained = True
        self._stop_watch()
        if self.auto and (self.proc is None or not self.ready):
            return
        wait = _seconds(self.tcfg.drain, "tracee.drain")
        if wait > 0:
            self._wait_alive(wait)
        if self.tcfg.metrics and self._running():
            self._scrape("end")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_watch()
        if not self.auto:
            self.stop_method = "manual"
            if self.sampler:
                self.sampler.stop()
            self.out("")
            self.out("=== Tracee Management (--auto-tracee=false) ===")
            self.out("Tracee was manually started by you.")
            self.out("You are responsible for stopping it when done.")
            for line in self.endpoints():
                self.out(line)
            return
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is not None:
                self.exit_code = proc.returncode
                self.stop_method = "exited"
                self.out(f"Tracee already exited ({self._exit_text(proc.returncode)})")
                self._kill_group(signal.SIGKILL)  # anything it left in its group
                return
            if self.keep and self.ready:
                self.stop_method = "kept"
                if self.sampler:
                    self.sampler.sample()
                for line in kept_message(proc.pid):
                    self.out(line)
                return
            self._stopping = True
            timeout = _seconds(self.tcfg.stop_timeout, "tracee.stop_timeout")
            if self.sampler:
                self.sampler.sample()
            self.out(f"Stopping Tracee (PID: {proc.pid})...")
            self.out("Sending SIGTERM for graceful shutdown...")
            self._kill_group(signal.SIGTERM)
            self.out(f"Waiting up to {format_duration(int(timeout * 1e9))} for graceful shutdown...")
            try:
                proc.wait(timeout=timeout)
                self.stop_method = "sigterm"
                self.out("Tracee stopped gracefully")
            except subprocess.TimeoutExpired:
                self.out(f"Tracee did not stop within {format_duration(int(timeout * 1e9))}, sending SIGKILL...")
                self._kill_group(signal.SIGKILL)
                try:
                    proc.wait(timeout=5)
                    self.out("Tracee terminated (SIGKILL)")
                except subprocess.TimeoutExpired:
                    self.out(f"Tracee may still be running after SIGKILL (PID: {proc.pid})")
                self.stop_method = "sigkill"
            self.exit_code = proc.returncode
            self._kill_group(signal.SIGKILL)  # children it left behind in its group
        finally:
            if self.sampler:
                self.sampler.stop()  # final figures; a kept Tracee is no longer measured
            self._write_lifecycle()

    # -- results

    def report(self, units: list[Unit]) -> TracerReport:
        delta = self.scrapes.deltas()
        command = list(self.argv)
        if not command:
            try:
                command = self.command(units)
            except (UsageError, RunError):
                command = []
        rep = TracerReport(
            tracer=self.name,
            command=command,
            observed=self._observed(units),
            lost=prom.lost(delta),
            metrics=delta,
            log_path=str(self.log_path) if self.auto else None,
            crashed=self.crashed,
        )
        if self.sampler is not None:
            rep.cpu_s = self.sampler.cpu_s
            rep.peak_rss_bytes = self.sampler.peak_rss
            rep.wall_s = self.sampler.wall_s
        if delta:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "metrics-deltas.json").write_text(json.dumps(delta, indent=2, sort_keys=True) + "\n")
        return rep

    def _observed(self, units: list[Unit]) -> dict[str, int] | None:
        path = self.output.json_file
        if not path:
            return None  # output none (or not to a file): Tracee's own counters only
        if not Path(path).is_file():
            self.out(f"Warning: Tracee's JSON output {path} does not exist; no per-unit counts")
            return None
        scopes = []
        with self._tree_lock:
            for u in units:
                scopes.append(tracee_events.UnitScope(
                    name=u.name,
                    event=u.event,
                    container_id=u.container_id,
                    cgroup_id=self._cgroups.get(u.name),
                    pids=set(self._trees.get(u.name, set())) | ({u.pid} if u.pid and not u.container_id else set()),
                    # native workers carry the run's marker; script ops run the original's tools
                    comms=(u.marker.comm, u.marker.child_comm) if u.mode == "native" else (),
                    marker_dir=u.marker.dir if u.mode == "native" else None,
                ))
        counts = tracee_events.count_events(path, scopes)
        self.dir.mkdir(parents=True, exist_ok=True)
        tracee_events.write_counts(counts, self.dir / "event-counts.json")
        return counts.observed(scopes)

    # -- internals

    def _running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if not self.auto:  # the user's Tracee: try its endpoint whatever we know
            return True
        return self.pid is not None and _alive(self.pid)

    def _wait_alive(self, seconds: float) -> bool:
        """Wait `seconds`; False as soon as Tracee exits."""
        if self.proc is None:
            time.sleep(max(0.0, seconds))
            return True
        try:
            self.proc.wait(timeout=max(0.0, seconds))
        except subprocess.TimeoutExpired:
            return True
        self.exit_code = self.proc.returncode
        return False

    def _wait_healthz(self) -> None:
        timeout = _seconds(self.tcfg.ready_timeout, "tracee.ready_timeout")
        url = f"{self.url}/healthz"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise RunError(self._crash_message("before it became ready"))
            status, body = prom.http_get(url, timeout=1.0)
            if status == 200:
                return
            last = f"HTTP {status}" if status else body
            if time.monotonic() >= deadline:
                tail = "\n".join(self._log_tail())
                raise RunError(
                    f"Tracee did not become ready within {format_duration(int(timeout * 1e9))}: "
                    f"{url} never answered 200 (last: {last}).\n\n"
                    f"Tracee log output ({self.log_path}):\n{tail}\n\n"
                    "Give it longer with tracee.ready_timeout=3m, or check that tracee.http_address "
                    "matches the address it listens on; tracee.healthz=false falls back to tracee.start_grace."
                )
            time.sleep(0.1)

    def _manual_ready(self) -> None:
        found = find_tracee_processes()
        if len(found) == 1:
            self.pid = found[0][0]
            self.sampler = ProcessSampler(self.pid).start()
            self.out(f"Sampling the running Tracee (PID: {self.pid}) for CPU and memory")
        self.ready = True
        if self.tcfg.metrics:
            self._scrape("start")

    def _scrape(self, which: str) -> None:
        url = f"{self.url}/metrics"
        try:
            text = prom.scrape(url)
            prom.parse(text)
        except prom.ScrapeError as exc:
            self.scrapes.errors.append(f"{which}: {exc}")
            self.out(f"Warning: {exc}; Tracee's counters will be missing from the results")
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / f"metrics-{which}.prom").write_text(text)
        if which == "start":
            self.scrapes.start_text = text
        else:
            self.scrapes.end_text = text

    def _kill_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            if sig != signal.SIGKILL or self.proc.poll() is None:
                try:
                    self.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _exit_text(self, code: int | None) -> str:
        if code is None:
            return "is still running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def _log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line for line in data.splitlines() if line.strip()][-lines:]

    def _crash_message(self, when: str) -> str:
        tail = self._log_tail()
        msg = f"tracee finished {when}: {self._exit_text(self.exit_code)}"
        if tail:
            msg += f"\n\nTracee log output ({self.log_path}, last {len(tail)} lines):\n" + "\n".join(tail)
        else:
            msg += f"\n\nTracee log file: {self.log_path} (empty)"
        return msg

    def _write_command(self) -> None:
        name, search = template_location(str(self.tcfg.template))
        record = {
            "argv": self.argv,
            "shell": shlex.join(self.argv),
            "template": str(search / name),
            "output_syntax": str(self.tcfg.output_syntax),
            "json_output": self.output.json_file,
            "auto": self.auto,
        }
        (self.dir / "command.json").write_text(json.dumps(record, indent=2) + "\n")
        (self.dir / "command.txt").write_text(shlex.join(self.argv) + "\n")

    def _write_lifecycle(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "lifecycle.json").write_text(json.dumps({
                "pid": self.pid,
                "ready": self.ready,
                "ready_s": self.ready_s,
                "stopped_by": self.stop_method,
                "exit_code": self.exit_code,
                "crashed": self.crashed,
                "scrape_errors": self.scrapes.errors,
            }, indent=2) + "\n")
        except OSError as exc:  # pragma: no cover - a full or vanished run dir
            log.warning("could not write %s: %s", self.dir / "lifecycle.json", exc)

    # Local units: remember every pid seen under each unit, so events from its
    # short-lived children can still be matched after they are gone.

    def _watch_units(self, units: list[Unit]) -> None:
        local = [u for u in units if u.pid and not u.container_id]
        for u in units:
            self._cgroups[u.name] = tracee_events.cgroup_inode(u.cgroup_path)
        if not local or not self.output.json_file:
            return
        for u in local:
            self._trees[u.name] = {u.pid}
        self._tree_thread = threading.Thread(target=self._tree_loop, args=(local,), name="tracee-unit-trees", daemon=True)
        self._tree_thread.start()

    def _tree_loop(self, units: list[Unit]) -> None:
        while not self._tree_stop.is_set():
            for u in units:
                try:
                    kids = psutil.Process(u.pid).children(recursive=True)
                except psutil.Error:
                    continue
                with self._tree_lock:
                    self._trees[u.name].update(k.pid for k in kids)
            self._tree_stop.wait(0.05)

    def _stop_watch(self) -> None:
        self._tree_stop.set()
        if self._tree_thread is not None and self._tree_thread.is_alive():
            self._tree_thread.join(timeout=2)


__all__ = [
    "TraceeTracer",
    "render_command",
    "parse_output",
    "scopes_for",
    "binary_problem",
    "running_tracee",
    "find_tracee_processes",
    "manual_instructions",
    "endpoints",
    "kept_message",
    "MANUAL_PROMPT",
]


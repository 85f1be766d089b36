"""Tracee's command line: its argv, rendered from a Jinja template, and the record of it.

The command line is a Jinja template (templates/tracee.cmd.j2, or tracee.template) that
renders one argument per line; the lines become the argv list as they are, so no shell
ever parses them. What differs between Tracee's main and v0.24.x (flavour.py) is decided
here and handed to the template: the output syntax (`destinations.*`/`streams.*` on
main, `json:<path>` before) and the buffer flags (`--buffers key=value` on main,
`--perf-buffer-size` and friends before).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from evt.config.spec import EVENT_NAME
from evt.config.templating import render
from evt.errors import RunError, UsageError
from evt.paths import TEMPLATES_DIR
from evt.stress.plan import Unit
from evt.tracers.tracee.flavour import Flavour
from evt.workload.catalog import tracee_name

OUTPUT_SYNTAXES = ("auto", "destinations", "streams", "legacy")
DESTINATION_NAME = "evt"  # the --output destinations.<name>.* (and streams.<name>.*) evt declares
STREAM_MODES = ("block", "drop")
# tracee.buffers.<key> -> (main: `--buffers <name>=N`, v0.24.x: its own flag; None: no equivalent)
BUFFER_FLAGS = {
    "kernel_events": ("kernel.events", "--perf-buffer-size"),
    "kernel_artifacts": ("kernel.artifacts", "--blob-perf-buffer-size"),
    "kernel_control_plane": ("kernel.control-plane", None),
    "pipeline": ("pipeline", "--pipeline-channel-size"),
}

_CONTAINER_ID = re.compile(r"[0-9a-fA-F]{12,64}")
_HTTP_ADDRESS = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]*):(\d{1,5})")


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
            f"invalid tracee.output_syntax {syntax!r}: use auto (by Tracee's flavour), destinations "
            "(Tracee main, `--output destinations.<name>.path=...`), streams (Tracee main, destinations plus "
            "`streams.<name>.buffer.*`) or legacy (v0.24.x, `--output json:<path>`)."
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
        path = text[len("json:") :]
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
            path = spec[len("json:") :]
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
        raise UsageError(f"invalid tracee.http_address {address!r}: expected host:port such as 127.0.0.1:3366.")
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


def tracee_event(unit: Unit) -> str:
    """The name Tracee knows a unit's event by (the catalog's socked_dup is Tracee's
    socket_dup): the one place the command line and the per-event metrics take it from."""
    return tracee_name(unit.event)


def output_syntax(tcfg, flavour: Flavour) -> str:
    """tracee.output_syntax with `auto` resolved; one the flavour lacks is refused."""
    syntax = str(tcfg.output_syntax)
    if syntax == "auto":
        return flavour.output_syntax
    if flavour.legacy and syntax in ("destinations", "streams"):
        raise UsageError(
            f"tracee.output_syntax={syntax} needs Tracee's main branch, but the Tracee is v0.24.x "
            f"(tracee.flavour={flavour.name}{', it says ' + repr(flavour.version) if flavour.version else ''}): "
            "use tracee.output_syntax=legacy (or auto), or tracee.flavour=main for a main build."
        )
    return syntax


def buffer_args(tcfg, flavour: Flavour) -> list[str]:
    """The buffer flags for tracee.buffers.*: one `--buffers key=N` each on main, the
    older flags on v0.24.x. UsageError for a value that is not a positive integer."""
    args: list[str] = []
    for key, (name, old_flag) in BUFFER_FLAGS.items():
        value = tcfg.buffers.get(key)
        if value is None:
            continue
        pages = _positive(value, f"tracee.buffers.{key}")
        if not flavour.legacy:
            args += ["--buffers", f"{name}={pages}"]
        elif old_flag:
            args += [old_flag, str(pages)]
        else:
            raise UsageError(
                f"tracee.buffers.{key}={pages} has no flag in Tracee v0.24.x (tracee.flavour={flavour.name}): "
                "remove it, or use tracee.flavour=main for a main build (`--buffers kernel.control-plane=N`)."
            )
    return args


def stream_args(tcfg, syntax: str, output: OutputSpec) -> list[str]:
    """With tracee.output_syntax=streams: the stream evt declares for its destination."""
    mode = str(tcfg.stream.buffer_mode)
    if mode not in STREAM_MODES:
        raise UsageError(f"invalid tracee.stream.buffer_mode {mode!r}: use block or drop.")
    size = tcfg.stream.get("buffer_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise UsageError(f"invalid tracee.stream.buffer_size {size!r}: give a whole number of events, 0 or more.")
    if syntax != "streams":
        return []
    if output.kind != "json":
        raise UsageError(
            "tracee.output_syntax=streams declares a stream for evt's JSON destination: set tracee.output=json "
            f"(or json:<path>); tracee.output={' '.join(output.specs) or output.kind!r} has none."
        )
    name = output.name
    args = [f"streams.{name}.destinations={name}", f"streams.{name}.buffer.mode={mode}"]
    if size is not None:
        args.append(f"streams.{name}.buffer.size={size}")
    return args


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"invalid {what} {value!r}: give a positive whole number (pages, or events for pipeline).")
    return value


def render_command(
    tcfg, units: list[Unit], run_dir: Path, flavour: Flavour, binary: str | None = None, runner: str | None = None
) -> list[str]:
    """Tracee's argv for this flavour, rendered from tracee.template (one argument per line);
    `tcfg` is the tracee section, `runner` the runner's name (None: placeholders say container)."""
    events = list(dict.fromkeys(tracee_event(u) for u in units))  # de-duplicated, first appearance first
    for event in events:
        if not EVENT_NAME.fullmatch(event):
            raise UsageError(f"invalid event name {event!r}: only [a-z0-9_]+ reaches Tracee's command line.")
    syntax = output_syntax(tcfg, flavour)
    output = parse_output(tcfg.output, syntax, run_dir)
    streams = stream_args(tcfg, syntax, output)
    buffers = buffer_args(tcfg, flavour)
    for value in (output.path or "", *output.specs):
        _no_newline(value, "tracee.output")
    http_parts(tcfg.http_address)
    extra = [_no_newline(str(a), "tracee.extra_args entry") for a in (tcfg.extra_args or [])]
    name, search = template_location(str(tcfg.template))
    text = render(
        name,
        search,
        binary=_no_newline(str(binary or tcfg.binary), "tracee.binary"),
        scopes=scopes_for(units, runner),
        events=events,
        output=output.as_context(),
        output_syntax=syntax,
        streams=streams,
        buffers=buffers,
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


def resolve_binary(binary: str) -> str:
    """The executable the argv starts with: a bare name found on PATH, else an absolute path."""
    if os.sep not in binary and not Path(binary).exists():
        return shutil.which(binary) or binary
    return os.path.abspath(binary)


def write_command(dest: Path, tcfg, argv: list[str], output: OutputSpec, flavour: Flavour) -> None:
    """command.json (argv, shell form, template, output) and command.txt in `dest`."""
    name, search = template_location(str(tcfg.template))
    record = {
        "argv": argv,
        "shell": shlex.join(argv),
        "template": str(search / name),
        "output_syntax": output_syntax(tcfg, flavour),
        "flavour": flavour.name,
        "tracee_version": flavour.version,
        "json_output": output.json_file,
        "auto": bool(tcfg.auto),
    }
    (dest / "command.json").write_text(json.dumps(record, indent=2) + "\n")
    (dest / "command.txt").write_text(shlex.join(argv) + "\n")

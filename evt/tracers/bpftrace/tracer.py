"""bpftrace as the tracer: counts every unit's target events exactly, as a reference.

One probe block per unit (templates/bpftrace_count.bt.j2): the unit's ground-truth probe
and marker filter from its trigger, narrowed to the unit's scope (its cgroup v2 when the
runner knows it, else its process tree, else the marker alone). Counts are per-CPU
count() maps that bpftrace prints as JSON (`-f json`) when it exits on SIGINT; the
lost-event lines it prints (`{"type": "lost_events"}` or `Lost N events`) are kept.

Ready means attached: bpftrace prints `Attaching N probes...` *before* it attaches, so
the tracer asks for the notice bpftrace prints once every probe is attached
(`__BPFTRACE_NOTIFY_PROBES_ATTACHED`, on stderr in v0.17, on stdout in later versions)
and polls for it up to bpftrace.ready_timeout.

bpftrace.mode=stream adds one printf per event to the same program: the lines that reach
userspace through bpftrace's per-CPU output buffer (bpftrace.buffer_pages pages per CPU,
BPFTRACE_PERF_RB_PAGES) are the observed events, the count map what the probes saw
(evt/tracers/bpftrace/output.py).

Its process (start, readiness, stop, log, resources, in-kernel BPF cost) is
ProcessTracer's (evt/tracers/process.py). Files in <run_dir>/tracer/: bpftrace.bt (the program
as run), bpftrace.log (stderr), bpftrace.out (stdout: JSON lines).
"""

from __future__ import annotations

import glob
import logging
import re
import shutil
import signal
from pathlib import Path

from evt import host
from evt.config.templating import render
from evt.errors import RunError, UsageError
from evt.procs import command_version, exit_text
from evt.stress.plan import RunContext, Unit
from evt.tracers.base import TracerReport
from evt.tracers.bpftrace.output import STREAM_PREFIX, BpftraceOutput, parse
from evt.tracers.process import ProcessTracer

log = logging.getLogger(__name__)

ATTACHED = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
TREE_DEPTH = 8  # ancestors a pid-tree scope looks through (worker, sh, timeout, nc, ...)
LOST_COUNTER = "bpftrace_lost_events"
MODES = ("count", "stream")
BUFFER_PAGES_ENV = "BPFTRACE_PERF_RB_PAGES"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./:@+-]*")


class BpftraceTracer(ProcessTracer):
    """Built with `settings`, the bpftrace section (conf/tracer/bpftrace.yaml: ${bpftrace})."""

    name = "bpftrace"
    log_skip = ATTACHED
    resignal_when_idle = True  # it may miss a SIGINT that arrives while it attaches

    def __init__(self, run: RunContext, name: str, settings):
        super().__init__(run, name, settings, section="bpftrace")
        self.bcfg = settings
        self.program_path = self.dir / "bpftrace.bt"

    # -- before anything starts -------------------------------------------------------

    def binary(self) -> str:
        """The bpftrace executable, resolved on PATH; UsageError when it is missing."""
        configured = str(self.bcfg.binary)
        found = shutil.which(configured)
        if not found:
            raise UsageError(
                f"bpftrace not found: {configured!r} is not an executable on PATH. Install it "
                "(`apt-get install bpftrace`, or `make setup`) or point bpftrace.binary=/path/to/bpftrace "
                "at it, or pick another tracer (tracer=tracee or tracer=none)."
            )
        return found

    def version(self) -> str | None:
        found = shutil.which(str(self.bcfg.binary))
        return command_version([found, "--version"]) if found else None  # "bpftrace v0.17.0"

    def check(self, units: list[Unit]) -> None:
        self._check_mode()
        self.binary()
        if not host.tracefs_mounted():
            raise UsageError(
                f"tracefs is not mounted at {host.TRACEFS}: bpftrace needs it for tracepoints. "
                f"Mount it with `mount -t tracefs tracefs {host.TRACEFS}` and retry."
            )
        for unit in units:
            _check_name(unit.name)
            for probe in probes_of(unit):
                reason = missing_probe(probe)
                if reason:
                    raise UsageError(
                        f"probe {probe} of unit {unit.name} ({unit.event}, {unit.mode} mode) does not exist on "
                        f"this kernel: {reason}. Fix the target in triggers/{unit.event}.yaml, run the event in "
                        "another mode, or list what exists with `bpftrace -l 'tracepoint:*'`."
                    )

    def _check_mode(self) -> None:
        mode, pages = str(self.bcfg.mode), self.bcfg.buffer_pages
        if mode not in MODES:
            raise UsageError(
                f"invalid bpftrace.mode {mode!r}: use bpftrace.mode=count (per-CPU counts in the kernel, the "
                "reference) or bpftrace.mode=stream (one printf per event through bpftrace's output buffer)."
            )
        if pages is not None and (pages < 1 or pages & (pages - 1)):
            raise UsageError(
                f"invalid bpftrace.buffer_pages {pages}: the per-CPU output buffer is a power of two pages "
                "(1, 2, 4, ... 64 is bpftrace's default); drop the setting for the default."
            )

    @property
    def streaming(self) -> bool:
        return str(self.bcfg.mode) == "stream"

    def planned_argv(self, units: list[Unit]) -> list[str]:
        try:
            binary = self.binary()
        except UsageError:
            binary = str(self.bcfg.binary)
        return [binary, "-f", "json", str(self.program_path)]

    def program(self, units: list[Unit]) -> str:
        """The counting program for these units, scoped as far as the runner allows."""
        rows = []
        for unit in units:
            _check_name(unit.name)
            cgroup = unit.cgroup_path
            if cgroup and not _SAFE_PATH.fullmatch(str(cgroup)):
                raise UsageError(
                    f"unit {unit.name}: cgroup path {cgroup!r} has characters a bpftrace string cannot take"
                )
            rows.append(
                {
                    "name": unit.name,
                    "event": unit.event,
                    "mode": unit.mode,
                    "per_op": unit.target.per_op,
                    "probes": probes_of(unit),
                    "filter": unit.target.filter,
                    "cgroup_path": str(cgroup) if cgroup else None,
                    "pid": int(unit.pid) if unit.pid else None,
                }
            )
        run_id = self.run.run_id
        return render(
            str(self.bcfg.template),
            units=rows,
            tree_depth=TREE_DEPTH,
            run_id=run_id,
            stream=self.streaming,
            stream_prefix=STREAM_PREFIX,
        )

    # -- what the process part asks -------------------------------------------------------

    def argv(self, units: list[Unit]) -> list[str]:
        for unit in units:
            if unit.cgroup_path and not Path(unit.cgroup_path).is_dir():
                raise RunError(
                    f"unit {unit.name}: its cgroup {unit.cgroup_path} does not exist (did the unit exit already?)"
                )
        self.program_path.write_text(self.program(units))
        return self.planned_argv(units)

    def environment(self) -> dict[str, str]:
        env = {ATTACHED: "1"}
        if self.bcfg.buffer_pages is not None:
            env[BUFFER_PAGES_ENV] = str(self.bcfg.buffer_pages)
        return env

    def is_ready(self) -> bool:
        """Attached: bpftrace printed the notice it prints once every probe is attached."""
        for path in (self.log_path, self.out_path):
            try:
                if ATTACHED in path.read_text(errors="replace"):
                    return True
            except FileNotFoundError:
                pass
        return False

    def waiting_for(self) -> str:
        return f"attach its probes within {self.bcfg.ready_timeout} (raise bpftrace.ready_timeout)"

    def stop_signal(self) -> signal.Signals:
        return signal.SIGINT  # bpftrace runs END and prints its maps

    # -- results ------------------------------------------------------------------------

    def parse_output(self) -> BpftraceOutput:
        """Counts by unit (None when bpftrace printed no map), stream lines, lost notices."""
        output = parse([self.out_path, self.log_path])
        if output.counts is None and self.process.returncode == 0:
            output.counts = {}  # a clean exit prints no map when nothing was counted
        return output

    def report(self, units: list[Unit]) -> TracerReport:
        output = self.parse_output()
        counts = output.counts
        seen = None if counts is None else {u.name: counts.get(u.name, 0) for u in units}
        observed = seen
        metrics: dict[str, float] = {}
        if self.streaming and seen is not None:
            observed = {u.name: output.printed.get(u.name, 0) for u in units}
            metrics["kernel_seen"] = sum(seen.values())
            metrics["undelivered"] = sum(seen.values()) - sum(observed.values())
        report = self.base_report(
            units,
            observed=observed,
            seen=seen if self.streaming else None,
            lost={LOST_COUNTER: output.lost_notices},
            metrics=metrics,
        )
        if counts is None and report.crashed is None and self.process.proc is not None:
            report.crashed = (
                f"bpftrace printed no counts ({exit_text(self.process.returncode)}); "
                f"its log {self.log_path}:\n{self.log_tail()}"
            )
        return report


def probes_of(unit: Unit) -> list[str]:
    """The probes of a unit's target (a comma-separated list in the catalog)."""
    return [p.strip() for p in unit.target.probe.split(",") if p.strip()]


def missing_probe(probe: str) -> str | None:
    """None when the probe exists on this kernel, else why not (checked in tracefs)."""
    kind, _, rest = probe.partition(":")
    events = host.TRACEFS / "events"
    if kind in ("tracepoint", "t"):
        category, _, name = rest.partition(":")
        if not category or not name:
            return f"expected tracepoint:<category>:<name>, got {probe!r}"
        if glob.glob(str(events / category / name)):
            return None
        return f"no {events / category / name} in tracefs"
    if kind in ("rawtracepoint", "rt"):
        name = rest.rpartition(":")[2]
        if name and glob.glob(str(events / "*" / name)):
            return None
        return f"no tracepoint named {name!r} under {events}"
    if kind in ("kprobe", "k", "kretprobe", "kr"):
        missing = host.check_kernel_feature("kprobes")
        if missing:
            return missing
        functions = host.TRACEFS / "available_filter_functions"
        try:
            with open(functions) as f:
                if any(line.split(" ", 1)[0].strip() == rest for line in f):
                    return None
        except OSError as exc:
            return f"cannot read {functions}: {exc.strerror}"
        return f"{rest} is not in {functions}"
    return f"evt checks tracepoint, rawtracepoint and kprobe probes only, got {kind!r}"


def _check_name(name: str) -> None:
    if not _SAFE_NAME.fullmatch(name):
        raise UsageError(f"unit name {name!r} cannot be a bpftrace map key: use letters, digits, _ . -")

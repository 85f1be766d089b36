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

Files in <run_dir>/tracer/: bpftrace.bt (the program as run), bpftrace.log (stderr),
bpftrace.out (stdout: JSON lines).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

from evt import host
from evt.errors import RunError, UsageError
from evt.stress.plan import Unit
from evt.procs import ManagedProcess, Stop, Usage, command_version, exit_text, log_tail
from evt.config.templating import render
from evt.tracers.base import Durations, Tracer, TracerReport
from evt.tracers.bpftrace.output import STREAM_PREFIX, BpftraceOutput, parse

log = logging.getLogger(__name__)

ATTACHED = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
TREE_DEPTH = 8  # ancestors a pid-tree scope looks through (worker, sh, timeout, nc, ...)
LOST_COUNTER = "bpftrace_lost_events"
MODES = ("count", "stream")
BUFFER_PAGES_ENV = "BPFTRACE_PERF_RB_PAGES"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./:@+-]*")
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


class BpftraceTracer(Tracer):
    name = "bpftrace"

    def __init__(self, cfg, run_dir: Path):
        super().__init__(cfg, run_dir)
        self.bcfg = cfg.bpftrace
        self.durations = Durations.parse(self.bcfg, "bpftrace")
        self.dir = self.run_dir / "tracer"
        self.program_path = self.dir / "bpftrace.bt"
        self.log_path = self.dir / "bpftrace.log"
        self.out_path = self.dir / "bpftrace.out"
        self.proc: ManagedProcess | None = None
        self.crashed: str | None = None
        self.bpf_stats_on = False  # the kernel accounts BPF run time during this run
        self.bpf_stats_restore: str | None = None  # kernel.bpf_stats_enabled before we set it
        self.bpf_run: dict[str, float] = {}  # in-kernel run time of bpftrace's programs
        self._argv: list[str] = []

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

    def usage(self) -> Usage | None:
        return self.proc.sampler.usage() if self.proc is not None else None

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

    def command(self, units: list[Unit]) -> list[str]:
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
                raise UsageError(f"unit {unit.name}: cgroup path {cgroup!r} has characters a bpftrace string cannot take")
            rows.append({
                "name": unit.name, "event": unit.event, "mode": unit.mode, "per_op": unit.target.per_op,
                "probes": probes_of(unit), "filter": unit.target.filter,
                "cgroup_path": str(cgroup) if cgroup else None, "pid": int(unit.pid) if unit.pid else None,
            })
        run_id = self.cfg.run_id or self.run_dir.name
        return render(str(self.bcfg.template), units=rows, tree_depth=TREE_DEPTH, run_id=run_id,
                      stream=self.streaming, stream_prefix=STREAM_PREFIX)

    # -- running ------------------------------------------------------------------------

    def start(self, units: list[Unit]) -> None:
        for unit in units:
            if unit.cgroup_path and not Path(unit.cgroup_path).is_dir():
                raise RunError(f"unit {unit.name}: its cgroup {unit.cgroup_path} does not exist (did the unit exit already?)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.program_path.write_text(self.program(units))
        self._argv = self.command(units)
        env = dict(os.environ, **{ATTACHED: "1"})
        if self.bcfg.buffer_pages is not None:
            env[BUFFER_PAGES_ENV] = str(self.bcfg.buffer_pages)
        self._enable_bpf_stats()
        log.info("Starting bpftrace: %s", shlex.join(self._argv))
        try:
            self.proc = ManagedProcess(self._argv, self.log_path, stdout_path=self.out_path, env=env)
        except OSError as exc:
            self._restore_bpf_stats()
            raise RunError(f"could not start bpftrace ({self._argv[0]}): {exc}") from exc
        log.info("bpftrace started with PID: %d", self.proc.pid)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    # The BPF programs run in the kernel, in the context of the traced processes: their
    # cost is not in bpftrace's own CPU time. With kernel.bpf_stats_enabled the kernel
    # accounts each program's run time and run count (shown in /proc/<pid>/fdinfo of
    # every bpf-prog fd bpftrace holds), which drain() reads before bpftrace exits.

    def _enable_bpf_stats(self) -> None:
        try:
            old = BPF_STATS.read_text().strip()
            if old != "1":
                BPF_STATS.write_text("1")
                self.bpf_stats_restore = old
            self.bpf_stats_on = True
        except OSError:
            pass  # not root, or an old kernel: the in-kernel cost stays unknown

    def _restore_bpf_stats(self) -> None:
        if self.bpf_stats_restore is not None:
            try:
                BPF_STATS.write_text(self.bpf_stats_restore)
            except OSError:
                pass
            self.bpf_stats_restore = None

    def drain(self) -> None:
        """Read the in-kernel run time of bpftrace's programs while they still exist."""
        if self.proc is None or not self.proc.running or not self.bpf_stats_on:
            return
        run_time_ns = run_cnt = programs = 0
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        try:
            fds = [fd for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:bpf-prog"]
        except OSError:
            return
        for fd in fds:
            try:
                info = dict(line.split(":", 1) for line in (fd_dir.parent / "fdinfo" / fd.name).read_text().splitlines() if ":" in line)
            except OSError:
                continue
            if "run_time_ns" in info:
                programs += 1
                run_time_ns += int(info["run_time_ns"])
                run_cnt += int(info["run_cnt"])
        if programs:
            self.bpf_run = {"bpf_programs": programs, "bpf_run_time_s": run_time_ns / 1e9, "bpf_run_cnt": run_cnt}

    def wait_ready(self) -> None:
        """Poll until bpftrace reports every probe attached, it exits, or the deadline passes."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + self.durations.ready_timeout_s
        while True:
            if self._attached():
                break
            if not self.proc.running:
                raise RunError(
                    f"bpftrace {exit_text(self.proc.returncode)} before attaching its probes "
                    f"(program {self.program_path}); its log:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise RunError(
                    f"bpftrace did not attach its probes within {self.bcfg.ready_timeout} "
                    f"(raise bpftrace.ready_timeout); its log:\n{self.log_tail()}"
                )
            time.sleep(0.02)
        log.info("bpftrace is ready (PID: %d): every probe attached", self.proc.pid)
        if self.durations.init_cooldown_s:
            time.sleep(self.durations.init_cooldown_s)  # a configured settling time on top of readiness, default 0s

    def _attached(self) -> bool:
        for path in (self.log_path, self.out_path):
            try:
                if ATTACHED in path.read_text(errors="replace"):
                    return True
            except FileNotFoundError:
                pass
        return False

    def poll(self) -> str | None:
        if self.crashed is None and self.proc is not None and self.proc.poll():
            self.crashed = f"bpftrace {exit_text(self.proc.returncode)} while the units ran; its log:\n{self.log_tail()}"
        return self.crashed

    def stop(self) -> None:
        """SIGINT (bpftrace runs END and prints its maps), up to stop_timeout, then SIGKILL."""
        if self.proc is None or self.proc.stopping:
            return
        self.poll()  # if it died on its own: keep why
        if self.proc.running:
            log.info("Stopping bpftrace (PID: %d) with SIGINT...", self.proc.pid)
        outcome = self.proc.stop(self.durations.stop_timeout_s, signal.SIGINT, before_kill=self._say_kill,
                                 resignal_when_idle=True)
        if outcome in (Stop.KILLED, Stop.STUCK):
            self.crashed = self.crashed or f"bpftrace did not exit within {self.bcfg.stop_timeout} of SIGINT and was killed"
        elif outcome is Stop.SIGNALLED:
            log.info("bpftrace stopped (exit code %s)", self.proc.returncode)
        self._restore_bpf_stats()

    def _say_kill(self) -> None:
        log.warning("bpftrace did not stop within %s, sending SIGKILL...", self.bcfg.stop_timeout)

    # -- results ------------------------------------------------------------------------

    def parse_output(self) -> BpftraceOutput:
        """Counts by unit (None when bpftrace printed no map), stream lines, lost notices."""
        output = parse([self.out_path, self.log_path])
        if output.counts is None and self.proc is not None and self.proc.returncode == 0:
            output.counts = {}  # a clean exit prints no map when nothing was counted
        return output

    def report(self, units: list[Unit]) -> TracerReport:
        output = self.parse_output()
        counts = output.counts
        seen = None if counts is None else {u.name: counts.get(u.name, 0) for u in units}
        observed = seen
        metrics = dict(self.bpf_run)
        if self.streaming and seen is not None:
            observed = {u.name: output.printed.get(u.name, 0) for u in units}
            metrics["kernel_seen"] = sum(seen.values())
            metrics["undelivered"] = sum(seen.values()) - sum(observed.values())
        crashed = self.crashed
        if counts is None and crashed is None and self.proc is not None:
            crashed = f"bpftrace printed no counts (exit code {self.proc.returncode}); its log:\n{self.log_tail()}"
        sampler = self.proc.sampler if self.proc is not None else None
        return TracerReport(
            tracer=self.name,
            command=self._argv or self.command(units),
            observed=observed,
            seen=seen if self.streaming else None,
            lost={LOST_COUNTER: output.lost_notices},
            cpu_s=sampler.cpu_s if sampler else None,
            peak_rss_bytes=sampler.peak_rss if sampler else None,
            wall_s=sampler.wall_s if sampler else None,
            resources=sampler.resources() if sampler else None,
            metrics=metrics,
            log_path=str(self.log_path),
            crashed=crashed,
        )

    def log_tail(self) -> str:
        """The end of bpftrace's stderr, indented, for an error message."""
        if not self.log_path.exists():
            return "    (no log)"
        lines = log_tail(self.log_path, skip=ATTACHED)
        return "\n".join(f"    {line}" for line in lines) or "    (empty log)"


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


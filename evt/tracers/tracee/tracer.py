"""TraceeTracer: Tracee as the tracer under test, whoever starts it.

What does not depend on who starts Tracee lives here: the command line and its record,
the units it is scoped to, the metric scrapes at both ends of the run and their deltas,
the per-unit counts of its JSON output, the report. Starting, readiness and stopping are
the lifecycle's (auto.py or manual.py, chosen by tracee.auto when the tracer is built).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evt.config.spec import parse_seconds
from evt.errors import RunError, UsageError
from evt.procs import Usage, command_version
from evt.stress.plan import RunContext, Unit
from evt.tracers.base import Tracer, TracerReport
from evt.tracers.tracee import prometheus as prom
from evt.tracers.tracee.auto import AutoLifecycle
from evt.tracers.tracee.command import (
    base_url,
    output_syntax,
    parse_output,
    render_command,
    resolve_binary,
    template_location,
    tracee_event,
    write_command,
)
from evt.tracers.tracee.counting import UnitWatch, count_events, write_counts
from evt.tracers.tracee.flavour import detect
from evt.tracers.tracee.lifecycle import Lifecycle, TraceeDurations
from evt.tracers.tracee.manual import ManualLifecycle
from evt.tracers.tracee.metrics import TraceeServer, endpoints, pyroscope_notice
from evt.tracers.tracee.profiles import PprofCollector

log = logging.getLogger(__name__)


class TraceeTracer(Tracer):
    name = "tracee"

    def __init__(self, run: RunContext, name: str, settings):
        """`settings`: the tracee section (conf/tracer/tracee.yaml: ${tracee})."""
        super().__init__(run, name)
        self.tcfg = settings
        self.durations = TraceeDurations.parse(self.tcfg, "tracee")
        self.dir = self.run_dir / "tracer"
        self.flavour = detect(str(self.tcfg.flavour), resolve_binary(str(self.tcfg.binary)))
        self.output = parse_output(self.tcfg.output, output_syntax(self.tcfg, self.flavour), self.run_dir)
        self.server = TraceeServer(base_url(self.tcfg.http_address), self.dir)
        self.lifecycle: Lifecycle = (
            AutoLifecycle(self.tcfg, self.durations, self.server, self.dir / "tracee.log", self.flavour)
            if self.tcfg.auto
            else ManualLifecycle(self.tcfg, self.run_dir, self.flavour, run.runner)
        )
        self.argv: list[str] = []
        self.watch = UnitWatch()
        self._drained = False
        self.bpf_run: dict[str, float] = {}  # the in-kernel cost of its BPF programs
        self.metrics_interval_s = parse_seconds(str(self.tcfg.metrics_interval), "tracee.metrics_interval")
        self.pprof_slice_s = parse_seconds(str(self.tcfg.pprof_slice), "tracee.pprof_slice")
        self.pprof: PprofCollector | None = None

    # -- plan

    def outside_evt(self) -> bool:
        return not self.tcfg.auto  # the user's Tracee, not evt's child

    def check(self, units: list[Unit]) -> None:
        template_location(str(self.tcfg.template))
        self.lifecycle.check()

    def command(self, units: list[Unit]) -> list[str]:
        return render_command(
            self.tcfg, units, self.run_dir, self.flavour, resolve_binary(str(self.tcfg.binary)), runner=self.run.runner
        )

    def pids(self) -> list[int]:
        return self.lifecycle.pids()

    def usage(self) -> Usage | None:
        sampler = self.lifecycle.sampler  # ours (auto) or the user's Tracee, found by pid (manual)
        return sampler.usage() if sampler is not None else None

    def version(self) -> str | None:
        # `tracee version` prints "Tracee version: v0.22.0" (cmd/tracee/cmd/version.go)
        return command_version([resolve_binary(str(self.tcfg.binary)), "version"], prefix="Tracee version:")

    # -- hooks

    def start_title(self) -> str:
        return "Configuring & Starting Tracee"  # Go evt's Phase 3 header, in both modes

    def manual_instructions(self, units: list[Unit]) -> list[str]:
        return self.lifecycle.instructions(units)

    def manual_prompt(self) -> str | None:
        return self.lifecycle.prompt()

    def endpoints(self) -> list[str]:
        return endpoints(self.tcfg)

    # -- lifecycle

    def start(self, units: list[Unit]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        missing = [u.name for u in units if not u.container_id and not u.pid]
        if missing:
            raise RunError(
                f"Tracee cannot be scoped before every unit exists; no container id or pid for: {', '.join(missing)}"
            )
        self.argv = self.command(units)
        write_command(self.dir, self.tcfg, self.argv, self.output, self.flavour)
        self.watch.start(units, follow_trees=bool(self.output.json_file))
        if self.tcfg.pyroscope:
            log.info("%s", pyroscope_notice())
        self.lifecycle.start(self.argv, self.output.json_file)

    def wait_ready(self) -> None:
        self.lifecycle.wait_ready()
        if self.tcfg.metrics:
            self.server.scrape("start")
            self.server.follow(self.metrics_interval_s)
        if self.tcfg.pprof and self.lifecycle.alive():
            self.pprof = PprofCollector(
                self.server.url, self.dir / "pprof", self.pprof_slice_s, int(self.tcfg.pprof_heap_every)
            ).start()

    def _stop_recording(self) -> None:
        """The time series and profiles end while Tracee still serves them (before SIGTERM)."""
        self.server.unfollow()
        if self.pprof is not None:
            self.pprof.stop()

    def poll(self) -> str | None:
        return self.lifecycle.poll()

    def drain(self) -> None:
        if self._drained:
            return
        self._drained = True
        self.watch.stop()
        if not self.lifecycle.ready:
            return
        if self.durations.drain_s > 0:
            self.lifecycle.wait_alive(self.durations.drain_s)
        self.bpf_run = self.lifecycle.bpf_cost()
        if self.tcfg.metrics and self.lifecycle.alive():
            self.server.scrape("end")  # before SIGTERM: Tracee's HTTP server closes at once then
        self._stop_recording()

    def stop(self) -> None:
        if self.lifecycle.stopped:
            return
        self.watch.stop()
        self._stop_recording()
        self.lifecycle.stop()
        if self.argv:  # started: what became of it
            self._write_lifecycle()

    def _write_lifecycle(self) -> None:
        record = dict(self.lifecycle.record(), scrape_errors=self.server.scrapes.errors)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "lifecycle.json").write_text(json.dumps(record, indent=2) + "\n")
        except OSError as exc:  # pragma: no cover - a full or vanished run dir
            log.warning("could not write %s: %s", self.dir / "lifecycle.json", exc)

    # -- results

    def report(self, units: list[Unit]) -> TracerReport:
        delta = self.server.scrapes.deltas()
        command = list(self.argv)
        if not command:
            try:
                command = self.command(units)
            except (UsageError, RunError):
                command = []
        sampler = self.lifecycle.sampler
        rep = TracerReport(
            tracer=self.name,
            command=command,
            observed=self._observed(units),
            lost=prom.lost(delta),
            metrics=dict(delta, **self.bpf_run),
            log_path=str(self.lifecycle.log_path) if self.lifecycle.log_path else None,
            crashed=self.lifecycle.crashed,
            cpu_s=sampler.cpu_s if sampler else None,
            peak_rss_bytes=sampler.peak_rss if sampler else None,
            wall_s=sampler.wall_s if sampler else None,
            resources=self._resources(sampler),
            per_unit=self._submits(units),
        )
        if delta:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "metrics-deltas.json").write_text(json.dumps(delta, indent=2, sort_keys=True) + "\n")
        return rep

    def _resources(self, sampler) -> dict[str, object] | None:
        """The perf gate's summary: the resource series' figures, and the profiles kept."""
        figures = sampler.resources() if sampler else None
        if figures is None:
            return None
        return dict(figures, **(self.pprof.record() if self.pprof is not None else {}))

    def _submits(self, units: list[Unit]) -> dict[str, dict[str, int]] | None:
        """Per unit, the kernel's submit attempts and failures for its Tracee event (a
        METRICS=1 build); a unit whose event has no series (a syscall event) gets none."""
        per_event = self.server.scrapes.submit_deltas()
        if per_event is None:
            return None
        return {u.name: per_event[tracee_event(u)] for u in units if tracee_event(u) in per_event}

    def _observed(self, units: list[Unit]) -> dict[str, int] | None:
        """Per-unit counts of Tracee's JSON output; None without one (its counters only)."""
        path = self.output.json_file
        if not path:
            return None
        if not Path(path).is_file():
            log.warning("Warning: Tracee's JSON output %s does not exist; no per-unit counts", path)
            return None
        scopes = self.watch.scopes(units)
        counts = count_events(path, scopes)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_counts(counts, self.dir / "event-counts.json")
        return counts.observed(scopes)

"""One `evt stress` run as an object with named phases, independent of where the units
run (the runner) and what watches them (the tracer).

prepare (the composed config becomes a typed run request, evt/stress/request.py; then
validate everything, compose plan, runner and tracer; starts nothing)
-> [dry run: print the plan, stop] -> PREREQUISITES -> START_UNITS (all blocked at the
start barrier) -> START_TRACER (scoped to them, confirmed ready) -> RELEASE (the barrier,
for all at once) -> MONITOR (live progress) -> COOLDOWN -> COLLECT (tracer drained,
stopped, reported) -> CLEANUP (always: normal end, errors, Ctrl+C, SIGTERM) -> WRITE.

An error in a thread that serves the run (evt/faults.py) interrupts whichever phase runs
and becomes the run's failure, named; cleanup follows as after any error. What happened is
recorded in the run's Outcome (evt/stress/outcome.py), which derives its status and exit code.

Every message goes through the `evt.stress.session` logger (terminal and evt.log, evt/cli/runlog.py).
"""

from __future__ import annotations

import enum
import importlib
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from rich.live import Live

from evt import faults
from evt.cli.runlog import make_console
from evt.errors import RunError, UsageError
from evt.plugins import make_runner, make_tracer
from evt.results import provenance
from evt.runners.base import Runner
from evt.stress import runstate
from evt.stress.limits import check_host_fits
from evt.stress.outcome import Outcome
from evt.stress.plan import Plan
from evt.stress.planner import build_plan, print_plan
from evt.stress.progress import ProgressDisplay
from evt.stress.request import RunRequest
from evt.stress.signals import Interrupted, raise_interrupted, still_cleaning_up
from evt.stress.timeseries import TimeSeries
from evt.tracers.base import Tracer, TracerReport
from evt.workload import lines

log = logging.getLogger("evt.stress.session")


class Phase(enum.Enum):
    """The phases of a run, in order; the value is how messages name it."""

    PREREQUISITES = "prerequisites"
    START_UNITS = "start"
    START_TRACER = "tracer"
    RELEASE = "release"
    MONITOR = "monitoring"
    COOLDOWN = "cooldown"
    COLLECT = "collect"
    CLEANUP = "cleanup"
    WRITE = "write"


def wait_for_enter(prompt: str) -> None:
    log.info("%s", prompt)
    try:
        line = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    except (OSError, ValueError):
        line = ""
    if line == "":
        log.warning("(no input: continuing)")


class StressSession:
    """One run: its plan, runner and tracer, composed once, and what happened to them."""

    def __init__(self, request: RunRequest, run_dir: Path, plan: Plan, runner: Runner, tracer: Tracer):
        self.request, self.settings = request, request.settings
        self.run_dir, self.plan = Path(run_dir), plan
        self.runner, self.tracer = runner, tracer
        self.phase = Phase.PREREQUISITES
        self.outcome = Outcome()
        self.report: TracerReport | None = None
        self.extra: dict[str, object] = {"run_dir": str(self.run_dir)}
        self.series: TimeSeries | None = None  # samples from the release to the units' end
        self._provenance: provenance.Recording | None = None  # recorded while the units start
        self._tracer_stopped = False
        self._tracer_ready = False
        self.described = runner.describe()
        self._t_command = time.monotonic()

    @classmethod
    def prepare(cls, cfg, run_dir: Path) -> StressSession:
        """The entrance: the composed config becomes a run request (validated, typed), then
        the session is prepared for it; starts nothing."""
        return cls.for_request(RunRequest.from_config(cfg), run_dir)

    @classmethod
    def for_request(cls, request: RunRequest, run_dir: Path) -> StressSession:
        """Check the request against the host, the runner and the tracer and compose the
        plan, runner and tracer; starts nothing."""
        specs = request.specs
        check_host_fits(workers=sum(spec.instances for spec in specs), units=len(specs))
        run = request.context(run_dir)
        runner = make_runner(request.runner, run)
        plan = build_plan(request, runner)
        tracer = make_tracer(request.tracer, run)
        tracer.check(plan.units)
        plan.tracer_command = tracer.command(plan.units)
        if not request.settings.dry_run:  # a dry run needs no engine and no image
            runner.check(plan.units)
        return cls(request, run_dir, plan, runner, tracer)

    @property
    def units(self):
        return self.plan.units

    # -- the run ------------------------------------------------------------------------

    def say(self, lines: list[str]) -> None:
        for line in lines:
            log.info("%s", line)

    def run(self) -> int:
        """Run (or, with --dry-run, print) the plan; the exit code (0, 1, 130/143)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.say(lines.start(self.plan, self.described.image))
        if self.settings.dry_run:
            title = self.tracer.start_title().replace("Configuring & Starting", "Configure & Start")
            print_plan(self.plan, lines.dry_run(self.plan, self.described, title))
            self._write_plan()
            return 0
        self._t_command = time.monotonic()
        self.extra["started_at"] = time.time()
        self._provenance = provenance.Recording(self.request.scenarios, self.request.tracer.name, self.tracer.version)
        previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
        runstate.begin(self.plan.run_id, str(self.run_dir))
        watch = faults.watch().__enter__()
        try:
            try:
                for phase, step in self._steps():
                    self.phase = phase
                    step()
            finally:  # by whatever route the phases end: a thread's fault no longer interrupts
                watch.pause()
            self._fault(faults.first())  # one that a step's own error handling caught
        except Interrupted as exc:
            self._interrupted(exc.signame)
        except faults.ThreadFault as exc:
            self._fault(exc.message)
        except (RunError, UsageError) as exc:
            self.outcome.fail(str(exc))
            log.error("Error: %s", exc)
        except Exception as exc:  # recorded in summary.json, then reported by the caller (evt/cli/crash.py)
            self.outcome.fail(f"unexpected {type(exc).__name__}: {exc}")
            raise
        finally:
            watch.__exit__()
            for sig in previous:  # cleanup and the results must complete: a second signal only says so
                signal.signal(sig, still_cleaning_up)
            try:
                self.phase = Phase.CLEANUP
                self.cleanup()
                self.phase = Phase.WRITE
                self._write_results()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return self.outcome.exit_code

    def _write_results(self) -> None:
        try:
            self.write()
        except OSError as exc:  # a full or read-only filesystem: the run itself is cleaned up already
            self.outcome.unwritten()
            log.error(
                "Error: cannot write the results in %s: %s; free space there or choose another directory "
                "with hydra.run.dir=DIR.",
                self.run_dir,
                exc.strerror or exc,
            )

    def _steps(self):
        return [
            (Phase.PREREQUISITES, self.prerequisites),
            (Phase.START_UNITS, self.start_units),
            (Phase.START_TRACER, self.start_tracer),
            (Phase.RELEASE, self.release),
            (Phase.MONITOR, self.monitor),
            (Phase.COOLDOWN, self.cooldown),
            (Phase.COLLECT, self.collect),
        ]

    def _fault(self, message: str | None) -> None:
        """A thread that served the run failed: the run fails with its error."""
        if message is None or self.outcome.failure is not None:
            return
        self.outcome.fail(message)
        log.error("Error: %s (during %s; stopping the run)", message, self.phase.value)

    def _interrupted(self, signame: str) -> None:
        self.outcome.interrupted(signame)
        if self.phase in (Phase.RELEASE, Phase.MONITOR):
            log.warning("Monitoring interrupted (containers will be cleaned up)")
        else:
            log.warning("Interrupted by %s during %s (cleaning up)", signame, self.phase.value)

    # -- the phases ---------------------------------------------------------------------

    def prerequisites(self) -> None:
        """Checked in prepare(); the run records that they held."""
        log.info(
            "Prerequisites ok (%s units, %s ops, run %s)", len(self.units), f"{self.plan.total_ops:,}", self.plan.run_id
        )

    def start_units(self) -> None:
        self.say(lines.header(f"Phase 1: Starting {self.described.title}"))
        log.info("Starting %s units (%s)", len(self.units), self.runner.name)
        self.runner.start(self.units)
        if self.runner.notice:
            log.warning("%s", self.runner.notice)
        early = self.runner.wait_until_waiting(self.settings.ready_timeout.seconds)
        self.extra["time_to_waiting_s"] = took = time.monotonic() - self._t_command
        for state in early:
            log.error(
                "%s",
                "\n".join(
                    [f"unit {state.name} exited before the start (exit code {state.exit_code}); last log lines:"]
                    + [f"  {line}" for line in state.tail()]
                ),
            )
        waiting = [u for u in self.units if u.name not in {s.name for s in early}]
        self.say(lines.units_started(waiting, self.described))
        log.info("%s of %s units waiting at the start barrier after %.2fs", len(waiting), len(self.units), took)

    def start_tracer(self) -> None:
        tracer = self.tracer
        self.say(lines.header(f"Phase 3: {tracer.start_title()}"))
        tracer.start(self.units)
        for pid in tracer.pids():
            runstate.add_process(self.plan.run_id, pid, f"tracer:{tracer.name}")
        for line in tracer.manual_instructions(self.units):
            log.info("%s", line)
        prompt = tracer.manual_prompt()
        if prompt is not None:
            wait_for_enter(prompt)
        tracer.wait_ready()
        self._tracer_ready = True
        log.info("Tracer %s ready", tracer.name)
        if self.settings.wait_before_trigger:
            self.say(lines.header("Waiting Before Triggering"))
            for line in tracer.endpoints():
                log.info("%s", line)
            wait_for_enter("Press ENTER to start triggering events...")

    def release(self) -> None:
        if self._provenance is not None:  # recorded while the units started: none of it in the measured window
            self.extra.update(self._provenance.fields())
        self.say(lines.release(self.plan, self.described))
        self.extra["released_ns"] = self.runner.release()
        interval_s = self.settings.progress_interval.seconds
        states = self.runner.states
        self.series = TimeSeries(
            [u.name for u in self.units],
            lambda: {n: st.done_ops for n, st in states.items()},
            self.tracer.usage,
            interval_s,
        ).start()
        self.say(lines.released(self.units, self.described))
        # pandas takes half a second of CPU to import: do it while the units run, not
        # after them, and not in the milliseconds in which they all start
        warm_up = threading.Timer(0.1, importlib.import_module, args=("evt.results.writers",))
        warm_up.daemon = True
        warm_up.start()

    def monitor(self) -> None:
        self.say(lines.monitoring(self.units, self.described))
        console = make_console()
        progress = ProgressDisplay(self.runner, self.plan)
        timeout_s = self.settings.timeout.seconds
        with Live(progress.table(), console=console, refresh_per_second=4, transient=not console.is_terminal) as live:
            finished = self.runner.wait_until_done(timeout_s, lambda: self._tick(live, progress))
        assert self.series is not None  # started with the release, before the units are followed
        self.series.stop()  # the measured window ends with the units
        if not finished:
            self.outcome.timeout(f"run timed out after {self.settings.timeout.text} (stress.timeout)")
        for number, unit in enumerate(self.units, 1):
            state = self.runner.states[unit.name]
            log.info("%s", lines.completed(number, len(self.units), unit, state.exit_code, self.described))
            if state.exit_code not in (0, None) and state.waiting_since is not None:
                log.error(
                    "%s",
                    "\n".join(
                        [f"unit {unit.name} failed; last log lines:", "  Container logs:"]
                        + [f"    {line}" for line in state.tail()]
                    ),
                )
        if finished:
            log.info("All %s completed", self.described.plural)
        failed_units = [u.name for u in self.units if self.runner.states[u.name].exit_code != 0]
        if failed_units:
            self.outcome.unit_failures(f"units failed: {', '.join(failed_units)}")

    def _tick(self, live: Live, progress: ProgressDisplay) -> None:
        if self.outcome.crashed is None:
            crashed = self.tracer.poll()
            if crashed:
                self.outcome.tracer_crashed(crashed)
                log.error("tracer %s died mid-run: %s", self.tracer.name, crashed)
        live.update(progress.table())

    def cooldown(self) -> None:
        cooldown = self.settings.stress_end_cooldown.seconds
        if cooldown:
            self.say(lines.cooldown(int(cooldown * 1e9)))
            time.sleep(cooldown)

    def collect(self) -> None:
        self.tracer.drain()
        self._stop_tracer()
        self.report = self.tracer.report(self.units)
        if self.outcome.crashed and not self.report.crashed:
            self.report.crashed = self.outcome.crashed
        if self.report.crashed:
            self.outcome.tracer_crashed(self.report.crashed)
        self.outcome.tracer_collected()  # partial still if units were stopped (timed out)

    def _stop_tracer(self) -> None:
        """The one place the tracer is stopped (collect, or cleanup when collect never ran)."""
        if self._tracer_stopped:
            return
        self._tracer_stopped = True
        self.tracer.stop()

    def cleanup(self) -> None:
        """Stop the tracer and remove every unit; runs whatever happened before."""
        try:
            self._stop_tracer()
        except Exception as exc:  # keep cleaning up
            log.error("stopping tracer: %s", exc)
        if self.report is None:
            try:
                self.report = self.tracer.report(self.units)
            except Exception:  # a tracer that never started may have nothing to report
                self.report = None
        if self.series is not None:
            self.series.stop()
        if self.report is not None and not self._tracer_ready:
            self.report.crashed = None  # stopped before it was ready (interrupted, failed): no counts, no crash
        self.say(lines.cleanup(self.units, self.described))
        try:
            self.runner.cleanup()
        except Exception as exc:  # e.g. the engine went away mid-run: say what is left and how to remove it
            self.outcome.cleanup_failure(f"units not removed: {exc}")
            log.error(
                "Error: could not remove the run's units (%s); once that is fixed, "
                "`evt cleanup --run-id %s` removes what is left.",
                " ".join(str(exc).split()),
                self.plan.run_id,
            )
            return  # the run's record stays for `evt cleanup`
        runstate.finish(self.plan.run_id)

    def write(self) -> None:
        from evt.results import writers as results

        if self._provenance is not None:
            self.extra.update(self._provenance.fields())
        outcome = self.outcome
        self.extra.update(status=outcome.status, partial=outcome.partial, failure=outcome.failure)
        self.extra["wall_s"] = time.monotonic() - self._t_command
        unit_results = self.runner.unit_results()
        workers = results.workers_frame(self.plan, unit_results)
        scenarios = self.extra["scenario"]  # the scenario names provenance recorded
        scenario = "+".join(scenarios) if isinstance(scenarios, list) else ""
        events = results.events_frame(self.plan, unit_results, self.report, scenario=scenario or "custom")
        window = self.series.window() if self.series is not None else None
        tracer_table = results.tracer_frame(self.plan, self.report, window)
        summary = results.summarize(self.plan, workers, events, self.report, unit_results, self.extra, window=window)
        if self.series is not None:
            self.series.write(self.run_dir / "timeseries.csv")
        max_loss = self.settings.max_loss_pct
        if not results.apply_loss_gate(summary, max_loss) and outcome.exit_code == 0:
            outcome.loss_gate_failed()
            summary.status = outcome.status
            log.error("loss %.2f%% exceeds stress.max_loss_pct=%s", summary.loss_pct, max_loss)
        summary.exit_code = outcome.exit_code
        summary.cpu_outside_evt_s = (float(summary.workers_cpu_s or 0.0) if self.runner.units_outside_evt else 0.0) + (
            (self.report.cpu_s or 0.0) if self.report is not None and self.tracer.outside_evt() else 0.0
        )
        results.write_all(self.run_dir, workers, events, tracer_table, summary)
        self._write_plan()
        results.print_summary(make_console(), events, summary)

    def _write_plan(self) -> None:
        (self.run_dir / "plan.json").write_text(json.dumps(self.plan.as_dict(), indent=2, default=str))

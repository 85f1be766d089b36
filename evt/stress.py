"""The phases of `evt stress`, independent of where units run and which tracer watches.

validate (everything, before anything starts) -> plan -> [dry-run: print the plan, stop]
-> runner starts units, all blocked at the start barrier -> tracer starts scoped to them
and is confirmed ready -> barrier released -> units followed with live progress ->
end cooldown -> tracer drained, stopped, collected -> tables and summary written ->
cleanup, always (normal end, errors, Ctrl+C, SIGTERM).
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import threading
import sys
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from evt import runstate
from evt.catalog import get_trigger
from evt.marker import Marker
from evt.errors import RunError, UsageError
from evt.events import EventBus, console_listener, log_listener
from evt.host import check_kernel_feature
from evt.plan import Plan, Unit
from evt.plugins import make_tracer
from evt.runners import make_runner
from evt.spec import EventSpec, format_duration, parse_duration, parse_seconds
from evt.suite import resolve_specs
from evt.tracers.base import Tracer, TracerReport

log = logging.getLogger("evt.stress")


class Interrupted(BaseException):
    """Ctrl+C or SIGTERM: stop, clean up, record a partial result."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


def _raise_interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def make_console() -> Console:
    """A terminal gets its own width; a pipe or log gets tables wide enough to read."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_plan(cfg, run_id: str, specs: list[EventSpec], barrier_in_unit: str) -> Plan:
    """One unit per event spec: what the runner will start, exactly."""
    units: list[Unit] = []
    seen: dict[str, int] = {}
    signal_timeout = format_duration(parse_duration(cfg.stress.signal_timeout, "stress.signal_timeout"))
    progress = parse_seconds(cfg.stress.progress_interval, "stress.progress_interval")
    for spec in specs:
        trig = get_trigger(spec.event)
        mode = spec.mode or trig.default_mode
        target = trig.mode(mode).target
        for feature in trig.mode_needs(mode).kernel:  # the host kernel serves containers too
            reason = check_kernel_feature(feature)
            if reason:
                raise UsageError(f"event {spec.event!r} cannot run on this host: {reason}. Remove it from the run (`evt list` shows what runs here).")
        seen[spec.event] = seen.get(spec.event, 0) + 1
        name = spec.event if seen[spec.event] == 1 else f"{spec.event}-{seen[spec.event]}"
        unit_run_id = f"{run_id}-{name}"
        marker = Marker.for_run(unit_run_id, spec.event)
        rendered = target.rendered(spec.event, marker)
        argv = [
            "evt", "trigger", "--event", spec.event, "--ops", str(spec.ops), "--sleep", spec.sleep,
            "--parallel", str(spec.instances), "--mode", mode, "--json", "--run-id", unit_run_id,
            "--start-fifo", barrier_in_unit, "--signal-timeout", signal_timeout, "--progress", f"{progress:g}",
        ]
        units.append(Unit(
            name=name, event=spec.event, mode=mode, instances=spec.instances, ops=spec.ops, sleep=spec.sleep,
            marker=marker, target=rendered, argv=argv,
            container_name=f"evt-stress-{name.replace('_', '-')}-{run_id}" if cfg.runner.name == "docker" else None,
        ))
    phases = [
        "1. check prerequisites (runner, image, tracer)",
        f"2. start {len(units)} {'containers' if cfg.runner.name == 'docker' else 'process groups'}, each waiting at the start barrier",
        f"3. start tracer {cfg.tracer.name} scoped to the units and wait until ready",
        "4. release the start barrier for every unit at once",
        f"5. follow the units until done (timeout {cfg.stress.timeout}), then {cfg.stress.stress_end_cooldown} end cooldown",
        "6. stop and collect the tracer, write results, remove every unit",
    ]
    return Plan(run_id=run_id, runner=cfg.runner.name, tracer=cfg.tracer.name, units=units, phases=phases)


def print_plan(console: Console, plan: Plan) -> None:
    def say(text: str) -> None:  # argv and filters are data: no wrapping, no markup
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    say(f"Dry run {plan.run_id}: runner={plan.runner} tracer={plan.tracer}; nothing is started")
    for phase in plan.phases:
        say(f"  {phase}")
    for unit in plan.units:
        where = f"container {unit.container_name}" if unit.container_name else "local process group"
        say(f"  unit {unit.name} ({where}, {unit.instances} x {unit.ops} ops, sleep {unit.sleep}, {unit.mode}): {' '.join(unit.argv)}")
        say(f"    expects {unit.expected_events} events at {unit.target.probe} /{unit.target.filter}/")
    if plan.tracer_command:
        say(f"  tracer: {' '.join(plan.tracer_command)}")
    say(f"  total ops: {plan.total_ops}")


class Progress:
    """The live display: ops done per unit and their rate."""

    def __init__(self, runner, plan: Plan):
        self.runner, self.plan = runner, plan
        self.started = time.monotonic()

    def table(self) -> Table:
        table = Table(title="evt stress: progress")
        for column in ("unit", "done", "total", "%", "ops/s", "state"):
            table.add_column(column, justify="right" if column not in ("unit", "state") else "left")
        elapsed = max(time.monotonic() - self.started, 1e-9)
        for unit in self.plan.units:
            state = self.runner.states[unit.name]
            status = "running" if not state.finished else ("done" if state.exit_code == 0 else f"exit {state.exit_code}")
            rate = (state.result.ops_per_s if state.result else state.done_ops / elapsed)
            table.add_row(unit.name, f"{state.done_ops:,}", f"{unit.total_ops:,}",
                          f"{100 * state.done_ops / max(unit.total_ops, 1):.0f}", f"{rate:,.0f}", status)
        return table


def _wait_for_enter(prompt: str, bus: EventBus) -> None:
    bus.emit("prompt", prompt)
    try:
        line = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    except (OSError, ValueError):
        line = ""
    if line == "":
        bus.emit("notice", "(no input: continuing)")


def prepare(cfg, run_dir: Path, run_id: str) -> tuple[Plan, object, Tracer]:
    """Validate everything and build the plan, runner and tracer; starts nothing."""
    for key in ("timeout", "stress_end_cooldown", "signal_timeout", "progress_interval"):
        parse_duration(cfg.stress[key], f"stress.{key}")
    max_loss = cfg.stress.get("max_loss_pct")
    if max_loss is not None and not 0 <= float(max_loss) <= 100:
        raise UsageError(f"stress.max_loss_pct={max_loss} is not a percentage: give a number from 0 to 100.")
    specs = resolve_specs(cfg)
    runner = make_runner(cfg, run_id, run_dir)
    plan = build_plan(cfg, run_id, specs, runner.barrier_in_unit())
    tracer = make_tracer(cfg, run_dir)
    tracer.check(plan.units)
    plan.tracer_command = tracer.command(plan.units)
    if not cfg.stress.dry_run:  # a dry run needs no engine and no image
        runner.check(plan.units)
    return plan, runner, tracer


def show_tracer_lines() -> None:
    """Tracers say what they do through logging (evt.tracers.*): show it on stdout, as
    their lines always were, besides the log file Hydra's root handler writes.
    (Temporary: the session's logging set-up takes this over.)"""
    logger = logging.getLogger("evt.tracers")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        logger.addHandler(_StdoutHandler())


class _StdoutHandler(logging.Handler):
    """The message alone, to whatever sys.stdout is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stdout, flush=True)
        except Exception:  # a closed stdout must not stop a run
            self.handleError(record)


def validate(cfg, run_dir: Path) -> None:
    show_tracer_lines()
    prepare(cfg, run_dir, cfg.get("run_id") or new_run_id())


def run_stress(cfg, run_dir: Path, console: Console | None = None) -> int:
    """Run one stress job; returns the exit code (0 ok, 1 failed, 130/143 interrupted)."""
    console = console or make_console()
    show_tracer_lines()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    bus = EventBus([console_listener(), log_listener(log)])
    run_id = cfg.get("run_id") or new_run_id()
    plan, runner, tracer = prepare(cfg, run_dir, run_id)
    if cfg.stress.dry_run:
        print_plan(console, plan)
        (run_dir / "plan.json").write_text(json.dumps(plan.as_dict(), indent=2, default=str))
        return 0

    # -- run ---------------------------------------------------------------------------
    t_command = time.monotonic()
    started_at = time.time()
    status, exit_code, partial = "ok", 0, True
    report: TracerReport | None = None
    failure: str | None = None
    extra: dict[str, object] = {"run_dir": str(run_dir)}
    timed_out = False
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
    runstate.begin(run_id, str(run_dir))
    phase = "start"
    try:
        bus.emit("phase", f"Phase 1: prerequisites ok ({len(plan.units)} units, {plan.total_ops:,} ops, run {run_id})")
        bus.emit("phase", f"Phase 2: starting {len(plan.units)} units ({runner.name})")
        runner.start(plan.units)
        if runner.notice:
            bus.emit("notice", runner.notice)
        ready_s = parse_seconds(cfg.runner.ready_timeout, "runner.ready_timeout")
        early = runner.wait_until_waiting(ready_s)
        extra["time_to_waiting_s"] = time.monotonic() - t_command
        for state in early:
            bus.emit("error", "\n".join([f"unit {state.name} exited before the start (exit code {state.exit_code}); last log lines:"]
                                        + [f"  {line}" for line in state.tail()]))
        waiting = len(plan.units) - len(early)
        bus.emit("units_waiting", f"{waiting} of {len(plan.units)} units waiting at the start barrier after {extra['time_to_waiting_s']:.2f}s")

        phase = "tracer"
        bus.emit("phase", f"Phase 3: {tracer.start_title()}")
        tracer.start(plan.units)
        for proc_pid in tracer.pids():
            runstate.add_process(run_id, proc_pid, f"tracer:{tracer.name}")
        for line in tracer.manual_instructions(plan.units):
            bus.emit("manual", line)
        prompt = tracer.manual_prompt()
        if prompt is not None:  # e.g. --auto-tracee=false: the user starts Tracee now
            _wait_for_enter(prompt, bus)
        tracer.wait_ready()
        bus.emit("tracer_ready", f"Tracer {tracer.name} ready")
        if cfg.stress.wait_before_trigger:
            for line in tracer.endpoints():
                bus.emit("endpoint", line)
            _wait_for_enter("Press ENTER to start triggering events...", bus)

        phase = "monitoring"
        bus.emit("phase", f"Phase 4: releasing {len(plan.units)} units at once")
        extra["released_ns"] = runner.release()
        # pandas takes half a second of CPU to import: do it while the units run, not
        # after them, and not in the milliseconds in which they all start
        warm_up = threading.Timer(0.1, importlib.import_module, args=("evt.results",))
        warm_up.daemon = True
        warm_up.start()
        bus.emit("phase", "Phase 5: monitoring units")
        progress = Progress(runner, plan)
        crashed: list[str] = []

        def tick() -> None:
            if not crashed:
                reason = tracer.poll()
                if reason:
                    crashed.append(reason)
                    bus.emit("error", f"tracer {tracer.name} died mid-run: {reason}")
            live.update(progress.table())

        timeout_s = parse_seconds(cfg.stress.timeout, "stress.timeout")
        with Live(progress.table(), console=console, refresh_per_second=4, transient=not console.is_terminal) as live:
            finished = runner.wait_until_done(timeout_s, tick)
        if not finished:
            failure = f"run timed out after {cfg.stress.timeout} (stress.timeout)"
            timed_out = True
        for unit in plan.units:
            state = runner.states[unit.name]
            bus.emit("unit_done", f"[{plan.units.index(unit) + 1}/{len(plan.units)}] unit {unit.name} completed with exit code: {state.exit_code}")
            if state.exit_code not in (0, None) and state.waiting_since is not None:
                bus.emit("error", "\n".join([f"unit {unit.name} failed; last log lines:"] + [f"  {l}" for l in state.tail()]))
        failed_units = [u.name for u in plan.units if runner.states[u.name].exit_code != 0]
        if failed_units and not failure:
            failure = f"units failed: {', '.join(failed_units)}"

        phase = "cooldown"
        cooldown = parse_seconds(cfg.stress.stress_end_cooldown, "stress.stress_end_cooldown")
        if cooldown:
            bus.emit("phase", f"End cooldown {cfg.stress.stress_end_cooldown}")
            time.sleep(cooldown)
        tracer.drain()
        tracer.stop()
        report = tracer.report(plan.units)
        if crashed and not report.crashed:
            report.crashed = crashed[0]
        partial = timed_out  # units still running were stopped: their figures are missing
        if report is not None and report.crashed:
            status = "tracer_crashed"
            exit_code = 1
        if failure:
            status, exit_code = "failed", 1
    except Interrupted as exc:
        status, exit_code, partial = "interrupted", 130 if exc.signame == "SIGINT" else 143, True
        if phase == "monitoring":
            bus.emit("notice", "Monitoring interrupted (containers will be cleaned up)")
        else:
            bus.emit("notice", f"Interrupted by {exc.signame} during {phase} (cleaning up)")
    except (RunError, UsageError) as exc:
        status, exit_code, partial = "failed", 1, True
        failure = str(exc)
        bus.emit("error", f"Error: {exc}")
    finally:
        # Ignore further Ctrl+C / SIGTERM while cleaning up, so cleanup itself completes.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            try:
                tracer.stop()
            except Exception as exc:  # keep cleaning up
                bus.emit("error", f"stopping tracer: {exc}")
            if report is None:
                try:
                    report = tracer.report(plan.units)
                except Exception:
                    report = None
            runner.cleanup()
            runstate.finish(run_id)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    from evt import results

    extra.update(status=status, partial=partial, failure=failure, started_at=started_at,
                 wall_s=time.monotonic() - t_command)
    unit_results = runner.unit_results()
    workers = results.workers_frame(plan, unit_results)
    events = results.events_frame(plan, unit_results, report)
    tracer_table = results.tracer_frame(plan, report)
    summary = results.summarize(plan, workers, events, report, unit_results, extra)
    if not results.apply_loss_gate(summary, cfg.stress.get("max_loss_pct")) and exit_code == 0:
        exit_code = 1
        summary["status"] = status = "loss_exceeded"
        bus.emit("error", f"loss {summary['detection']['loss_pct']:.2f}% exceeds stress.max_loss_pct={cfg.stress.max_loss_pct}")
    summary["exit_code"] = exit_code
    results.write_all(run_dir, workers, events, tracer_table, summary)
    (run_dir / "plan.json").write_text(json.dumps(plan.as_dict(), indent=2, default=str))
    results.print_summary(console, events, summary)
    return exit_code

"""The plan of `evt stress`: what the runner will start, exactly, and how `--dry-run`
prints it. Built from the run request (evt/stress/request.py, its settings already checked),
it checks every event against the host and the runner and starts nothing (evt/stress/session.py
runs it)."""

from __future__ import annotations

import logging
from dataclasses import replace

from evt.config.spec import EventSpec
from evt.errors import UsageError
from evt.host import check_arch, check_kernel_feature
from evt.runners.base import Runner
from evt.stress.plan import Plan, RunnerDescription, Unit
from evt.stress.request import RunRequest
from evt.workload.catalog import get_trigger
from evt.workload.marker import Marker

log = logging.getLogger("evt.stress.plan")


def _check_runs_here(spec: EventSpec, needs) -> None:
    # the host's kernel and machine serve containers too
    for reason in [check_kernel_feature(feature) for feature in needs.kernel] + [check_arch(needs.arch)]:
        if reason:
            raise UsageError(
                f"event {spec.event!r} cannot run on this host: {reason}. "
                "Remove it from the run (`evt list` shows what runs here)."
            )


def _check_unit_capabilities(trig, mode: str, held: tuple[set[str], str] | None) -> None:
    """Refuse a unit whose trigger needs a capability the runner will not give it."""
    reasons = trig.unmet_capabilities(mode, *held) if held is not None else []
    if reasons:
        raise UsageError(
            f"event {trig.event!r} cannot run in its container ({mode} mode): {'; '.join(reasons)}. "
            "Remove it from the run or give the units the capability (`evt list` shows each trigger's needs)."
        )


def build_plan(request: RunRequest, runner: Runner) -> Plan:
    """One unit per event spec of the request, placed by the runner (its barrier path, its names)."""
    units: list[Unit] = []
    seen: dict[str, int] = {}
    run_id, settings = request.run_id, request.settings
    signal_timeout = settings.unit_signal_timeout
    progress = settings.progress_interval.seconds
    barrier = runner.barrier_in_unit()
    for spec in request.specs:
        trig = get_trigger(spec.event)
        spec = replace(spec, event=trig.event)  # an alias (socket_dup) runs its trigger
        mode = spec.mode or trig.default_mode
        target = trig.mode(mode).target
        _check_runs_here(spec, trig.mode_needs(mode))
        _check_unit_capabilities(trig, mode, runner.unit_capabilities())
        seen[spec.event] = seen.get(spec.event, 0) + 1
        name = spec.event if seen[spec.event] == 1 else f"{spec.event}-{seen[spec.event]}"
        unit_run_id = f"{run_id}-{name}"
        marker = Marker.for_run(unit_run_id, spec.event)
        argv = _unit_argv(spec, mode, unit_run_id, barrier, signal_timeout, progress)
        units.append(
            Unit(
                name=name,
                event=spec.event,
                mode=mode,
                instances=spec.instances,
                ops=spec.ops,
                sleep=spec.sleep,
                rate=spec.rate,
                marker=marker,
                target=target.rendered(spec.event, marker),
                argv=argv,
                container_name=runner.unit_container_name(name),
            )
        )
    phases = _phases(request, len(units), runner.describe())
    return Plan(run_id=run_id, runner=request.runner.name, tracer=request.tracer.name, units=units, phases=phases)


def _unit_argv(
    spec: EventSpec, mode: str, unit_run_id: str, barrier: str, signal_timeout: str, progress: float
) -> list[str]:
    """The unit's `evt trigger` command line."""
    return [
        "evt", "trigger", "--event", spec.event, "--ops", str(spec.ops), *spec.pace_args,
        "--parallel", str(spec.instances), "--mode", mode, "--json", "--run-id", unit_run_id,
        "--start-fifo", barrier, "--signal-timeout", signal_timeout, "--progress", f"{progress:g}",
    ]  # fmt: skip


def _phases(request: RunRequest, units: int, described: RunnerDescription) -> list[str]:
    """What the run will do, phase by phase, as the dry run shows it."""
    settings = request.settings
    return [
        "1. check prerequisites (runner, image, tracer)",
        f"2. start {units} {described.plural}, each waiting at the start barrier",
        f"3. start tracer {request.tracer.name} scoped to the units and wait until ready",
        "4. release the start barrier for every unit at once",
        f"5. follow the units until done (timeout {settings.timeout.text}), "
        f"then {settings.stress_end_cooldown.text} end cooldown",
        "6. stop and collect the tracer, write results, remove every unit",
    ]


def print_plan(plan: Plan, headers: dict[str, list[str]]) -> None:
    """The dry run's account of the plan under Go evt's dry-run headers (evt/workload/lines.py),
    through the run's log (terminal and evt.log)."""

    def say(*texts: str) -> None:
        for text in texts:
            log.info("%s", text)

    say(*headers["intro"], f"Dry run {plan.run_id}: runner={plan.runner} tracer={plan.tracer}; nothing is started")
    for phase in plan.phases:
        say(f"  {phase}")
    say(*headers["units"])
    for unit in plan.units:
        where = f"container {unit.container_name}" if unit.container_name else "local process group"
        say(
            f"  unit {unit.name} ({where}, {unit.instances} x {unit.ops} ops, {unit.pace}, {unit.mode}): "
            + " ".join(unit.argv),
            f"    expects {unit.expected_events} events at {unit.target.probe} /{unit.target.filter}/",
        )
    say(*headers["ids"], *headers["tracer"])
    if plan.tracer_command:
        say(f"  tracer: {' '.join(plan.tracer_command)}")
    say(*headers["release"], f"  total ops: {plan.total_ops}", *headers["monitor"])

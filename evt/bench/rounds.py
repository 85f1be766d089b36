"""The stress runs of `evt bench`'s rounds, as run requests (evt/stress/request.py): the
bench's config is turned into a stress request once, and each round's request is that
one with the paced workload, the round's tracer and settings, and its own run id."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from evt.bench.search import BenchSettings
from evt.config.spec import EventSpec, parse_duration, parse_spec
from evt.errors import UsageError
from evt.plugins import PluginOption
from evt.stress import runstate
from evt.stress.request import Duration, RunRequest
from evt.workload.catalog import get_trigger


def workload(specs: tuple[EventSpec, ...]) -> list[EventSpec]:
    """The bench's events, each of them counted exactly and standing exactly for its event
    (a bench measures loss: a lower bound or a stand-in count makes loss a guess)."""
    for spec in specs:
        trig = get_trigger(spec.event)
        mode = spec.mode or trig.default_mode
        target = trig.mode(mode).target
        if not target.exact:
            raise UsageError(
                f"event {spec.event} in mode {mode} is counted as a lower bound, not exactly: a bench needs exact "
                "counts to measure loss; use a native-mode event (see `evt list`), e.g. security_file_open."
            )
        if target.relation != "exact":
            raise UsageError(
                f"event {spec.event} in mode {mode} is counted at a stand-in whose relation to the event is "
                f"{target.relation} ({target.reason.strip()}): a bench needs counts that are exactly the event's to "
                "measure loss; use an event whose relation is exact (see `evt list`), e.g. security_file_open."
            )
    return list(specs)


def paced_specs(specs: list[EventSpec], target_eps: float, duration_s: float) -> list[str]:
    """The workload's specs paced so that, all workers together, they make target_eps
    events/s for duration_s: every worker an equal share."""
    workers = sum(spec.instances for spec in specs)
    paced = []
    for spec in specs:
        per_op = get_trigger(spec.event).mode(spec.mode or get_trigger(spec.event).default_mode).target.per_op
        rate = target_eps / workers / per_op
        ops = max(1, round(rate * duration_s))
        paced.append(str(dataclasses.replace(spec, ops=ops, rate=rate)))
    return paced


@dataclass(frozen=True)
class RoundRequests:
    """The bench as stress requests: its own config's request (workload, settings, tracer)
    and the tracer of the rounds that measure the workload alone."""

    stress: RunRequest
    baseline_tracer: PluginOption

    @classmethod
    def from_config(cls, cfg) -> RoundRequests:
        """The bench's composed config (evt bench's entrance, evt/bench/session.py)."""
        return cls(RunRequest.from_config(cfg), PluginOption.of(cfg.bench.baseline_tracer))

    @property
    def run_id(self) -> str:
        return self.stress.run_id

    def tracer_name(self, baseline: bool) -> str:
        return self.baseline_tracer.name if baseline else self.stress.tracer.name

    def round(
        self, specs: list[EventSpec], target_eps: float, settings: BenchSettings, run_id: str, baseline: bool
    ) -> RunRequest:
        """The stress request of one round: the paced workload, nothing else, this round's tracer."""
        runstate.validate_run_id(run_id)
        cooldown = "0s" if baseline else settings.cooldown
        stress = dataclasses.replace(
            self.stress.settings,
            stress_end_cooldown=Duration(str(cooldown), parse_duration(cooldown, "bench.cooldown")),
            max_loss_pct=None,  # the bench judges loss itself
            dry_run=False,
            wait_before_trigger=False,
        )
        return dataclasses.replace(
            self.stress,
            run_id=run_id,
            # a paced spec is read back as `evt stress -e` reads it: validated, its rate as printed
            specs=tuple(parse_spec(text) for text in paced_specs(specs, target_eps, settings.round_duration_s)),
            settings=stress,
            tracer=self.baseline_tracer if baseline else self.stress.tracer,
            scenarios=(),
        )

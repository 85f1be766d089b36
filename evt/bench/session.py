"""`evt bench`: the highest event rate a tracer sustains with loss at or under a threshold.

A round is two `evt stress` runs (StressSessions, the same code path) of the workload (the
config's events) paced to a total target rate for `bench.round_duration`: one with the
tracer, one without it (`bench.baseline_tracer`, tracer none) for what the workload
reaches alone; which of the two runs first alternates between the rounds of a rate, so
drift in the machine's load hits both alike. The target grows x2 from `bench.start_rate`
until a round is over the limit, then bisects (geometrically) between the last good and
the first bad rate until they are within `bench.precision` percent; then both get
`bench.confirm` more rounds (evt.bench.search.RateSearch). Every run records how much
other work the machine did meanwhile (evt.bench.load).

How a round's verdict is reached: evt.bench.search.verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from evt.bench import report as bench_report
from evt.bench.load import LoadMeter
from evt.bench.rounds import RoundRequests, workload
from evt.bench.search import OK, BenchSettings, RateSearch, verdict
from evt.config.spec import EventSpec
from evt.errors import RunError, UsageError
from evt.results.summary import Summary, TracerCost
from evt.stress.request import RunRequest
from evt.stress.session import StressSession

# -- one round -------------------------------------------------------------------------


@dataclass
class Measured:
    """The figures of one stress run of a round, from its run directory."""

    run_dir: str
    status: str
    target_eps: float
    achieved_eps: float
    expected: int
    observed: int | None
    lost: int | None  # by per-event counts, else the tracer's lost-event counters
    loss_pct: float | None  # None: the tracer tells neither
    tracer_cpu_s: float | None
    tracer_cpu_share: float | None
    tracer_peak_rss_bytes: int | None
    tracer_kernel_s: float | None  # its BPF programs' run time, where the tracer reports it
    workload_cpu_s: float
    # CPU the run used outside evt's process tree (workers in containers, a Tracee evt did
    # not start), as the session recorded it: evt.bench.load counts evt's tree itself
    cpu_outside_evt_s: float = 0.0
    other_cpu_cores: float | None = None  # other work on the machine meanwhile (evt.bench.load)
    load_avg_1m: float | None = None
    window_ns: tuple[int, int] | None = None  # the release to the units' end (time.time_ns)

    @classmethod
    def from_run_dir(cls, run_dir: Path, target_eps: float) -> Measured:
        summary_path = run_dir / "summary.json"
        if not summary_path.exists():
            raise RunError(f"the stress run in {run_dir} wrote no summary.json (see {run_dir}/stress.out)")
        summary = Summary.read(summary_path)
        events = pd.read_csv(run_dir / "events.csv") if (run_dir / "events.csv").exists() else pd.DataFrame()
        expected = int(events["expected"].sum()) if len(events) else 0
        duration = summary.duration_s or 0.0
        detection = summary.detection
        cost = summary.tracer_cost or TracerCost()
        observed = lost = loss_pct = None
        if detection is not None:
            observed, lost, loss_pct = detection.observed, detection.lost, detection.loss_pct
        elif cost.lost:  # no per-event counts: the tracer's own lost-event counters
            lost = int(sum(cost.lost.values()))
            loss_pct = 100.0 * lost / expected if expected else 0.0
        return cls(
            run_dir=str(run_dir),
            status=str(summary.status),
            target_eps=target_eps,
            achieved_eps=expected / duration if duration > 0 else 0.0,
            expected=expected,
            observed=observed,
            lost=lost,
            loss_pct=loss_pct,
            tracer_cpu_s=cost.cpu_s,
            tracer_cpu_share=cost.cpu_share,
            tracer_peak_rss_bytes=cost.peak_rss_bytes,
            tracer_kernel_s=(cost.metrics or {}).get("bpf_run_time_s"),
            workload_cpu_s=float(summary.workers_cpu_s or 0.0),
            cpu_outside_evt_s=float(summary.cpu_outside_evt_s or 0.0),
            window_ns=(int(summary.released_ns), int(summary.released_ns + duration * 1e9))
            if summary.released_ns and duration > 0
            else None,
        )

    def reached(self, reach: float) -> bool:
        return self.achieved_eps >= reach * self.target_eps

    @property
    def workload_cpu_us_per_event(self) -> float | None:
        return 1e6 * self.workload_cpu_s / self.expected if self.expected else None


@dataclass
class Round:
    index: int
    phase: str
    target_eps: float
    traced: Measured
    baseline: Measured
    verdict: str
    repeat: int = 0  # 0: the rate's first round; 1, 2, ...: its confirmation rounds
    traced_first: bool = True

    def row(self) -> dict[str, object]:
        """The round as one row of bench.csv."""
        t, b = self.traced, self.baseline
        events = t.observed if t.observed is not None else t.expected
        others = [m.other_cpu_cores for m in (t, b) if m.other_cpu_cores is not None]
        loads = [m.load_avg_1m for m in (t, b) if m.load_avg_1m is not None]
        return {
            "round": self.index,
            "phase": self.phase,
            "repeat": self.repeat,
            "first": "traced" if self.traced_first else "baseline",
            "target_eps": self.target_eps,
            "achieved_eps": t.achieved_eps,
            "baseline_eps": b.achieved_eps,
            "slowdown_pct": 100.0 * (1 - t.achieved_eps / b.achieved_eps) if b.achieved_eps else None,
            "expected": t.expected,
            "observed": t.observed,
            "lost": t.lost,
            "loss_pct": t.loss_pct,
            "tracer_cpu_s": t.tracer_cpu_s,
            "tracer_cpu_pct": 100.0 * t.tracer_cpu_share if t.tracer_cpu_share is not None else None,
            "cpu_s_per_m_events": 1e6 * t.tracer_cpu_s / events if t.tracer_cpu_s is not None and events else None,
            "tracer_peak_rss_bytes": t.tracer_peak_rss_bytes,
            "kernel_s_per_m_events": 1e6 * t.tracer_kernel_s / events
            if t.tracer_kernel_s is not None and events
            else None,
            "workload_cpu_us_per_event": t.workload_cpu_us_per_event,
            "baseline_workload_cpu_us_per_event": b.workload_cpu_us_per_event,
            "verdict": self.verdict,
            "rate_decision": None,  # filled when the bench ends
            "other_cpu_cores": max(others) if others else None,
            "load_avg_1m": max(loads) if loads else None,
            "status": t.status,
            "run_dir": t.run_dir,
            "baseline_run_dir": b.run_dir,
        }


def run_round(round_request: Callable[[], RunRequest], run_dir: Path) -> int:
    """One stress run, the same session `evt stress` runs, of the request `round_request`
    makes; its exit code. What it prints goes to run_dir/stress.out (its log lines also
    reach the bench's evt.log)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "stress.out", "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            return StressSession.for_request(round_request(), run_dir).run()
        except UsageError as exc:  # checked for the first rate before the bench started
            raise RunError(f"round in {run_dir}: {exc}") from exc


def measure_rate(
    rounds: RoundRequests,
    specs: list[EventSpec],
    settings: BenchSettings,
    target: float,
    index: int,
    phase: str,
    repeat: int,
    rounds_dir: Path,
    live: bench_report.LiveTable,
) -> Round:
    """The round at one target rate: a stress run with the tracer and one without, the
    traced one first in a rate's first round and then every other round."""
    traced_first = repeat % 2 == 0
    measured: dict[bool, Measured] = {}
    for baseline in (False, True) if traced_first else (True, False):
        tag = "b" if baseline else "t"
        live.running(index, target, rounds.tracer_name(baseline))
        where = rounds_dir / f"{index:02d}{tag}-{target:.0f}eps"
        request = functools.partial(
            rounds.round, specs, target, settings, f"{rounds.run_id}-{index:02d}{tag}", baseline
        )
        meter = LoadMeter()
        exit_code = run_round(request, where)
        if exit_code in (130, 143):
            raise BenchInterrupted(exit_code)
        done = Measured.from_run_dir(where, target)
        load = meter.finish(done.cpu_outside_evt_s, done.window_ns)
        done.other_cpu_cores, done.load_avg_1m = load.other_cpu_cores, load.load_avg_1m
        if done.status != "ok":
            raise RunError(
                f"round {index} at {target:,.0f} events/s: the stress run ended {done.status} (see {where}/stress.out)"
            )
        measured[baseline] = done
    traced, base = measured[False], measured[True]
    judged = verdict(
        traced.loss_pct, traced.reached(settings.reach), base.reached(settings.reach), settings.max_loss_pct
    )
    return Round(index, phase, target, traced, base, judged, repeat, traced_first)


# -- the bench -------------------------------------------------------------------------


class BenchSession:
    """One `evt bench`: validated before anything starts, then the search, a live table,
    bench.csv/json/png (evt.cli.hydra_app runs it as `evt stress` runs a StressSession)."""

    def __init__(self, rounds: RoundRequests, run_dir: Path, settings: BenchSettings, specs: list[EventSpec]):
        self.rounds, self.run_dir, self.settings, self.specs = rounds, Path(run_dir), settings, specs

    @classmethod
    def prepare(cls, cfg, run_dir: Path) -> BenchSession:
        """The entrance: the composed config becomes the rounds' stress requests; then
        everything the bench and its rounds check (the rounds at the start rate, with
        and without the tracer, prepared as sessions); starts nothing."""
        settings = BenchSettings.from_cfg(cfg.bench)
        rounds = RoundRequests.from_config(cfg)  # a run id made here: each round's run id starts with it
        specs = workload(rounds.stress.specs)
        try:
            import matplotlib  # noqa: F401  (bench.png)
        except ImportError:
            raise UsageError(
                "evt bench draws bench.png with matplotlib, which is not installed: "
                "`make setup`, or `pip install 'evt[plots]'`."
            ) from None
        for baseline in (False, True):
            request = rounds.round(specs, settings.start_rate, settings, rounds.run_id, baseline)
            StressSession.for_request(request, Path(run_dir) / "rounds")
        return cls(rounds, run_dir, settings, specs)

    def run(self, measure=None) -> int:
        """The search, round by round; `measure` runs one round (measure_rate's signature;
        tests give a model of a tracer instead of stress runs)."""
        rounds, settings = self.rounds, self.settings
        if rounds.stress.settings.dry_run:
            return self.dry_run()
        measure = measure or measure_rate
        search = RateSearch(settings)
        rows: list[dict[str, object]] = []
        started = time.monotonic()
        status, failure, code = "ok", None, 0
        live = bench_report.LiveTable(terminal_console(), rounds.tracer_name(baseline=False), settings)
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        try:
            with live:
                while (step := search.next_round()) is not None:
                    target, phase = step
                    repeat = len(search.verdicts.get(target, []))
                    done = measure(
                        rounds,
                        self.specs,
                        settings,
                        target,
                        len(rows) + 1,
                        phase,
                        repeat,
                        self.run_dir / "rounds",
                        live,
                    )
                    search.record(target, done.verdict == OK)
                    rows.append(done.row())
                    live.add(rows[-1])
        except KeyboardInterrupt:
            status, code = "interrupted", 130
        except BenchInterrupted as exc:
            status, code = "interrupted", exc.code
        except RunError as exc:
            status, failure, code = "failed", str(exc), 1
        finally:
            signal.signal(signal.SIGTERM, previous)
        described = [f"{s.event}:instances={s.instances}" + (f":mode={s.mode}" if s.mode else "") for s in self.specs]
        summary = bench_report.summarize(
            rounds.tracer_name(baseline=False),
            settings,
            described,
            rows,
            search,
            status,
            failure,
            time.monotonic() - started,
        )
        bench_report.write_all(self.run_dir, rows, summary)
        bench_report.print_summary(live.console, summary, self.run_dir)
        return code

    def dry_run(self) -> int:
        """`--dry-run`: the search's settings and the first round's two runs (with and
        without the tracer) as `evt stress --dry-run` prints them; nothing starts."""
        s = self.settings
        print(
            f"evt bench dry run: target rates from {s.start_rate:,.0f} events/s (x2 until over the limit, then "
            f"bisection to {s.precision_pct:g}%; {s.confirm} confirmations each of the last good and first bad "
            f"rate; at most {s.max_rounds} rounds of {s.round_duration_s:g} s; loss limit {s.max_loss_pct:g}%)"
        )
        for baseline in (False, True):
            request = self.rounds.round(self.specs, s.start_rate, s, self.rounds.run_id, baseline)
            request = dataclasses.replace(request, settings=dataclasses.replace(request.settings, dry_run=True))
            code = StressSession.for_request(request, self.run_dir / "rounds").run()
            if code:
                return code
        return 0


def terminal_console() -> Console:
    """The bench's own console, bound to the terminal's stdout now: while a round runs,
    sys.stdout is that round's stress.out."""
    console = Console(file=sys.stdout)
    return console if console.is_terminal else Console(file=sys.stdout, width=160)


class BenchInterrupted(Exception):
    """Ctrl+C or SIGTERM during a bench: results so far are written, the exit code kept."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _sigterm_as_interrupt(signum, frame):
    raise BenchInterrupted(128 + signum)

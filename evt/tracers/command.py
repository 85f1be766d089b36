"""A streaming tracer run as a command, configured entirely in YAML (conf/tracer/<name>.yaml).

The tracer prints one line per event. evt runs its command line
(each argument a Jinja template), waits until it is ready (a line it prints, or a delay),
and stops it with the configured signal (SIGKILL after a timeout). Its stdout is kept in
<run_dir>/tracer/<name>.out and read after it stopped: an event line (`line`, a regular
expression with named groups) belongs to a unit when the groups named in `match` equal the
unit's values (Jinja templates over the unit's marker, e.g. the workers' marker comm), so the
host's other processes are not counted. Its lost-event messages (`lost`, the number in a
group named `lost`) are summed from stdout and stderr.

Only native units are counted: their workers carry the run's marker. Units of events the
tracer does not see (`events`) and script units get no count (observed is empty in
events.csv).
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from evt.config.spec import parse_seconds
from evt.config.templating import render_string
from evt.errors import UsageError
from evt.stress.plan import RunContext, Unit
from evt.tracers.base import TracerReport
from evt.tracers.process import ProcessTracer
from evt.tracers.schema import CommandTracerConfig

log = logging.getLogger(__name__)


@dataclass
class LineRules:
    """The YAML's patterns, compiled and checked."""

    line: re.Pattern
    lost: re.Pattern
    ready: re.Pattern | None
    delay_s: float
    stop_signal: signal.Signals


def compile_rules(tcfg) -> LineRules:
    """UsageError naming the tracer's YAML and the bad value, before anything starts."""
    name, where = tcfg.name, f"conf/tracer/{tcfg.name}.yaml"
    line = _compile(
        tcfg.line,
        f"tracer.line of tracer {name}",
        where,
        "a regular expression matching one event line, with named groups such as (?P<comm>...)",
    )
    lost = _compile(
        tcfg.lost,
        f"tracer.lost of tracer {name}",
        where,
        "a regular expression matching its lost-event messages, the count in a group (?P<lost>...)",
    )
    if "lost" not in lost.groupindex:
        raise UsageError(
            f"tracer.lost of tracer {name} ({where}) has no group named `lost`: write the number of "
            f"lost events as (?P<lost>\\d+), e.g. '^Lost (?P<lost>\\d+) events'."
        )
    if not tcfg.match:
        raise UsageError(
            f"tracer.match of tracer {name} ({where}) is empty: name the groups of tracer.line that "
            'tell a unit\'s events, e.g. match: {comm: "{{ marker.comm }}"}.'
        )
    absent = [group for group in tcfg.match if group not in line.groupindex]
    if absent:
        raise UsageError(
            f"tracer.line of tracer {name} ({where}) has no group named {', '.join(absent)}, which "
            f"tracer.match uses: add (?P<{absent[0]}>...) to the pattern or drop it from tracer.match."
        )
    ready = delay_s = None
    if tcfg.ready_pattern is not None and tcfg.ready_delay is not None:
        raise UsageError(f"tracer {name} ({where}) has both tracer.ready_pattern and tracer.ready_delay: keep one.")
    if tcfg.ready_pattern is not None:
        ready = _compile(tcfg.ready_pattern, f"tracer.ready_pattern of tracer {name}", where, "a regular expression")
    elif tcfg.ready_delay is not None:
        delay_s = parse_seconds(tcfg.ready_delay, f"tracer.ready_delay of tracer {name}")
    else:
        raise UsageError(
            f"tracer {name} ({where}) says neither how readiness shows: set tracer.ready_pattern "
            "(a line it prints once attached) or tracer.ready_delay (e.g. 2s)."
        )
    try:
        stop_signal = signal.Signals[str(tcfg.stop_signal)]
    except KeyError:
        raise UsageError(
            f"invalid tracer.stop_signal {tcfg.stop_signal!r} of tracer {name} ({where}): use a "
            "signal name such as SIGINT or SIGTERM."
        ) from None
    return LineRules(line=line, lost=lost, ready=ready, delay_s=delay_s or 0.0, stop_signal=stop_signal)


def _compile(pattern: str | None, what: str, where: str, expected: str) -> re.Pattern:
    if not pattern:
        raise UsageError(f"{what} is missing ({where}): give {expected}.")
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise UsageError(
            f"{what} ({where}) does not compile: {pattern!r}: {exc}. Fix the regular expression."
        ) from None


class CommandTracer(ProcessTracer):
    """Built with its option's keys (conf/tracer/<name>.yaml, CommandTracerConfig)."""

    def __init__(self, run: RunContext, **settings):
        tcfg = CommandTracerConfig(**settings)
        super().__init__(run, str(tcfg.name), tcfg, section="tracer")
        self.tcfg = tcfg
        self.rules: LineRules | None = None
        self._looked: dict[Path, int] = {}  # how far is_ready() has read each output file

    # -- before anything starts -------------------------------------------------------

    def check(self, units: list[Unit]) -> None:
        self.rules = compile_rules(self.tcfg)
        argv = self.render_command(units)
        if not argv:
            raise UsageError(
                f"tracer.command of tracer {self.name} (conf/tracer/{self.name}.yaml) is empty: "
                'give its command line, e.g. command: ["{{ binary }}"].'
            )
        if argv[0] != self.binary() and not shutil.which(argv[0]):
            raise UsageError(
                f"{argv[0]!r}, the first word of tracer {self.name}'s command, is not an executable "
                f"on PATH: install it or fix tracer.command in conf/tracer/{self.name}.yaml."
            )
        if not self.tcfg.events:
            raise UsageError(
                f"tracer.events of tracer {self.name} (conf/tracer/{self.name}.yaml) is empty: name the "
                "evt events it reports, e.g. events: [security_file_open]."
            )
        counted = self.counted(units)
        for unit in counted:
            self.unit_values(unit)
        if units and not counted:
            log.warning(
                "%s counts none of this run's units: it reports %s, of native units only",
                self.name,
                ", ".join(self.tcfg.events),
            )

    def binary(self) -> str:
        configured = str(self.tcfg.binary)
        found = shutil.which(configured) if configured else None
        if not found:
            raise UsageError(
                f"{self.name} not found: {configured!r} is not an executable on PATH. Install it"
                f"{' (' + self.tcfg.install_hint + ')' if self.tcfg.install_hint else ''}, point "
                f"tracer.binary=/path/to/{self.name} at it, or pick another tracer (tracer=bpftrace or tracer=none)."
            )
        return found

    def render_command(self, units: list[Unit]) -> list[str]:
        """The argv: each item rendered on its own (no shell); items rendering empty are left out."""
        try:
            binary = self.binary()
        except UsageError:
            binary = str(self.tcfg.binary)
        context = {"binary": binary, "run_dir": str(self.run_dir), "units": [_unit_context(u) for u in units]}
        argv = []
        for item in self.tcfg.command:
            try:
                text = render_string(str(item), **context)
            except jinja2.TemplateError as exc:
                raise UsageError(
                    f"tracer.command item {item!r} of tracer {self.name} does not render: {exc}. "
                    f"Fix conf/tracer/{self.name}.yaml."
                ) from None
            if text:
                argv.append(text)
        return argv

    def planned_argv(self, units: list[Unit]) -> list[str]:
        return self.render_command(units)

    def counted(self, units: list[Unit]) -> list[Unit]:
        """The units this tracer can count: native units of the events it sees."""
        return [u for u in units if u.mode == "native" and u.event in self.tcfg.events]

    def unit_values(self, unit: Unit) -> tuple[str, ...]:
        """The values tracer.match gives one unit's event lines, in tracer.match's order."""
        values = []
        for group, template in self.tcfg.match.items():
            try:
                values.append(render_string(str(template), **_unit_context(unit)))
            except jinja2.TemplateError as exc:
                raise UsageError(
                    f"tracer.match.{group} {template!r} of tracer {self.name} does not render: {exc}. "
                    f"It may use marker.comm, marker.file, marker.exe, marker.dir, event, name."
                ) from None
        return tuple(values)

    # -- what the process part asks -------------------------------------------------------

    def argv(self, units: list[Unit]) -> list[str]:
        if self.rules is None:
            self.check(units)
        argv = self.render_command(units)
        (self.dir / "command.txt").write_text(shlex.join(argv) + "\n")
        return argv

    def environment(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.tcfg.env.items()}

    def ready_timeout_s(self) -> float:
        assert self.rules is not None
        return self.durations.ready_timeout_s + (self.rules.delay_s if self.rules.ready is None else 0.0)

    def is_ready(self) -> bool:
        """It printed a line matching ready_pattern; with ready_delay: the delay has passed."""
        assert self.rules is not None
        if self.rules.ready is None:
            return time.monotonic() - self.process.started_at >= self.rules.delay_s
        return self._printed(self.rules.ready)

    def waiting_for(self) -> str:
        assert self.rules is not None and self.rules.ready is not None
        return (
            f"print a line matching {self.rules.ready.pattern!r} within {self.tcfg.ready_timeout} "
            "(raise tracer.ready_timeout)"
        )

    def stop_signal(self) -> signal.Signals:
        return self.rules.stop_signal if self.rules else signal.SIGTERM

    def _printed(self, pattern: re.Pattern) -> bool:
        """Whether a whole line it printed since the last look matches (each file read once)."""
        for path in (self.out_path, self.log_path):
            try:
                with open(path, "rb") as f:
                    f.seek(self._looked.get(path, 0))
                    lines = f.read().split(b"\n")[:-1]  # the last piece is not a whole line yet
            except FileNotFoundError:
                continue
            self._looked[path] = self._looked.get(path, 0) + sum(len(line) + 1 for line in lines)
            if any(pattern.search(line.decode(errors="replace")) for line in lines):
                return True
        return False

    # -- results ------------------------------------------------------------------------

    def count_lines(self, units: list[Unit]) -> tuple[dict[str, int], int]:
        """Event lines by unit (the counted units only) and all the lines it printed."""
        assert self.rules is not None
        by_values = {self.unit_values(u): u.name for u in self.counted(units)}
        observed = dict.fromkeys(by_values.values(), 0)
        groups = list(self.tcfg.match)
        # Most lines are the host's other processes: a cheap substring test first.
        needles = {values[0] for values in by_values}
        event_of = {u.name: u.event for u in units}
        line_pattern, lines = self.rules.line, 0
        try:
            with open(self.out_path, errors="replace") as f:
                for line in f:
                    lines += 1
                    if not any(needle in line for needle in needles):
                        continue
                    match = line_pattern.search(line)
                    if match is None:
                        continue
                    unit = by_values.get(tuple(match.group(g) for g in groups))
                    if unit is not None and self._event_matches(match, event_of[unit]):
                        observed[unit] += 1
        except FileNotFoundError:
            pass
        return observed, lines

    def _event_matches(self, match: re.Match, event: str) -> bool:
        if "event" not in match.re.groupindex:
            return True
        value = match.group("event")
        return self.tcfg.event_names.get(value, value) == event

    def lost_events(self) -> int:
        assert self.rules is not None
        total = 0
        for path in (self.log_path, self.out_path):
            try:
                with open(path, errors="replace") as f:
                    for line in f:
                        match = self.rules.lost.search(line)
                        if match:
                            total += int(match.group("lost"))
            except FileNotFoundError:
                pass
        return total

    def report(self, units: list[Unit]) -> TracerReport:
        if self.process.proc is None or self.rules is None:
            return TracerReport(
                tracer=self.name, command=self.command(units), observed=None, crashed=self.process.crashed
            )
        observed, lines = self.count_lines(units)
        return self.base_report(
            units, observed=observed, lost={f"{self.name}_lost_events": self.lost_events()}, metrics={"lines": lines}
        )


def _unit_context(unit: Unit) -> dict[str, object]:
    return {
        "name": unit.name,
        "event": unit.event,
        "mode": unit.mode,
        "marker": unit.marker.as_dict(),
        "pid": unit.pid,
        "cgroup_path": unit.cgroup_path,
        "container_id": unit.container_id,
    }

"""What `evt compare` compares and how much change counts as a regression.

Each metric has a side that is better (higher events/s, lower loss), a kind of change
(relative %, or absolute in the metric's unit) and a default threshold; None means
the metric is shown but never gates. `--threshold name=value` and a YAML file of
`name: value` pairs set them (`off` turns any of them off, the perf gate's included);
`alpha` is the significance level of the Mann-Whitney U test used when both sides have at
least 3 runs; `loss_stat` is how a side's loss is reduced to one figure (its worst run, or
its median).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from evt.errors import UsageError

MIN_RUNS_FOR_TEST = 3
DEFAULT_ALPHA = 0.05
OFF = ("off", "none")
LOSS_STATS = ("worst", "median")


@dataclass(frozen=True)
class Metric:
    name: str
    scope: str  # event (per scenario + event) | run (per scenario) | gate (against a perf-gate baseline)
    higher_is_better: bool
    relative: bool  # threshold in % of the baseline; else in the metric's own unit
    default: float | None
    label: str  # for tables and plot axes, with the unit

    @property
    def change_unit(self) -> str:
        return (
            "%"
            if self.relative
            else {"loss_pct": "points", "observed_ratio": "", "start_skew_ms": "ms"}.get(self.name, "")
        )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("events_per_s", "event", True, True, 10.0, "events/s"),
        Metric("loss_pct", "event", False, False, 1.0, "loss %"),
        Metric("observed_ratio", "event", True, False, None, "observed / expected"),
        Metric("tracer_cpu_per_mevents", "run", False, True, 25.0, "tracer CPU s per million events"),
        Metric("tracer_cpu_avg_pct", "run", False, True, None, "tracer CPU % (average)"),
        Metric("tracer_cpu_p95_pct", "run", False, True, None, "tracer CPU % (p95)"),
        Metric("peak_rss_bytes", "run", False, True, 20.0, "tracer peak RSS (bytes)"),
        Metric("total_ops_per_s", "run", True, True, None, "total ops/s"),
        Metric("start_skew_ms", "run", False, False, None, "start skew (ms)"),
        # Tracee's perf-gate figures, judged only against a perf-gate baseline file (evt.analysis.perfgate,
        # whose thresholds apply unless set here)
        Metric("peak_rss_kb", "gate", False, True, None, "tracer peak RSS (kB, perf gate)"),
        Metric("avg_cpu_pct", "gate", False, True, None, "tracer CPU % (average, perf gate)"),
        Metric("p95_cpu_pct", "gate", False, True, None, "tracer CPU % (p95, perf gate)"),
    )
}


@dataclass
class Settings:
    thresholds: dict[str, float | None]
    alpha: float = DEFAULT_ALPHA
    loss_stat: str = "worst"  # loss_pct of a side: its worst run's (a lossy run is a finding) or the median
    explicit: frozenset[str] = frozenset()  # the names given (file or flags), `off` included

    def stat(self, name: str) -> str:
        """How the side's values of this figure are reduced to the one judged."""
        return self.loss_stat if name == "loss_pct" else "median"

    def describe(self, name: str) -> str:
        value = self.thresholds.get(name)
        if value is None:
            return "off" if name in self.explicit else "-"
        metric = METRICS[name]
        sign = "-" if metric.higher_is_better else "+"
        unit = "%" if metric.relative else f" {metric.change_unit}".rstrip()
        return f"{sign}{value:g}{unit}"


def valid_names() -> str:
    return ", ".join([*METRICS, "alpha"])


def _value(name: str, raw: object, where: str) -> float | None:
    if name not in METRICS and name != "alpha":
        raise UsageError(f"unknown threshold {name!r}{where}; valid names: {valid_names()}.")
    text = str(raw).strip().rstrip("%")
    if name != "alpha" and text.lower() in OFF:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if name == "alpha":
        if not 0 < value < 1:
            raise UsageError(
                f"alpha={raw!r}{where} is not a significance level: give a number between 0 and 1, e.g. alpha=0.05."
            )
        return value
    if not (value >= 0 and math.isfinite(value)):
        unit = "in %" if METRICS[name].relative else "in " + (METRICS[name].change_unit or "its unit")
        raise UsageError(
            f"threshold {name}={raw!r}{where} is not a non-negative number: give e.g. {name}="
            f"{METRICS[name].default or 5:g} (a change {unit}) or {name}=off."
        )
    return value


def parse(items: list[str], config_file: str | None = None, loss_stat: str = "worst") -> Settings:
    """Defaults, then the config file, then each `--threshold name=value`."""
    if loss_stat not in LOSS_STATS:
        raise UsageError(
            f"--loss-stat {loss_stat!r} is not one of {', '.join(LOSS_STATS)}: worst judges a side's loss "
            "by its worst run, median by its median run."
        )
    settings = Settings({name: m.default for name, m in METRICS.items()}, loss_stat=loss_stat)
    pairs: list[tuple[str, object, str]] = []
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise UsageError(
                f"threshold file {config_file} does not exist: give a YAML file of `name: value` lines "
                f"(names: {valid_names()})."
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise UsageError(f"threshold file {config_file} is not valid YAML: {' '.join(str(exc).split())}.") from exc
        if not isinstance(data, dict):
            raise UsageError(
                f"threshold file {config_file} must be a mapping of `name: value` lines (names: {valid_names()})."
            )
        pairs += [(str(k), v, f" in {config_file}") for k, v in data.items()]
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not text.strip():
            raise UsageError(
                f"--threshold {item!r} is not name=value: give e.g. --threshold events_per_s=5 "
                f"(names: {valid_names()})."
            )
        pairs.append((name.strip(), text, ""))
    for name, raw, where in pairs:
        value = _value(name, raw, where)
        if name == "alpha":
            assert value is not None  # _value refuses an alpha that is not a number
            settings.alpha = value
        else:
            settings.thresholds[name] = value
    settings.explicit = frozenset(name for name, _, _ in pairs if name != "alpha")
    return settings

"""`evt compare BASELINE CANDIDATE`: did the candidate get worse?

Rows are matched by scenario + event (+ the swept values of a sweep); the per-run
figures by scenario (+ swept values). With several runs per side each side is reduced
to its median and spread; a change beyond its threshold is a regression (or an
improvement), unless both sides have at least 3 runs and a one-sided Mann-Whitney U
test does not find the shift significant: then it is called noise. Writes compare.csv,
compare.md (for a CI job summary or a PR comment) and compare.json to the output
directory; the exit code is 1 when something regressed.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evt.results import rundirs
from evt.errors import UsageError
from evt.analysis.thresholds import METRICS, MIN_RUNS_FOR_TEST, Metric, Settings

REGRESSION, IMPROVEMENT, SAME, NOISE, INFO, MISSING = (
    "regression", "improvement", "same", "noise", "info", "missing")
COMPARE_COLUMNS = ["scope", "scenario", "event", "metric", "baseline_median", "baseline_min", "baseline_max",
                   "baseline_n", "candidate_median", "candidate_min", "candidate_max", "candidate_n", "change",
                   "change_unit", "threshold", "p_value", "verdict"]


@dataclass
class Judgement:
    baseline_median: float | None
    candidate_median: float | None
    change: float | None  # candidate vs baseline, in % (relative metrics) or the metric's unit
    p_value: float | None
    verdict: str


def relative_change(base: float, cand: float) -> float | None:
    if base == 0:
        return 0.0 if cand == 0 else None  # no baseline to scale by
    return 100.0 * (cand - base) / abs(base)


def mann_whitney_p(base: list[float], cand: list[float], candidate_higher: bool) -> float:
    """One-sided p of "the candidate's values are shifted this way" (3 vs 3 can reach 0.05)."""
    from scipy.stats import mannwhitneyu

    if len(set(base) | set(cand)) == 1:
        return 1.0  # all equal: no shift at all
    return float(mannwhitneyu(cand, base, alternative="greater" if candidate_higher else "less").pvalue)


def judge(metric: Metric, base: list[float], cand: list[float], threshold: float | None, alpha: float) -> Judgement:
    """The verdict for one metric of one matched row."""
    if not base or not cand:
        return Judgement(statistics.median(base) if base else None, statistics.median(cand) if cand else None,
                         None, None, MISSING)
    b, c = statistics.median(base), statistics.median(cand)
    change = relative_change(b, c) if metric.relative else c - b
    p_value = None
    if len(base) >= MIN_RUNS_FOR_TEST and len(cand) >= MIN_RUNS_FOR_TEST and c != b:
        p_value = mann_whitney_p(base, cand, candidate_higher=c > b)
    if threshold is None or change is None:
        return Judgement(b, c, change, p_value, INFO)
    worse_by = -change if metric.higher_is_better else change
    if abs(worse_by) <= threshold:
        return Judgement(b, c, change, p_value, SAME)
    if p_value is not None and p_value > alpha:
        return Judgement(b, c, change, p_value, NOISE)
    return Judgement(b, c, change, p_value, REGRESSION if worse_by > 0 else IMPROVEMENT)


@dataclass
class Comparison:
    baseline: rundirs.ResultSet
    candidate: rundirs.ResultSet
    settings: Settings
    keys: list[str]
    rows: pd.DataFrame
    unmatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"] == REGRESSION]

    @property
    def exit_code(self) -> int:
        return 1 if len(self.regressions) else 0


def usable_runs(frame: pd.DataFrame, side: str, skipped: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    bad = frame[~frame["status"].isin(rundirs.USABLE_STATUSES)].drop_duplicates("run_dir")
    skipped += [f"{side} run {r.run_dir} not compared: status {r.status}" for r in bad.itertuples()]
    return frame[frame["status"].isin(rundirs.USABLE_STATUSES)]


def describe_key(names: list[str], values: tuple) -> str:
    return " ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))


def _groups(frame: pd.DataFrame, by: list[str]) -> dict[tuple, pd.DataFrame]:
    if frame.empty:
        return {}
    return {tuple(str(v) for v in k): g for k, g in frame.groupby(by, sort=False, dropna=False)}


def matched_rows(scope: str, by: list[str], base: pd.DataFrame, cand: pd.DataFrame, settings: Settings,
          unmatched: list[str], outer: set[tuple] | None) -> list[dict]:
    """Compare every group present on both sides; record the ones present on one side only
    (except inside a run group that is itself unmatched: reported once, at run level)."""
    groups_b, groups_c = _groups(base, by), _groups(cand, by)
    rows = []
    for side, mine, other in (("baseline", groups_b, groups_c), ("candidate", groups_c, groups_b)):
        for key in mine:
            if key not in other and (outer is None or key[:-1] in outer):
                unmatched.append(f"only in the {side}: {describe_key(by, key)}")
    metrics = [m for m in METRICS.values() if m.scope == scope]
    for key, gb in groups_b.items():
        gc = groups_c.get(key)
        if gc is None:
            continue
        for metric in metrics:
            vb = [float(v) for v in gb[metric.name].dropna()]
            vc = [float(v) for v in gc[metric.name].dropna()]
            if not vb and not vc:
                continue
            j = judge(metric, vb, vc, settings.thresholds.get(metric.name), settings.alpha)
            row = dict(zip(by, key, strict=True))
            row.update(scope=scope, metric=metric.name, baseline_median=j.baseline_median,
                       baseline_min=min(vb, default=None), baseline_max=max(vb, default=None), baseline_n=len(vb),
                       candidate_median=j.candidate_median, candidate_min=min(vc, default=None),
                       candidate_max=max(vc, default=None), candidate_n=len(vc), change=j.change,
                       change_unit=metric.change_unit, threshold=settings.thresholds.get(metric.name),
                       p_value=j.p_value, verdict=j.verdict)
            rows.append(row)
    return rows


def compare(baseline: rundirs.ResultSet, candidate: rundirs.ResultSet, settings: Settings) -> Comparison:
    keys = list(dict.fromkeys(baseline.sweep_keys + candidate.sweep_keys))
    skipped: list[str] = []
    (runs_b, events_b), (runs_c, events_c) = rundirs.load(baseline, keys), rundirs.load(candidate, keys)
    runs_b, runs_c = usable_runs(runs_b, "baseline", skipped), usable_runs(runs_c, "candidate", skipped)
    events_b, events_c = usable_runs(events_b, "baseline", []), usable_runs(events_c, "candidate", [])
    run_by = ["scenario", *keys]
    unmatched: list[str] = []
    run_rows = matched_rows("run", run_by, runs_b, runs_c, settings, unmatched, None)
    matched = set(_groups(runs_b, run_by)) & set(_groups(runs_c, run_by))
    if not matched:
        sides = "; ".join(f"{name}: {', '.join(sorted({describe_key(run_by, k) for k in _groups(f, run_by)})) or 'no usable run'}"
                          for name, f in (("baseline", runs_b), ("candidate", runs_c)))
        raise UsageError(f"nothing to compare: no scenario{' with the same swept values' if keys else ''} appears in both "
                         f"{baseline.path} and {candidate.path} ({sides}"
                         f"{'; ' + '; '.join(skipped) if skipped else ''}). Compare runs of the same scenario.")
    event_rows = matched_rows("event", [*run_by, "event"], events_b, events_c, settings, unmatched, matched)
    frame = pd.DataFrame(event_rows + run_rows)
    columns = COMPARE_COLUMNS[:2] + keys + COMPARE_COLUMNS[2:]
    frame = frame.reindex(columns=columns)
    frame["event"] = frame["event"].fillna("")
    return Comparison(baseline, candidate, settings, keys, frame, unmatched, skipped)


def default_out_dir() -> Path:
    return Path("outputs") / "compare" / (time.strftime("%Y-%m-%d_%H-%M-%S") + "-" + uuid.uuid4().hex[:6])

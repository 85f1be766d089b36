"""The verdict on one compared figure: each side reduced to one value, the change against
its threshold, and (with at least 3 runs a side) a one-sided Mann-Whitney U test.

The U test's p-value is exact for small samples, with or without ties: without ties
scipy's exact distribution of U, with ties a permutation test that enumerates every split
of the pooled values (scipy's normal approximation, its default with ties, gives 0.023
for [0, 0, 0] against [2, 2, 2] where 1 split in 20 is as extreme: p = 0.05). Larger
samples, with too many splits to enumerate, use the normal approximation with its tie
correction, which is close there.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from evt.analysis.thresholds import MIN_RUNS_FOR_TEST, Metric

REGRESSION, IMPROVEMENT, SAME, NOISE, INFO, MISSING = ("regression", "improvement", "same", "noise", "info", "missing")
# up to this many splits of the pooled runs the p-value is computed exactly (8 vs 8: 12,870)
EXACT_SPLITS = 20_000


@dataclass
class Judgement:
    baseline_median: float | None
    candidate_median: float | None
    change: float | None  # candidate vs baseline, in % (relative metrics) or the metric's unit
    p_value: float | None
    verdict: str
    baseline_value: float | None = None  # the value judged: the median, or the worst run's (loss)
    candidate_value: float | None = None


def relative_change(base: float, cand: float) -> float | None:
    if base == 0:
        return 0.0 if cand == 0 else None  # no baseline to scale by
    return 100.0 * (cand - base) / abs(base)


def _u_statistic(cand, base, axis: int = -1):
    from scipy.stats import mannwhitneyu

    return mannwhitneyu(cand, base, axis=axis, method="asymptotic").statistic


def mann_whitney_p(base: list[float], cand: list[float], candidate_higher: bool) -> float:
    """One-sided p of "the candidate's values are shifted this way" (3 vs 3 fully separated: 0.05)."""
    from scipy.stats import mannwhitneyu, permutation_test

    pooled = base + cand
    if len(set(pooled)) == 1:
        return 1.0  # all equal: no shift at all
    alternative = "greater" if candidate_higher else "less"
    if math.comb(len(pooled), len(base)) > EXACT_SPLITS:
        return float(mannwhitneyu(cand, base, alternative=alternative, method="asymptotic").pvalue)
    if len(set(pooled)) == len(pooled):  # no ties: U's exact distribution
        return float(mannwhitneyu(cand, base, alternative=alternative, method="exact").pvalue)
    # ties: every split of the pooled values enumerated (n_resamples above their number)
    result = permutation_test(
        (cand, base),
        _u_statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=EXACT_SPLITS,
        alternative=alternative,
    )
    return float(result.pvalue)


def side_value(metric: Metric, values: list[float], stat: str) -> float:
    """A side's values as one: the median, or (stat "worst") its worst run's."""
    if stat == "worst":
        return min(values) if metric.higher_is_better else max(values)
    return statistics.median(values)


def judge(
    metric: Metric, base: list[float], cand: list[float], threshold: float | None, alpha: float, stat: str = "median"
) -> Judgement:
    """The verdict for one metric of one matched row. With stat "worst" each side is judged
    by its worst run, and the U test does not turn a change into noise: one run that did
    worse is a finding (its p-value is still shown)."""
    median_b = statistics.median(base) if base else None
    median_c = statistics.median(cand) if cand else None
    if not base or not cand:
        return Judgement(median_b, median_c, None, None, MISSING)
    b, c = side_value(metric, base, stat), side_value(metric, cand, stat)
    change = relative_change(b, c) if metric.relative else c - b
    p_value = None
    if len(base) >= MIN_RUNS_FOR_TEST and len(cand) >= MIN_RUNS_FOR_TEST and c != b:
        p_value = mann_whitney_p(base, cand, candidate_higher=c > b)
    judged = Judgement(median_b, median_c, change, p_value, INFO, b, c)
    if threshold is None or change is None:
        return judged
    worse_by = -change if metric.higher_is_better else change
    if abs(worse_by) <= threshold:
        judged.verdict = SAME
    elif p_value is not None and p_value > alpha and stat != "worst":
        judged.verdict = NOISE
    else:
        judged.verdict = REGRESSION if worse_by > 0 else IMPROVEMENT
    return judged

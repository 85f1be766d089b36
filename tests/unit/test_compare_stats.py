"""The U test of `evt compare` for small samples: its p-value is the exact one, with or
without ties, checked against a brute-force count over every split of the pooled runs."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evt.analysis import verdicts
from evt.analysis.thresholds import METRICS


def exact_p(base: list[float], cand: list[float], candidate_higher: bool) -> float:
    """The share of the splits of the pooled values whose U (candidate's) is at least as extreme."""

    def u(c, b):
        return sum((x > y) + 0.5 * (x == y) for x in c for y in b)

    pooled, n = base + cand, len(cand)
    observed = u(cand, base)
    extreme = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n):
        c = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        value = u(c, b)
        extreme += (value >= observed - 1e-9) if candidate_higher else (value <= observed + 1e-9)
        total += 1
    return extreme / total


@pytest.mark.parametrize(
    "base, cand, higher, p",
    [
        ([0.0, 0.0, 0.0], [2.0, 2.0, 2.0], True, 0.05),  # ties: 1 split in 20 (the normal approximation: 0.023)
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], True, 0.05),  # no ties
        ([1000.0, 1010.0, 990.0], [800.0, 810.0, 790.0], False, 0.05),
        ([0.0, 0.0, 0.0], [0.0, 0.0, 5.0], True, 0.5),  # the 5 is in the candidate in half of the splits
    ],
)
def test_three_against_three(base, cand, higher, p):
    assert verdicts.mann_whitney_p(base, cand, higher) == pytest.approx(p)


@pytest.mark.property
@given(
    st.lists(st.integers(0, 3), min_size=3, max_size=6),
    st.lists(st.integers(0, 3), min_size=3, max_size=6),
    st.booleans(),
)
def test_small_samples_get_the_exact_p_with_or_without_ties(base, cand, higher):
    base, cand = [float(v) for v in base], [float(v) for v in cand]
    if len(set(base + cand)) == 1:
        assert verdicts.mann_whitney_p(base, cand, higher) == 1.0
        return
    assert verdicts.mann_whitney_p(base, cand, higher) == pytest.approx(exact_p(base, cand, higher))


def test_large_samples_use_the_normal_approximation():
    base, cand = [float(i) for i in range(12)], [float(i) + 0.5 for i in range(12)]
    assert math.comb(24, 12) > verdicts.EXACT_SPLITS
    assert 0.3 < verdicts.mann_whitney_p(base, cand, True) < 0.5


def test_the_worst_run_is_not_turned_into_noise():
    loss = METRICS["loss_pct"]
    worst = verdicts.judge(loss, [0.0, 0.0, 0.0], [0.0, 0.0, 5.0], 1.0, 0.05, "worst")
    assert (worst.verdict, worst.candidate_value, worst.p_value) == (verdicts.REGRESSION, 5.0, pytest.approx(0.5))
    median = verdicts.judge(loss, [0.0, 0.0, 0.0], [0.0, 0.0, 5.0], 1.0, 0.05, "median")
    assert median.verdict == verdicts.SAME

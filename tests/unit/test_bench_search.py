"""The search of `evt bench` (evt/bench/search.py): settings, verdicts, next rates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from evt.bench.search import (
    BISECT,
    CONFIRM,
    GENERATOR,
    GOOD,
    LOSS,
    OK,
    OVER,
    OVERHEAD,
    UNSTABLE,
    BenchSettings,
    RateSearch,
    majority_verdict,
    verdict,
)
from evt.config.schema import BenchConfig
from evt.errors import UsageError


def settings(**changes) -> BenchSettings:
    bench = OmegaConf.structured(BenchConfig)
    for key, value in changes.items():
        bench[key] = value
    return BenchSettings.from_cfg(bench)


def test_defaults_are_the_issues():
    s = settings()
    assert (s.round_duration_s, s.max_loss_pct, s.precision_pct) == (5.0, 1.0, 10.0)
    assert s.start_rate > 0 and s.max_rounds >= 2
    assert (s.reach, s.confirm) == (0.95, 2)


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("round_duration", "0s", "bench.round_duration=0s must be longer than 0"),
        ("round_duration", "5 s", "invalid bench.round_duration '5 s'"),
        ("cooldown", "soon", "invalid bench.cooldown 'soon'"),
        ("start_rate", 0, "bench.start_rate must be a positive number of events per second"),
        ("max_loss_pct", 100, "bench.max_loss_pct=100"),
        ("max_loss_pct", -1, "is not a percentage below 100"),
        ("precision", 0, "bench.precision=0.0 must be a percentage above 0"),
        ("precision", 150, "at most 100"),
        ("max_rounds", 1, "bench.max_rounds=1 must be at least 2"),
        ("max_rounds", 0, "bench.max_rounds must be greater than 0"),
        ("reach", 0, "bench.reach=0.0 must be a share above 0 and at most 1"),
        ("reach", 95, "give e.g. 0.95"),
        ("confirm", -1, "bench.confirm=-1 must be a whole number of rounds, 0 or more"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(key, value, needle):
    with pytest.raises(UsageError) as info:
        settings(**{key: value})
    assert needle in str(info.value)


def test_verdicts():
    assert verdict(0.0, True, True, 1.0) == OK
    assert verdict(None, True, True, 1.0) == OK  # a tracer that tells no loss
    assert verdict(1.5, True, True, 1.0) == LOSS
    assert verdict(1.5, False, False, 1.0) == LOSS  # loss first: it is what the bench looks for
    assert verdict(0.0, False, True, 1.0) == OVERHEAD
    assert verdict(None, False, False, 1.0) == GENERATOR


def run_search(search: RateSearch, limit: float) -> list[float]:
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= limit)
    return tried


def test_grows_x2_then_bisects_geometrically_then_confirms_both_ends():
    search = RateSearch(settings(start_rate=1000, precision=10, max_rounds=30))
    tried = run_search(search, limit=5000)
    assert tried[:4] == [1000, 2000, 4000, 8000]
    assert tried[4] == pytest.approx(math.sqrt(4000 * 8000))
    assert search.good <= 5000 < search.bad <= search.good * 1.1
    # the last good and the first bad rate, two more rounds each, and then the search ends
    assert tried[-4:] == [search.good, search.good, search.bad, search.bad]
    assert search.precision_reached() and search.phase() == CONFIRM
    assert (search.decision(search.good), search.decision(search.bad)) == (GOOD, OVER)


def record_all(search: RateSearch, rate: float, verdicts: str) -> None:
    for v in verdicts:
        search.record(rate, v == "g")


@pytest.mark.parametrize(
    "rounds, decided",
    [
        ("ggg", GOOD),
        ("bbb", OVER),
        ("bgg", GOOD),
        ("gbb", OVER),  # repeats that agree decide (majority)
        ("ggb", UNSTABLE),
        ("gbg", UNSTABLE),
        ("bbg", UNSTABLE),
        ("bgb", UNSTABLE),  # repeats that disagree
    ],
)
def test_a_confirmed_rate_is_decided_by_majority_and_unstable_when_its_repeats_disagree(rounds, decided):
    search = RateSearch(settings())
    record_all(search, 1000, rounds)
    assert search.confirmed(1000) and search.decision(1000) == decided


def test_one_noisy_bad_round_does_not_cap_the_search():
    """The first bad rate is an outlier: its repeats are good, so the search grows past it."""
    search = RateSearch(settings(start_rate=1000, precision=50, max_rounds=30))
    record_all(search, 1000, "g")
    record_all(search, 2000, "b")  # noise
    assert search.next_round() == (math.sqrt(2) * 1000, BISECT)
    record_all(search, math.sqrt(2) * 1000, "g")
    assert search.next_round() == (math.sqrt(2) * 1000, CONFIRM)
    record_all(search, math.sqrt(2) * 1000, "gg")
    assert search.next_round() == (2000, CONFIRM)
    record_all(search, 2000, "gg")
    assert search.bad is None and search.next_round() == (4000, "grow")


def test_an_unstable_last_good_rate_sends_the_search_below_it():
    search = RateSearch(settings(start_rate=1000, precision=50, max_rounds=30))
    record_all(search, 1000, "g")
    record_all(search, 2000, "g")
    record_all(search, 4000, "b")
    record_all(search, 2000, "gb")  # its repeats disagree
    assert search.decision(2000) == UNSTABLE and (search.good, search.bad) == (1000, 2000)
    assert search.next_round() == (pytest.approx(math.sqrt(1000 * 2000)), BISECT)  # on below it
    assert not search.precision_reached()


def test_the_majority_verdict_of_a_rate_prefers_a_limit_on_a_tie():
    assert majority_verdict(["loss", "ok", "loss"]) == "loss"
    assert majority_verdict(["overhead", "ok"]) == "overhead"


def test_a_start_rate_over_the_limit_halves_down():
    search = RateSearch(settings(start_rate=100_000, max_rounds=20))
    tried = run_search(search, limit=30_000)
    assert tried[:3] == [100_000, 50_000, 25_000]
    assert search.good <= 30_000 < search.bad


def test_the_rounds_are_capped():
    search = RateSearch(settings(start_rate=1, max_rounds=5))
    assert run_search(search, limit=math.inf) == [1, 2, 4, 8, 16]
    assert search.bad is None and not search.precision_reached()


@pytest.mark.property
@given(start=st.floats(1, 1e6), limit=st.floats(1, 1e7), precision=st.floats(1, 100))
def test_the_limit_is_bracketed_to_the_precision(start, limit, precision):
    search = RateSearch(settings(start_rate=start, precision=precision, max_rounds=200))
    run_search(search, limit)
    assert search.bad is not None and search.good is not None and search.precision_reached()
    assert search.good <= limit < search.bad <= search.good * (1 + precision / 100) * (1 + 1e-9)

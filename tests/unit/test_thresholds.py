"""Thresholds of `evt compare`: defaults, a YAML file, --threshold overrides, bad input."""

from __future__ import annotations

import pytest

from evt.analysis import thresholds
from evt.errors import UsageError


def test_defaults_are_the_documented_ones():
    settings = thresholds.parse([])
    assert {k: v for k, v in settings.thresholds.items() if v is not None} == {
        "events_per_s": 10.0,
        "loss_pct": 1.0,
        "tracer_cpu_per_mevents": 25.0,
        "peak_rss_bytes": 20.0,
    }
    assert settings.alpha == 0.05
    assert settings.describe("events_per_s") == "-10%"
    assert settings.describe("loss_pct") == "+1 points"
    assert settings.describe("total_ops_per_s") == "-"


def test_file_then_flags_override_and_off_disables(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("events_per_s: 5\npeak_rss_bytes: 'off'\nalpha: 0.1\nstart_skew_ms: 2\n")
    settings = thresholds.parse(["events_per_s=7.5%", "loss_pct=0"], str(path))
    assert settings.thresholds["events_per_s"] == 7.5  # the flag wins over the file
    assert settings.thresholds["loss_pct"] == 0.0
    assert settings.thresholds["peak_rss_bytes"] is None
    assert settings.thresholds["start_skew_ms"] == 2.0
    assert settings.alpha == 0.1


@pytest.mark.parametrize(
    "items, needle",
    [
        (["cpu=5"], "unknown threshold 'cpu'; valid names: events_per_s, loss_pct"),
        (["events_per_s"], "is not name=value"),
        (["events_per_s="], "is not name=value"),
        (["events_per_s=-5"], "threshold events_per_s='-5' is not a non-negative number"),
        (["loss_pct=lots"], "threshold loss_pct='lots' is not a non-negative number"),
        (["peak_rss_bytes=inf"], "is not a non-negative number"),
        (["alpha=1.5"], "alpha='1.5' is not a significance level"),
        (["alpha=off"], "is not a significance level"),
    ],
)
def test_bad_thresholds_name_the_value_and_the_fix(items, needle):
    with pytest.raises(UsageError, match=None) as info:
        thresholds.parse(items)
    assert needle in str(info.value)


def test_bad_threshold_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        thresholds.parse([], str(tmp_path / "missing.yaml"))
    listing = tmp_path / "list.yaml"
    listing.write_text("- events_per_s\n")
    with pytest.raises(UsageError, match="must be a mapping"):
        thresholds.parse([], str(listing))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("rss: 5\n")
    with pytest.raises(UsageError, match=r"unknown threshold 'rss' in .*unknown.yaml; valid names"):
        thresholds.parse([], str(unknown))

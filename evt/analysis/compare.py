"""`evt compare BASELINE CANDIDATE`: did the candidate get worse?

Rows are matched by scenario + event (+ the swept values of a sweep); the per-run
figures by scenario (+ swept values). With several runs per side each side is reduced
to its median (loss: its worst run, unless `--loss-stat median`) and spread; a change
beyond its threshold is a regression (or an improvement), unless both sides have at least
3 runs and a one-sided Mann-Whitney U test does not find the shift significant: then it is
called noise (evt.analysis.verdicts). Every gated figure is compared or named: a figure
one side lacks is a `missing` row with the reason. Writes compare.csv, compare.md (for a
CI job summary or a PR comment) and compare.json to the output directory.

Exit 1: a regression, a gated figure the candidate lacks where the baseline has it, or a
candidate run that did not end `ok` (`--allow-failed`: a note). Exit 2 (UsageError): input
that cannot be read, nothing in common, or a row whose baseline runs all failed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evt.analysis.thresholds import METRICS, Settings
from evt.analysis.verdicts import (  # noqa: F401  (the verdicts are part of this module's interface)
    IMPROVEMENT,
    INFO,
    MISSING,
    NOISE,
    REGRESSION,
    SAME,
    Judgement,
    judge,
    mann_whitney_p,
    relative_change,
)
from evt.errors import UsageError
from evt.results import rundirs

# the columns of compare.csv (the swept keys go after scenario); new ones are added at the end
COMPARE_COLUMNS = [
    "scope",
    "scenario",
    "event",
    "metric",
    "baseline_median",
    "baseline_min",
    "baseline_max",
    "baseline_n",
    "candidate_median",
    "candidate_min",
    "candidate_max",
    "candidate_n",
    "change",
    "change_unit",
    "threshold",
    "p_value",
    "verdict",
    "stat",
    "baseline_value",
    "candidate_value",
    "reason",
]


@dataclass
class Comparison:
    baseline: rundirs.ResultSet
    candidate: rundirs.ResultSet
    settings: Settings
    keys: list[str]
    rows: pd.DataFrame
    unmatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # baseline runs left out, and why
    failed: list[str] = field(default_factory=list)  # candidate runs that did not end ok, with status and failure
    allow_failed: bool = False

    @property
    def regressions(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"] == REGRESSION]

    @property
    def missing(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"] == MISSING]

    @property
    def lost_figures(self) -> pd.DataFrame:
        """Gated figures the baseline has and the candidate does not: they fail the gate."""
        rows = self.missing
        return rows[rows["threshold"].notna() & (rows["candidate_n"] == 0) & (rows["baseline_n"] > 0)]

    @property
    def failing_runs(self) -> list[str]:
        return [] if self.allow_failed else self.failed

    @property
    def exit_code(self) -> int:
        return 1 if len(self.regressions) or len(self.lost_figures) or self.failing_runs else 0


def describe_key(names: list[str], values: tuple) -> str:
    return " ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))


def _groups(frame: pd.DataFrame, by: list[str]) -> dict[tuple, pd.DataFrame]:
    if frame.empty:
        return {}
    return {tuple(str(v) for v in k): g for k, g in frame.groupby(by, sort=False, dropna=False)}


def missing_reason(name: str, side: str, group: pd.DataFrame) -> str | None:
    """Why some (or all) runs of a side have no value of `name` (None when all have one)."""
    lacking = group[group[name].isna()]
    if lacking.empty:
        return None
    why_column = rundirs.WHY + name
    whys = lacking[why_column] if why_column in lacking.columns else pd.Series([None] * len(lacking))
    by_reason: dict[str, list[str]] = {}
    for why, run_dir in zip(whys, lacking.get("run_dir", pd.Series([""] * len(lacking))), strict=True):
        by_reason.setdefault(str(why) if isinstance(why, str) else f"run did not record {name}", []).append(
            Path(str(run_dir)).name
        )
    if len(by_reason) == 1 and len(lacking) == len(group):
        return f"the {side}'s {next(iter(by_reason))}" + (f" (all {len(group)} runs)" if len(group) > 1 else "")
    parts = "; ".join(f"{why} (run{'s' if len(runs) > 1 else ''} {', '.join(runs)})" for why, runs in by_reason.items())
    if len(lacking) == len(group):
        return f"the {side}'s runs: {parts}"
    return f"{len(lacking)} of {len(group)} {side} runs not counted: {parts}"


def _reasons(name: str, base: pd.DataFrame, cand: pd.DataFrame) -> str | None:
    """Why either side lacks values of `name` (one phrase when both lack them for the same reason)."""
    texts = [
        missing_reason(name, side, group) if name in group.columns else None
        for side, group in (("baseline", base), ("candidate", cand))
    ]
    if texts[0] and texts[1] and texts[0].removeprefix("the baseline's ") == texts[1].removeprefix("the candidate's "):
        return "on both sides, the " + texts[0].removeprefix("the baseline's ")
    return "; ".join(t for t in texts if t) or None


def _row(
    metric: str,
    scope: str,
    by: list[str],
    key: tuple,
    vb: list[float],
    vc: list[float],
    settings: Settings,
    reason: str | None,
) -> dict:
    threshold = settings.thresholds.get(metric)
    stat = settings.stat(metric)
    j = judge(METRICS[metric], vb, vc, threshold, settings.alpha, stat)
    row = dict(zip(by, key, strict=True))
    row.update(
        scope=scope,
        metric=metric,
        baseline_median=j.baseline_median,
        baseline_min=min(vb, default=None),
        baseline_max=max(vb, default=None),
        baseline_n=len(vb),
        candidate_median=j.candidate_median,
        candidate_min=min(vc, default=None),
        candidate_max=max(vc, default=None),
        candidate_n=len(vc),
        change=j.change,
        change_unit=METRICS[metric].change_unit,
        threshold=threshold,
        p_value=j.p_value,
        verdict=j.verdict,
        stat=stat,
        baseline_value=j.baseline_value,
        candidate_value=j.candidate_value,
        reason=reason,
    )
    return row


def matched_rows(
    scope: str,
    by: list[str],
    base: pd.DataFrame,
    cand: pd.DataFrame,
    settings: Settings,
    unmatched: list[str],
    outer: set[tuple] | None,
    quiet: AbstractSet[tuple] = frozenset(),
) -> list[dict]:
    """Compare every group present on both sides; record the ones present on one side only
    (except inside a run group that is itself unmatched: reported once, at run level; and
    the `quiet` ones, already named). A gated figure neither side has is a `missing` row."""
    groups_b, groups_c = _groups(base, by), _groups(cand, by)
    rows = []
    for side, mine, other in (("baseline", groups_b, groups_c), ("candidate", groups_c, groups_b)):
        for key in mine:
            if key not in other and key not in quiet and (outer is None or key[:-1] in outer):
                unmatched.append(f"only in the {side}: {describe_key(by, key)}")
    metrics = [m for m in METRICS.values() if m.scope == scope]
    for key, gb in groups_b.items():
        gc = groups_c.get(key)
        if gc is None:
            continue
        for metric in metrics:
            vb = [float(v) for v in gb[metric.name].dropna()] if metric.name in gb.columns else []
            vc = [float(v) for v in gc[metric.name].dropna()] if metric.name in gc.columns else []
            if not vb and not vc and settings.thresholds.get(metric.name) is None:
                continue  # not gated and nowhere measured
            rows.append(_row(metric.name, scope, by, key, vb, vc, settings, _reasons(metric.name, gb, gc)))
    return rows


def split_runs(runs: pd.DataFrame, side: str) -> tuple[pd.DataFrame, list[str]]:
    """The runs whose figures a side contributes, and a line for each run that did not end
    ok: the baseline keeps only `ok` runs; the candidate its whole runs (ok, loss_exceeded)."""
    if runs.empty:
        return runs, []
    keep = runs["failure"].isna() if side == "baseline" else runs["whole"].astype(bool)
    bad = runs[runs["failure"].notna()]
    verb = "left out" if side == "baseline" else "did not end ok"
    return runs[keep], [f"{side} run {r.run_dir} {verb}: {r.failure}" for r in bad.itertuples()]


def check_baselines(all_base: pd.DataFrame, base: pd.DataFrame, cand: pd.DataFrame, by: list[str]) -> None:
    """A row the candidate has whose baseline runs all failed has no usable baseline: exit 2."""
    usable, candidates = set(_groups(base, by)), set(_groups(cand, by))
    for key, group in _groups(all_base, by).items():
        if key not in usable and key in candidates:
            runs = "; ".join(f"{r.run_dir}: {r.failure}" for r in group.itertuples())
            raise UsageError(
                f"no usable baseline for {describe_key(by, key)}: none of its baseline runs ended ok "
                f"({runs}). Rerun the baseline, or compare against another one."
            )


def _nothing_in_common(
    baseline: rundirs.ResultSet,
    candidate: rundirs.ResultSet,
    by: list[str],
    frames: tuple[pd.DataFrame, pd.DataFrame],
    notes: list[str],
) -> UsageError:
    sides = "; ".join(
        f"{name}: {', '.join(sorted({describe_key(by, k) for k in _groups(f, by)})) or 'no usable run'}"
        for name, f in zip(("baseline", "candidate"), frames, strict=True)
    )
    keys = " with the same swept values" if len(by) > 1 else ""
    return UsageError(
        f"nothing to compare: no scenario{keys} appears in both {baseline.path} and {candidate.path} "
        f"({sides}{'; ' + '; '.join(notes) if notes else ''}). Compare runs of the same scenario."
    )


def compare(
    baseline: rundirs.ResultSet, candidate: rundirs.ResultSet, settings: Settings, allow_failed: bool = False
) -> Comparison:
    keys = list(dict.fromkeys(baseline.sweep_keys + candidate.sweep_keys))
    (all_b, events_b), (all_c, events_c) = rundirs.load(baseline, keys), rundirs.load(candidate, keys)
    runs_b, skipped = split_runs(all_b, "baseline")
    runs_c, failed = split_runs(all_c, "candidate")
    run_by = ["scenario", *keys]
    check_baselines(all_b, runs_b, all_c, run_by)
    # a candidate whose runs all failed is a failed comparison (exit 1), not bad input
    if not set(_groups(runs_b, run_by)) & set(_groups(all_c if not allow_failed else runs_c, run_by)):
        raise _nothing_in_common(baseline, candidate, run_by, (runs_b, runs_c), skipped + failed)
    runs_b = rundirs.apply_cpu_floor(runs_b)  # relative changes are scaled by the baseline's figure
    events_b = _of_runs(events_b, runs_b)
    events_c = _of_runs(events_c, runs_c)
    unmatched: list[str] = []
    failed_only = set(_groups(all_c, run_by)) - set(_groups(runs_c, run_by))
    run_rows = matched_rows("run", run_by, runs_b, runs_c, settings, unmatched, None, failed_only)
    matched = set(_groups(runs_b, run_by)) & set(_groups(runs_c, run_by))
    event_rows = matched_rows("event", [*run_by, "event"], events_b, events_c, settings, unmatched, matched)
    frame = pd.DataFrame(event_rows + run_rows)
    frame = frame.reindex(columns=COMPARE_COLUMNS[:2] + keys + COMPARE_COLUMNS[2:])
    frame["event"] = frame["event"].fillna("")
    return Comparison(baseline, candidate, settings, keys, frame, unmatched, skipped, failed, allow_failed)


def _of_runs(events: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    if events.empty:
        return events
    return events[events["run_dir"].isin(set(runs["run_dir"]) if not runs.empty else set())]


def default_out_dir() -> Path:
    return Path("outputs") / "compare" / (time.strftime("%Y-%m-%d_%H-%M-%S") + "-" + uuid.uuid4().hex[:6])

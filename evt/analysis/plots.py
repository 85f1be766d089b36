"""The figures of `evt report`, drawn with matplotlib's Agg backend (no display needed).

Every function takes plain pandas data, draws one PNG with labelled axes (units in the
labels) and returns its path. Sizes and fonts are chosen to read at 100% zoom.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})
MIB = 2**20
COLORS = {"baseline": "#4c72b0", "candidate": "#dd8452"}


def _save(fig, path: Path, bottom: float = 0.12, right: float = 0.97) -> Path:
    # fixed margins: a layout engine draws every figure twice, and that doubles a report's time
    left = 1.0 / fig.get_figwidth()  # an inch for the tick labels and the axis label, whatever the width
    fig.subplots_adjust(left=left, right=right, top=0.92 if len(fig.axes) == 1 else 0.95, bottom=bottom, hspace=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path


def _legend(ax, count: int) -> None:
    if count:
        ax.legend(fontsize=8, ncol=2 if count > 6 else 1)


def _integer_ticks(ax, values: pd.Series) -> None:
    """Swept counts (instances, ops) get ticks at the values swept, not at 1.2, 1.4, ..."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if len(values) and (values == values.round()).all():
        ticks = sorted(set(values))
        if len(ticks) <= 20:
            ax.set_xticks(ticks)
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def ops_rate(timeseries: pd.DataFrame, units: list[str], path: Path) -> Path:
    """Per-unit ops/s over time since the barrier release."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    t = timeseries["t_s"]
    for unit in units:
        done = timeseries[f"done.{unit}"]
        rate = done.diff() / t.diff()
        ax.plot(t, rate, marker=".", label=unit)
    ax.set(title="Ops per second of each unit", xlabel="time since release (s)", ylabel="ops/s")
    ax.set_ylim(0, max(ax.get_ylim()[1], 1) * 1.1)
    _legend(ax, len(units))
    return _save(fig, path)


def tracer_usage(timeseries: pd.DataFrame, tracer: str, path: Path) -> Path:
    """The tracer's CPU % and RSS over time since the barrier release."""
    fig, (cpu, rss) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    cpu.plot(timeseries["t_s"], timeseries["tracer_cpu_pct"], marker=".", color="#c44e52")
    cpu.set(title=f"Tracer {tracer}: CPU", ylabel="CPU (% of one core)")
    cpu.set_ylim(bottom=0)
    rss.plot(timeseries["t_s"], timeseries["tracer_rss_bytes"] / MIB, marker=".", color="#55a868")
    rss.set(title=f"Tracer {tracer}: resident memory", xlabel="time since release (s)", ylabel="RSS (MiB)")
    rss.set_ylim(0, max(rss.get_ylim()[1], 1) * 1.1)
    return _save(fig, path)


def expected_observed(events: pd.DataFrame, path: Path) -> Path:
    """Expected vs observed events per event (grouped bars)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(events) + 2), 4.5))
    x = range(len(events))
    width = 0.4
    bars = ax.bar([i - width / 2 for i in x], events["expected"], width, label="expected", color="#8c8c8c")
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=8)
    observed = pd.to_numeric(events["observed"], errors="coerce")
    bars = ax.bar([i + width / 2 for i in x], observed.fillna(0), width, label="observed", color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,.0f}" if pd.notna(v) else "not counted" for v in observed], fontsize=8)
    ax.set_xticks(list(x), events["unit"], rotation=20, ha="right")
    positive = pd.concat([events["expected"], observed]).dropna()
    positive = positive[positive > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set(title="Expected vs observed events per event", ylabel="events")
    if ax.get_yscale() == "linear":
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room for the labels and the legend
    ax.legend()
    return _save(fig, path, bottom=0.2)  # room for the slanted event names


def _x_values(values: pd.Series) -> tuple[pd.Series, bool]:
    numeric = pd.to_numeric(values, errors="coerce")
    return (numeric, True) if numeric.notna().all() else (values.astype(str), False)


def sweep_figures(events: pd.DataFrame, runs: pd.DataFrame, key: str, others: list[str], path: Path) -> Path:
    """events/s, loss % (one line per event) and tracer CPU per million events against a swept key."""
    fig, axes = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    panels = [
        (axes[0], events, "events_per_s", "events/s", "Events per second"),
        (axes[1], events, "loss_pct", "loss (%)", "Events lost"),
        (axes[2], runs, "tracer_cpu_per_mevents", "tracer CPU (s per million events)", "Tracer CPU per million events"),
    ]
    for ax, frame, column, ylabel, title in panels:
        lines = 0
        series_by = (["event"] if "event" in frame.columns else []) + others
        groups = frame.groupby(series_by, sort=False) if series_by else [((), frame)]
        for name, group in groups:
            x, numeric = _x_values(group[key])
            order = x.sort_values().index if numeric else group.index
            y = pd.to_numeric(group.loc[order, column], errors="coerce")
            if y.notna().any():
                label = " ".join(str(n) for n in name) or "run"
                ax.plot(x.loc[order], y, marker="o", label=label)
                lines += 1
        ax.set(title=f"{title} against {key}", ylabel=ylabel)
        ax.set_ylim(bottom=0)
        if lines == 0:
            ax.text(
                0.5,
                0.5,
                "not recorded in these runs, or under 0.2 s of tracer CPU per run\n"
                "(too coarse to compare: CPU time is counted in 10 ms ticks)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        _legend(ax, lines)
    axes[-1].set_xlabel(key)
    _integer_ticks(axes[-1], runs[key] if key in runs.columns else events[key])
    return _save(fig, path, bottom=0.06)


def compare_bars(rows: pd.DataFrame, metric: str, ylabel: str, path: Path) -> Path:
    """One compared figure: baseline vs candidate (medians, min–max as error bars) per matched row."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 3), 4.5))
    width = 0.4
    x = list(range(len(rows)))
    for offset, side in ((-width / 2, "baseline"), (width / 2, "candidate")):
        median = rows[f"{side}_median"].astype(float)
        low = (median - rows[f"{side}_min"].astype(float)).clip(lower=0)
        high = (rows[f"{side}_max"].astype(float) - median).clip(lower=0)
        ax.bar([i + offset for i in x], median, width, yerr=[low, high], capsize=3, label=side, color=COLORS[side])
    ax.set_xticks(x, rows["label"], rotation=20 if len(rows) > 3 else 0, ha="right" if len(rows) > 3 else "center")
    for tick, verdict in zip(ax.get_xticklabels(), rows["verdict"], strict=True):
        if verdict == "regression":  # regressed rows: red, bold labels
            tick.set_color("#c44e52")
            tick.set_fontweight("bold")
    ax.set(title=f"{metric}: baseline vs candidate (regressions in red)", ylabel=ylabel)
    ax.set_ylim(0, max(ax.get_ylim()[1], 1e-9) * 1.15)  # room for the legend above the bars
    ax.legend()
    return _save(fig, path, bottom=0.3 if len(rows) > 3 else 0.12)


def compare_lines(rows: pd.DataFrame, metric: str, ylabel: str, key: str, path: Path) -> Path:
    """One compared figure against a numeric swept key: a line per side (and event)."""
    fig, ax = plt.subplots(figsize=(12, 4.5))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    single = rows["event"].nunique() == 1
    marked = False
    for index, (event, group) in enumerate(rows.groupby("event", sort=False)):
        group = group.assign(_x=pd.to_numeric(group[key])).sort_values("_x")
        for side, style in (("baseline", "-"), ("candidate", "--")):  # a colour per event, a dash per side
            ax.plot(
                group["_x"],
                group[f"{side}_median"].astype(float),
                style,
                marker="o",
                label=f"{side} {event}".strip(),
                color=COLORS[side] if single else cycle[index % len(cycle)],
            )
        regressed = group[group["verdict"] == "regression"]
        if len(regressed):
            ax.scatter(
                regressed["_x"],
                regressed["candidate_median"].astype(float),
                marker="x",
                s=80,
                color="#c44e52",
                zorder=3,
                label="regression" if not marked else None,
            )
            marked = True
    ax.set(title=f"{metric}: baseline (solid) vs candidate (dashed) against {key}", xlabel=key, ylabel=ylabel)
    ax.set_ylim(bottom=0)
    _integer_ticks(ax, rows[key])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the plot, never over a line
    return _save(fig, path, right=0.72)


# bench.png: each verdict its marker; a confirmation round (repeat > 0) is drawn hollow
VERDICT_STYLE = {
    "ok": ("o", "#55a868"),
    "loss": ("X", "#c44e52"),
    "overhead": ("^", "#dd8452"),
    "generator": ("s", "#8172b3"),
}


def _rate_axis(axis) -> None:
    """A log axis of events/s labelled 10k, 20k, 50k, 100k, ..."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _verdict_points(ax, frame: pd.DataFrame, column: str) -> None:
    """One scatter per verdict and kind of round, so the legend names both; a rate's
    confirmation rounds are drawn a little to the right of its first, to be seen."""
    values = pd.to_numeric(frame[column], errors="coerce")
    repeats = pd.to_numeric(frame["repeat"], errors="coerce").fillna(0)
    x = frame["target_eps"].astype(float) * 1.015**repeats
    for verdict, (marker, color) in VERDICT_STYLE.items():
        for confirming in (False, True):
            chosen = (frame["verdict"] == verdict) & ((repeats > 0) == confirming) & values.notna()
            if chosen.any():
                ax.scatter(
                    x[chosen],
                    values[chosen],
                    marker=marker,
                    s=60,
                    zorder=3,
                    color="none" if confirming else color,
                    edgecolors=color,
                    linewidths=1.5,
                    label=f"{verdict}{' (confirmation)' if confirming else ''}",
                )


def _bench_rates(ax, frame: pd.DataFrame, summary: dict) -> None:
    """Achieved events/s with and without the tracer against the target: a traced point
    under the reach line beside a baseline on it is `overhead`; both under it, `generator`."""
    target = frame["target_eps"].astype(float)
    span = [target.min() / 1.2, target.max() * 1.2]
    reach = summary["settings"].get("reach", 0.95)
    ax.plot(span, span, color="0.5", linestyle="-", linewidth=1, label="target")
    ax.plot(
        span,
        [reach * x for x in span],
        color="0.5",
        linestyle=":",
        linewidth=1,
        label=f"reached ({reach:.0%} of the target)",
    )
    shifted = target * 1.015 ** pd.to_numeric(frame["repeat"], errors="coerce").fillna(0)  # as _verdict_points
    ax.scatter(
        shifted,
        pd.to_numeric(frame["baseline_eps"], errors="coerce"),
        marker="_",
        s=200,
        color="#4c72b0",
        zorder=2,
        label="without the tracer",
    )
    _verdict_points(ax, frame, "achieved_eps")
    for number, record in enumerate(summary.get("unstable") or []):
        ax.axvline(
            record["target_eps"] * 1.015,
            color="#ccb974",
            linewidth=10,
            alpha=0.4,
            zorder=1,
            label=None if number else "unstable rate (its rounds disagree)",
        )
    if summary["max_sustainable_eps"]:
        ax.scatter(
            [summary["target_eps_at_max"]],
            [summary["max_sustainable_eps"]],
            marker="*",
            s=300,
            color="#4c72b0",
            edgecolors="black",
            zorder=4,
            label=f"max sustainable {summary['max_sustainable_eps']:,.0f} ev/s",
        )
    ax.set(
        xscale="log",
        yscale="log",
        title="Events/s achieved with the tracer (by verdict) and without it",
        xlabel="target events/s",
        ylabel="achieved events/s",
    )
    _rate_axis(ax.xaxis)
    _rate_axis(ax.yaxis)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))


def bench_rounds(frame: pd.DataFrame, summary: dict, path: Path) -> Path:
    """bench.png: achieved events/s against the target (top), loss % and tracer CPU % of a
    core against the target (below); every point marked by its round's verdict."""
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1])
    rates, loss_ax, cpu_ax = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    frame = frame.sort_values(["target_eps", "round"])
    if len(frame):
        _bench_rates(rates, frame, summary)
        panels = ((loss_ax, "loss_pct", "loss (%)"), (cpu_ax, "tracer_cpu_pct", "tracer CPU (% of one core)"))
        for ax, column, ylabel in panels:
            _verdict_points(ax, frame, column)
            ax.set(xscale="log", xlabel="target events/s", ylabel=ylabel, title=ylabel.split(" (")[0] + " per round")
            ax.set_xlim(rates.get_xlim())  # the same rates as the panel above, with points or without
            _rate_axis(ax.xaxis)
            ax.set_ylim(bottom=0)
            if pd.to_numeric(frame[column], errors="coerce").isna().all():
                ax.text(0.5, 0.5, "not measured by this tracer", ha="center", va="center", transform=ax.transAxes)
        limit = summary["settings"]["max_loss_pct"]
        loss_ax.axhline(limit, color="#c44e52", linestyle=":", label="loss limit")
        loss_ax.set_ylim(0, max(loss_ax.get_ylim()[1], 1.5 * limit, 0.1))
        loss_ax.legend(fontsize=8, handles=loss_ax.get_legend_handles_labels()[0][-1:])
    else:
        rates.text(0.5, 0.5, "no round completed", ha="center", va="center", transform=rates.transAxes)
    limited = (
        f", limited by {summary['limited_by']} at {summary['first_bad_eps']:,.0f} ev/s" if summary["limited_by"] else ""
    )
    noisy = (
        "; NOISY machine (other work up to {:.2f} cores)".format(summary["other_cpu_cores_max"])
        if summary.get("noisy")
        else ""
    )
    fig.suptitle(f"evt bench: tracer {summary['tracer']}{limited}{noisy}")
    fig.subplots_adjust(left=0.08, right=0.74, top=0.92, bottom=0.08, hspace=0.35, wspace=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path

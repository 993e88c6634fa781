"""The report's charts of how past forecasts did, from gold_forecast_accuracy rows: the accuracy trend with the alert
thresholds, and forecast vs actual of past origins; both show the track record (step 2's backtest) labelled as such.

Input rows: gold_forecast_accuracy: queue, date, horizon_day, method, actual, p50, is_open.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common.chart_frame import (
    ACTUAL,
    ALL_QUEUES,
    DPI,
    FORECAST,
    NOTE,
    THRESHOLD,
    WARNING,
    day_start,
    empty_chart,
    new_figure,
    panel_order,
    plain_text,
    save_png,
    thousands,
    titles,
)

PUBLISHED = ("lightgbm", "ensemble", "seasonal_naive")  # gold_forecast_accuracy methods of the forecast that was published
BACKTEST = "backtest_lightgbm"  # the track record: step 2's backtest of the model (evaluation.BACKTEST_MODEL)


def nearest_backtest(rows: pd.DataFrame) -> pd.DataFrame:
    """The track record's points as a nightly reader sees them: per queue and date, the backtest row of the latest
    origin before that date (origins are a week apart, so 1-7 days ahead, the last week up to 14); rows of a
    relabelled aggregate queue keep every folded queue's row of that origin.

    From gold_forecast_accuracy rows; only method backtest_lightgbm is kept. Same columns as given.
    """
    if rows.empty or "method" not in rows.columns:
        return rows.iloc[:0]
    bt = rows.loc[rows["method"] == BACKTEST]
    # Every row of the nearest origin, not one: queues folded into "All other queues (K)" share a label and a date
    # (the backtest's origins are the same for every queue), and all of them are summed.
    nearest = bt["horizon_day"] == bt.groupby(["queue", "date"])["horizon_day"].transform("min")
    return bt.loc[nearest].sort_values(["queue", "date"], kind="stable").reset_index(drop=True)


def _scored(rows: pd.DataFrame, horizon_day: int | None, first: pd.Timestamp, end: pd.Timestamp,
            methods: tuple[str, ...] = PUBLISHED) -> pd.DataFrame:
    """Forecast points of `methods` made `horizon_day` days ahead (None: any), dated in [first, end), on open days
    with calls."""
    r = rows.loc[(rows["date"] >= first) & (rows["date"] < end) & (rows["actual"] > 0)]
    if horizon_day is not None:
        r = r.loc[r["horizon_day"] == horizon_day]
    if "method" in r.columns:
        r = r.loc[r["method"].isin(methods)]
    if "is_open" in r.columns:
        r = r.loc[r["is_open"].astype(bool)]
    return r.assign(err=(r["p50"] - r["actual"]).astype(float), abs_err=(r["p50"] - r["actual"]).abs().astype(float))


def _ratios(r: pd.DataFrame, key: str) -> pd.DataFrame:
    parts = []
    for keys, label in (([key, "queue"], None), ([key], ALL_QUEUES)):
        g = r.groupby(keys, as_index=False).agg(actual=("actual", "sum"), err=("err", "sum"), abs_err=("abs_err", "sum"),
                                                days=("date", "nunique"))
        parts.append(g if label is None else g.assign(queue=label))
    out = pd.concat(parts, ignore_index=True)
    return out.assign(wmape=out["abs_err"] / out["actual"], bias=out["err"] / out["actual"])


def accuracy_trend(rows: pd.DataFrame, as_of: date, horizon_day: int | None = 1, days: int = 56,
                   methods: tuple[str, ...] = PUBLISHED) -> pd.DataFrame:
    """One row per date per queue, plus one per date for "All queues": the daily error the alert rules judge.

    From gold_forecast_accuracy rows: the published forecast (lightgbm or seasonal_naive, not the benchmarks)
    made `horizon_day` days ahead, for dates in the `days` days before `as_of`, open days with calls only
    (closed days are 0 on both sides and would flatter the ratio). Per queue wmape = |p50 - actual| / actual
    (that day's MAPE); for all queues sum |p50 - actual| / sum actual. bias = (p50 - actual) / actual, summed
    the same way (positive = over-forecast). Columns: date, queue, actual, wmape, bias.
    """
    cols = ["date", "queue", "actual", "wmape", "bias"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    r = _scored(rows, horizon_day, day_start(as_of) - pd.Timedelta(days=days), day_start(as_of), methods)
    if r.empty:
        return pd.DataFrame(columns=cols)
    return _ratios(r, "date")[cols].sort_values(["queue", "date"]).reset_index(drop=True)


def weekly_bias(rows: pd.DataFrame, as_of: date, horizon_day: int | None = 1, weeks: int = 8,
                methods: tuple[str, ...] = PUBLISHED) -> pd.DataFrame:
    """One row per complete Monday–Sunday week per queue (plus "All queues"): bias = sum(p50 - actual) / sum actual.

    Same points as `accuracy_trend` (published forecast, `horizon_day` ahead, open days), over the last `weeks`
    complete weeks before `as_of`: the quantity the weekly bias alert judges. Columns: week (its Monday),
    queue, actual, bias, days.
    """
    cols = ["week", "queue", "actual", "bias", "days"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    this_monday = day_start(as_of) - pd.Timedelta(days=day_start(as_of).weekday())
    r = _scored(rows, horizon_day, this_monday - pd.Timedelta(weeks=weeks), this_monday, methods)
    if r.empty:
        return pd.DataFrame(columns=cols)
    r = r.assign(week=r["date"] - pd.to_timedelta(r["date"].dt.day_of_week, unit="D"))
    return _ratios(r, "week")[cols].sort_values(["queue", "week"]).reset_index(drop=True)


@plain_text
def accuracy_trend_chart(daily: pd.DataFrame, weekly: pd.DataFrame, as_of: date, path: Path, horizon_day: int = 1,
                         mape_thresholds: tuple[float, float] | None = None,
                         bias_thresholds: tuple[float, float] | None = None,
                         backtest_daily: pd.DataFrame | None = None,
                         backtest_weekly: pd.DataFrame | None = None) -> Path:
    """Daily error (top) and weekly bias (bottom) per queue and for all queues, with the alert thresholds.

    `mape_thresholds` and `bias_thresholds` are (warning, critical), drawn dashed amber and red (bias at +-).
    `backtest_daily` / `backtest_weekly`: the same measures of the track record (`nearest_backtest` rows), drawn
    dashed and labelled "backtest", so night 1 shows accuracy and later nights show it beside the scored forecasts.
    """
    import matplotlib.dates as mdates  # on use: `5_report.py --help` must not wait for matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    bd = backtest_daily if backtest_daily is not None else daily.iloc[:0]
    bw = backtest_weekly if backtest_weekly is not None else weekly.iloc[:0]
    ahead = "same-night forecast" if horizon_day == 1 else f"forecast made {horizon_day} days ahead"
    title = f"Forecast accuracy of the {ahead}, up to {as_of:%a %d %b %Y}"
    if daily.empty and weekly.empty and not (bd.empty and bw.empty):
        title = f"Forecast accuracy: backtest (no scored forecasts yet), up to {as_of:%a %d %b %Y}"
    subtitle = ("Top: each open day's absolute error |p50 - actual| / actual (all queues: weighted by volume). "
                "Bottom: bias per Mon–Sun week, + = over-forecast. Thin lines = queues, bold = all queues; "
                "dashed lines = alert thresholds (amber warning, red critical).")
    if not (bd.empty and bw.empty):
        subtitle += (" Dotted = backtest (step 2 replayed the model on past weeks, each weekly origin trained only on "
                     "the days before it; each day from the latest origin before it).")
    if daily.empty and weekly.empty and bd.empty and bw.empty:
        return empty_chart(path, title, subtitle, "No accuracy yet: a forecast is scored once its days have actuals "
                                             "(4_evaluate.py). The first points appear the night after the first forecast.")
    fig = Figure(figsize=(14, 7.5), dpi=DPI, layout="constrained")
    ax_w, ax_b = fig.subplots(2, 1)
    titles(fig, title, subtitle)
    queues = panel_order((set(daily["queue"]) | set(weekly["queue"]) | set(bd["queue"]) | set(bw["queue"]))
                         - {ALL_QUEUES})
    colors = _queue_colors(queues)
    for queue in [*queues, ALL_QUEUES]:
        style = ({"color": "black", "lw": 2.6, "zorder": 5} if queue == ALL_QUEUES
                 else {"color": colors[queue], "lw": 1.0, "alpha": 0.85})
        d = daily.loc[daily["queue"] == queue].sort_values("date")
        w = weekly.loc[weekly["queue"] == queue].sort_values("week")
        ax_w.plot(d["date"], d["wmape"], marker="o", ms=2.5, label=queue, **style)
        ax_b.plot(w["week"] + pd.Timedelta(days=3), w["bias"], marker="o", ms=4, label=queue, **style)
        d = bd.loc[bd["queue"] == queue].sort_values("date")
        w = bw.loc[bw["queue"] == queue].sort_values("week")
        label = "backtest, all queues" if queue == ALL_QUEUES else None
        if len(d):
            ax_w.plot(d["date"], d["wmape"], ls=":", marker=".", label=label, **style)
        if len(w):
            ax_b.plot(w["week"] + pd.Timedelta(days=3), w["bias"], ls=":", marker=".", label=label, **style)
    for ax, thresholds, signs in ((ax_w, mape_thresholds, (1,)), (ax_b, bias_thresholds, (1, -1))):
        if thresholds is None:
            continue
        for value, color, name in zip(thresholds, (WARNING, THRESHOLD), ("warning", "critical")):
            for sign in signs:
                ax.axhline(sign * value, color=color, ls="--", lw=1.3,
                           label=f"{name} {'±' if len(signs) == 2 else ''}{value:.0%}" if sign == 1 else None)
    ax_b.axhline(0, color="#999999", lw=0.8)
    ax_w.set_ylabel("daily error (lower is better)")
    ax_b.set_ylabel("weekly bias (+ = over-forecast)")
    # Room above the highest point and the critical line, so neither sits on the frame; bias symmetric around 0.
    top = np.nanmax([*daily["wmape"].astype(float), *bd["wmape"].astype(float), (mape_thresholds or (0, 0))[1], 0.01])
    ax_w.set_ylim(0, top * 1.15)
    reach = np.nanmax([*weekly["bias"].abs().astype(float), *bw["bias"].abs().astype(float),
                       (bias_thresholds or (0, 0))[1], 0.01])
    ax_b.set_ylim(-reach * 1.2, reach * 1.2)
    # The x range starts where scoring starts (young installs), at most 8 weeks back, so the points are not squeezed.
    scored_from = min([*daily["date"], *weekly["week"], *bd["date"], *bw["week"]], default=day_start(as_of))
    first = max(day_start(as_of) - pd.Timedelta(days=57), scored_from - pd.Timedelta(days=2))
    real_from = min([*daily["date"], *weekly["week"]], default=None)  # the backtest is no scored forecast
    since = ("" if real_from is None or real_from - pd.Timedelta(days=2) <= day_start(as_of) - pd.Timedelta(days=57)
             else f"; no scored forecasts before {real_from:%d %b}")
    if real_from is None and not (bd.empty and bw.empty):
        since = "; no scored forecasts yet (dotted: the backtest)"
    for ax, empty, what in ((ax_w, daily.empty and bd.empty, "No scored days yet."),
                            (ax_b, weekly.empty and bw.empty, "No complete week scored yet.")):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.grid(color="#e6e6e6")
        ax.set_axisbelow(True)
        if empty:
            ax.text(0.5, 0.5, what, transform=ax.transAxes, **NOTE)
        else:
            handles, labels = ax.get_legend_handles_labels()
            keep = [(h, lab) for h, lab in zip(handles, labels) if lab.startswith(("warning", "critical"))]
            if keep:
                ax.legend(*zip(*keep), loc="upper left", fontsize=8, frameon=False, ncols=2)
    ax_w.set_xlim(first, day_start(as_of))
    ax_b.set_xlim(first, day_start(as_of))
    ax_b.set_xlabel(f"x ticks = Mondays; weekly bias is drawn at mid-week{since}")
    handles = [h for h, lab in zip(*ax_w.get_legend_handles_labels()) if not lab.startswith(("warning", "critical"))]
    labels = [lab for lab in ax_w.get_legend_handles_labels()[1] if not lab.startswith(("warning", "critical"))]
    if not handles:
        handles, labels = ax_b.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    return save_png(fig, path)


def _queue_colors(queues: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(queues) <= 10 else "tab20"]
    return {q: cmap(i % cmap.N) for i, q in enumerate(queues)}


# --- forecast vs actual of past origins ------------------------------------------------------------------

def past_forecasts(rows: pd.DataFrame, horizons: tuple[int, ...] = (1, 7)) -> pd.DataFrame:
    """One row per queue per date per line: what was forecast for that day, as the chart of past origins draws it.

    From gold_forecast_accuracy rows (queues may be relabelled "All other queues (K)": they are summed): the
    published forecast made each of `horizons` days ahead (line "1 day ahead", "7 days ahead"), and the track
    record (line "backtest", `nearest_backtest`). Columns: queue, date, line, p10, p50, p90.
    """
    cols = ["queue", "date", "line", "p10", "p50", "p90"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    published = rows.loc[rows["method"].isin(PUBLISHED) & rows["horizon_day"].isin(list(horizons))]
    published = published.assign(line=published["horizon_day"].map(_ahead_label))
    parts = [published, nearest_backtest(rows).assign(line="backtest")]
    both = pd.concat([p.loc[:, ["queue", "date", "line", "p10", "p50", "p90"]] for p in parts], ignore_index=True)
    if both.empty:
        return pd.DataFrame(columns=cols)
    return both.groupby(["queue", "date", "line"], as_index=False)[["p10", "p50", "p90"]].sum().loc[:, cols]


def _ahead_label(horizon_day: int) -> str:
    return f"{int(horizon_day)} day{'s' if int(horizon_day) != 1 else ''} ahead"


_LINE_STYLE = {"1 day ahead": {"color": FORECAST, "lw": 1.6, "ls": "-"},
               "7 days ahead": {"color": WARNING, "lw": 1.4, "ls": "--"},
               "backtest": {"color": "#777777", "lw": 1.4, "ls": ":"}}


@plain_text
def past_forecasts_chart(actuals: pd.DataFrame, lines: pd.DataFrame, as_of: date, path: Path, weeks: int = 6) -> Path:
    """Per queue: the last `weeks` weeks of actual calls/day against what was forecast for those days beforehand.

    `actuals`: silver_daily rows; `lines`: `past_forecasts`. The band is the p10–p90 of the forecast made 1 day
    ahead (of the backtest while there is none), so a reader sees how often the actual fell inside it.
    """
    import matplotlib.dates as mdates

    start = day_start(as_of) - pd.Timedelta(weeks=weeks)
    act = actuals.loc[(actuals["date"] >= start) & (actuals["date"] < day_start(as_of))]
    past = lines.loc[(lines["date"] >= start) & (lines["date"] < day_start(as_of))]
    title = f"Forecast vs actual, the last {weeks} weeks up to {as_of:%a %d %b %Y}"
    subtitle = ("Dark line = actual calls/day; blue = forecast p50 made 1 day ahead, with its p10–p90 band; orange "
                "dashed = made 7 days ahead; grey dotted = backtest (step 2's replay of the model on past weeks, "
                "each origin trained only on the days before it). Closed days are left out.")
    queues = panel_order(set(past["queue"]))
    if not queues:
        return empty_chart(path, title, subtitle, "No past forecasts with actuals yet: the first points appear the "
                                                  "night after the first forecast (or after step 2's backtest).")
    fig, axes = new_figure(len(queues), 2.3, title, subtitle)
    for ax, queue in zip(axes, queues):
        a = act.loc[act["queue"] == queue].sort_values("date")
        closed = ~a["is_open"].astype(bool) if "is_open" in a.columns else pd.Series(False, index=a.index)
        ax.plot(a["date"], a["offered"].where(~closed), color=ACTUAL, lw=1.3, marker="o", ms=2.2, label="actual")
        q = past.loc[past["queue"] == queue]
        band = next((g for name in ("1 day ahead", "backtest")
                     for g in [q.loc[q["line"] == name].sort_values("date")] if len(g)), q.iloc[:0])
        if len(band):
            shown = band["p90"] > 0
            ax.fill_between(band["date"], band["p10"].where(shown), band["p90"].where(shown), color=FORECAST,
                            alpha=0.15, lw=0, label="p10–p90")
        for name, style in _LINE_STYLE.items():
            g = q.loc[q["line"] == name].sort_values("date")
            if len(g):
                ax.plot(g["date"], g["p50"].where(g["p90"] > 0), label=f"p50 {name}", **style)
        ax.set_title(queue, loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        thousands(ax)
        ax.grid(axis="y", color="#e6e6e6")
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.tick_params(axis="x", labelbottom=True, labelsize=8)
    axes[0].set_xlim(start - pd.Timedelta(days=1), day_start(as_of))
    handles: dict = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = list(handles)
    fig.legend([handles[lab] for lab in labels], labels, loc="outside upper right", ncols=5, fontsize=9, frameon=False)
    return save_png(fig, path)

"""The report's accuracy chart: how past forecasts did, from gold_forecast_accuracy rows, with the alert thresholds.

Input rows: gold_forecast_accuracy: queue, date, horizon_day, method, actual, p50, is_open.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from common.chart_frame import (
    ALL_QUEUES,
    DPI,
    NOTE,
    THRESHOLD,
    WARNING,
    day_start,
    empty_chart,
    panel_order,
    plain_text,
    save_png,
    titles,
)

PUBLISHED = ("lightgbm", "seasonal_naive")  # gold_forecast_accuracy methods of the forecast that was published


def _scored(rows: pd.DataFrame, horizon_day: int, first: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Published forecast points made `horizon_day` days ahead, dated in [first, end), on open days with calls."""
    r = rows.loc[(rows["date"] >= first) & (rows["date"] < end) & (rows["horizon_day"] == horizon_day)
                 & (rows["actual"] > 0)]
    if "method" in r.columns:
        r = r.loc[r["method"].isin(PUBLISHED)]
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


def accuracy_trend(rows: pd.DataFrame, as_of: date, horizon_day: int = 1, days: int = 56) -> pd.DataFrame:
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
    r = _scored(rows, horizon_day, day_start(as_of) - pd.Timedelta(days=days), day_start(as_of))
    if r.empty:
        return pd.DataFrame(columns=cols)
    return _ratios(r, "date")[cols].sort_values(["queue", "date"]).reset_index(drop=True)


def weekly_bias(rows: pd.DataFrame, as_of: date, horizon_day: int = 1, weeks: int = 8) -> pd.DataFrame:
    """One row per complete Monday–Sunday week per queue (plus "All queues"): bias = sum(p50 - actual) / sum actual.

    Same points as `accuracy_trend` (published forecast, `horizon_day` ahead, open days), over the last `weeks`
    complete weeks before `as_of`: the quantity the weekly bias alert judges. Columns: week (its Monday),
    queue, actual, bias, days.
    """
    cols = ["week", "queue", "actual", "bias", "days"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    this_monday = day_start(as_of) - pd.Timedelta(days=day_start(as_of).weekday())
    r = _scored(rows, horizon_day, this_monday - pd.Timedelta(weeks=weeks), this_monday)
    if r.empty:
        return pd.DataFrame(columns=cols)
    r = r.assign(week=r["date"] - pd.to_timedelta(r["date"].dt.day_of_week, unit="D"))
    return _ratios(r, "week")[cols].sort_values(["queue", "week"]).reset_index(drop=True)


@plain_text
def accuracy_trend_chart(daily: pd.DataFrame, weekly: pd.DataFrame, as_of: date, path: Path, horizon_day: int = 1,
                         mape_thresholds: tuple[float, float] | None = None,
                         bias_thresholds: tuple[float, float] | None = None) -> Path:
    """Daily error (top) and weekly bias (bottom) per queue and for all queues, with the alert thresholds.

    `mape_thresholds` and `bias_thresholds` are (warning, critical), drawn dashed amber and red (bias at +-).
    """
    ahead = "same-night forecast" if horizon_day == 1 else f"forecast made {horizon_day} days ahead"
    title = f"Forecast accuracy of the {ahead}, up to {as_of:%a %d %b %Y}"
    subtitle = ("Top: each open day's absolute error |p50 - actual| / actual (all queues: weighted by volume). "
                "Bottom: bias per Mon–Sun week, + = over-forecast. Thin lines = queues, bold = all queues; "
                "dashed lines = alert thresholds (amber warning, red critical).")
    if daily.empty and weekly.empty:
        return empty_chart(path, title, subtitle, "No accuracy yet: a forecast is scored once its days have actuals "
                                             "(4_evaluate.py). The first points appear the night after the first forecast.")
    fig = Figure(figsize=(14, 7.5), dpi=DPI, layout="constrained")
    ax_w, ax_b = fig.subplots(2, 1)
    titles(fig, title, subtitle)
    queues = panel_order((set(daily["queue"]) | set(weekly["queue"])) - {ALL_QUEUES})
    colors = _queue_colors(queues)
    for queue in [*queues, ALL_QUEUES]:
        style = ({"color": "black", "lw": 2.6, "zorder": 5} if queue == ALL_QUEUES
                 else {"color": colors[queue], "lw": 1.0, "alpha": 0.85})
        d = daily.loc[daily["queue"] == queue].sort_values("date")
        w = weekly.loc[weekly["queue"] == queue].sort_values("week")
        ax_w.plot(d["date"], d["wmape"], marker="o", ms=2.5, label=queue, **style)
        ax_b.plot(w["week"] + pd.Timedelta(days=3), w["bias"], marker="o", ms=4, label=queue, **style)
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
    top = np.nanmax([*daily["wmape"].astype(float), (mape_thresholds or (0, 0))[1], 0.01])
    ax_w.set_ylim(0, top * 1.15)
    reach = np.nanmax([*weekly["bias"].abs().astype(float), (bias_thresholds or (0, 0))[1], 0.01])
    ax_b.set_ylim(-reach * 1.2, reach * 1.2)
    # The x range starts where scoring starts (young installs), at most 8 weeks back, so the points are not squeezed.
    scored_from = min([*daily["date"], *weekly["week"]], default=day_start(as_of))
    first = max(day_start(as_of) - pd.Timedelta(days=57), scored_from - pd.Timedelta(days=2))
    since = f"; no scored forecasts before {scored_from:%d %b}" if first > day_start(as_of) - pd.Timedelta(days=57) else ""
    for ax, empty, what in ((ax_w, daily.empty, "No scored days yet."), (ax_b, weekly.empty, "No complete week scored yet.")):
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
    cmap = colormaps["tab10" if len(queues) <= 10 else "tab20"]
    return {q: cmap(i % cmap.N) for i, q in enumerate(queues)}

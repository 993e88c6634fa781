"""The report's charts: frames in, one PNG file out; no database, no global pyplot state.

The accuracy chart is `plots_accuracy.py`. Every chart is one figure with one panel per queue (small multiples, 1-3
columns, each panel on its own y scale so a 50-call queue is as readable as a
5,000-call one) and says in its title what it shows and for which as-of. A
chart whose data is missing still gets drawn, with the reason written where
the data would be, so the email never silently drops a picture.

Input frames (columns as read from the tables):
- actuals: silver_daily rows: queue, date, offered (calls/day), is_open
- forecast: gold_forecast_daily rows of one origin: queue, date, p10, p50, p90, method, fallback_reason
- staffing: gold_staffing_interval rows of one origin: queue, interval_start, staff_p50
"""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common.chart_frame import (
    ACTUAL,
    FORECAST,
    NOTE,
    PAST_SPANS,
    day_start,
    empty_chart,
    new_figure,
    panel_grid,
    panel_order,
    plain_text,
    save_png,
    thousands,
)
from common.forecast_frame import MODEL_METHODS


def _span_label(first: pd.Timestamp, last: pd.Timestamp) -> str:
    return f"{first:%d %b}–{last:%d %b}"


# --- forecast fan ---------------------------------------------------------------------------------------

@plain_text
def forecast_fan_chart(actuals: pd.DataFrame, forecast: pd.DataFrame, as_of: date, path: Path,
                       weeks: int = 8) -> Path:
    """Per queue: the last `weeks` weeks of offered calls/day, then the forecast p50 with its p10–p90 band.

    Closed days (silver_daily.is_open false; forecast p90 = 0) are grey columns and break the lines, so the
    weekly shape of open days is what the eye follows, not a drop to zero every weekend.
    """
    import matplotlib.dates as mdates  # on use: `5_report.py --help` must not wait for matplotlib

    start = day_start(as_of) - pd.Timedelta(weeks=weeks)
    act = actuals.loc[(actuals["date"] >= start) & (actuals["date"] < day_start(as_of))]
    queues = panel_order(set(act["queue"]) | set(forecast["queue"]))
    title = (f"Daily calls per queue: last {weeks} weeks and the {_horizon(forecast)}-day forecast "
             f"from {as_of:%a %d %b %Y}")
    subtitle = ("Dark line = actual offered calls/day (silver_daily); blue line = forecast median (p50); blue band = "
                "p10–p90 (8 days in 10 should fall inside); grey columns = closed days; x ticks = Mondays.")
    if not queues:
        return empty_chart(path, title, subtitle, "No actuals in silver_daily and no forecast for this origin.")
    fig, axes = new_figure(len(queues), 2.6, title, subtitle)
    for ax, queue in zip(axes, queues):
        a = act.loc[act["queue"] == queue].sort_values("date")
        f = forecast.loc[forecast["queue"] == queue].sort_values("date")
        a_closed = ~a["is_open"].astype(bool).to_numpy() if "is_open" in a.columns else np.zeros(len(a), bool)
        f_closed = (f["p90"] <= 0).to_numpy()
        for day in pd.concat([a.loc[a_closed, "date"], f.loc[f_closed, "date"]]):
            ax.axvspan(day - pd.Timedelta(hours=12), day + pd.Timedelta(hours=12), color="#f0f0f0", lw=0)
        ax.plot(a["date"], a["offered"].where(~a_closed), color=ACTUAL, lw=1.3, marker="o", ms=2.2,
                label="actual offered")
        if not f.empty:
            ax.fill_between(f["date"], f["p10"].where(~f_closed), f["p90"].where(~f_closed), color=FORECAST,
                            alpha=0.22, lw=0, label="forecast p10–p90")
            ax.plot(f["date"], f["p50"].where(~f_closed), color=FORECAST, lw=1.8, marker="o", ms=2.2,
                    label="forecast p50")
        ax.axvline(day_start(as_of) - pd.Timedelta(hours=12), color="#777777", lw=0.9, ls=":")
        ax.set_title(_panel_title(queue, f), loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        thousands(ax)
        ax.grid(axis="y", color="#e6e6e6")
        ax.set_axisbelow(True)
        missing = [m for m, empty in (("no actuals in these weeks", a.empty), ("no forecast", f.empty)) if empty]
        if missing:
            ax.text(0.5, 0.5, "; ".join(missing), transform=ax.transAxes, **NOTE)
    every = 2 if panel_grid(len(queues))[1] == 3 else 1  # narrow panels: a label every other Monday, or they collide
    for ax in axes:
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO, interval=every))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_minor_locator(mdates.DayLocator())
        ax.tick_params(axis="x", labelbottom=True, labelsize=8)
        ax.set_ylabel("calls/day", fontsize=9)
    axes[0].set_xlim(start - pd.Timedelta(days=1), _forecast_end(forecast, as_of) + pd.Timedelta(days=1))
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper right", ncols=3, fontsize=9, frameon=False)
    return save_png(fig, path)


def _horizon(forecast: pd.DataFrame) -> int:
    return int(forecast["date"].nunique()) if not forecast.empty else 0


def _forecast_end(forecast: pd.DataFrame, as_of: date) -> pd.Timestamp:
    return forecast["date"].max() if not forecast.empty else day_start(as_of)


def _panel_title(queue: str, f: pd.DataFrame) -> str:
    fallback = f.loc[~f["method"].isin(MODEL_METHODS)] if "method" in f.columns else f.iloc[:0]
    if fallback.empty:
        return queue
    reason = fallback["fallback_reason"].dropna()
    reason = str(reason.iloc[0]) if len(reason) else "no reason recorded"
    return f"{queue}\n{fallback['method'].iloc[0]} fallback: {textwrap.shorten(reason, 55, placeholder='…')}"


# --- horizon totals -------------------------------------------------------------------------------------

def horizon_totals(actuals: pd.DataFrame, forecast: pd.DataFrame, as_of: date, spans: int = 4) -> pd.DataFrame:
    """One row per queue per span: the forecast horizon's total and the same-length spans just before it.

    Columns: queue, span (0 = forecast, -1 = the span just before as-of, ...), first, last, kind
    ("forecast" | "actual"), total (p50 sum for the forecast), p10, p90 (sums of the daily quantiles, so a
    cautious band, wider than the true band of the total), days (days with data; an actual span with
    missing days is left out rather than shown too low).
    """
    cols = ["queue", "span", "first", "last", "kind", "total", "p10", "p90", "days"]
    horizon = _horizon(forecast)
    if horizon == 0:
        return pd.DataFrame(columns=cols)
    origin = day_start(as_of)
    fc = forecast.groupby("queue", as_index=False).agg(total=("p50", "sum"), p10=("p10", "sum"),
                                                       p90=("p90", "sum"), days=("date", "nunique"))
    rows = fc.assign(span=0, first=origin, last=origin + pd.Timedelta(days=horizon - 1), kind="forecast")
    past = []
    for k in range(1, spans + 1):
        first = origin - pd.Timedelta(days=k * horizon)
        last = first + pd.Timedelta(days=horizon - 1)
        sel = actuals.loc[(actuals["date"] >= first) & (actuals["date"] <= last)]
        tot = sel.groupby("queue", as_index=False).agg(total=("offered", "sum"), days=("date", "nunique"))
        tot = tot.loc[(tot["days"] == horizon) & tot["queue"].isin(fc["queue"])]
        past.append(tot.assign(span=-k, first=first, last=last, kind="actual", p10=np.nan, p90=np.nan))
    out = pd.concat([rows, *past], ignore_index=True)[cols]
    return out.sort_values(["queue", "span"]).reset_index(drop=True)


@plain_text
def horizon_totals_chart(totals: pd.DataFrame, as_of: date, path: Path) -> Path:
    """Per queue: bars of the recent spans' actual totals and the forecast total with its p10–p90 whisker."""
    days = int((totals["last"] - totals["first"]).dt.days.max()) + 1 if not totals.empty else 14
    title = f"{days}-day call volume per queue: forecast from {as_of:%a %d %b %Y} vs the same span in recent weeks"
    subtitle = (f"Grey bars = actual offered calls in each past {days}-day span (spans with missing days are left out); "
                "blue bar = forecast p50 total; whisker = sum of the daily p10 and p90 (a cautious range).")
    queues = panel_order(totals["queue"].unique())
    if not queues:
        return empty_chart(path, title, subtitle, "No forecast for this origin: nothing to compare.")
    fig, axes = new_figure(len(queues), 2.4, title, subtitle, sharex=False)
    for ax, queue in zip(axes, queues):
        t = totals.loc[totals["queue"] == queue].sort_values("span")
        x = np.arange(len(t))
        n_past = int((t["kind"] == "actual").sum())
        greys = iter(PAST_SPANS[-n_past:] if n_past else ())  # older spans lighter
        colors = [FORECAST if k == "forecast" else next(greys, PAST_SPANS[-1]) for k in t["kind"]]
        ax.bar(x, t["total"], color=colors, width=0.7)
        f = t.loc[t["kind"] == "forecast"]
        if not f.empty:
            fx = x[t["kind"].to_numpy() == "forecast"]
            total, lo, hi = (f[c].to_numpy(dtype=float) for c in ("total", "p10", "p90"))
            ax.errorbar(fx, total, yerr=np.vstack([total - lo, hi - total]), fmt="none", ecolor="#0d2f57",
                        capsize=6, lw=1.4)
        for xi, total, kind in zip(x, t["total"], t["kind"]):
            if kind == "forecast":  # at the bar's foot: the p10..p90 whisker crosses its top
                ax.annotate(f"{total:,.0f}", (xi, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8, color="white", fontweight="bold")
            else:
                ax.annotate(f"{total:,.0f}", (xi, total), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8)
        labels = [("forecast\n" if k == "forecast" else "") + _span_label(a, b)
                  for k, a, b in zip(t["kind"], t["first"], t["last"])]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(f"{queue}  {_change_text(t)}", loc="left", fontsize=10)
        ax.set_ylabel(f"calls / {days} days", fontsize=9)
        top = np.nanmax(np.r_[t["total"].to_numpy(dtype=float), t["p90"].to_numpy(dtype=float)])
        ax.set_ylim(0, top * 1.18 if top > 0 else 1)
        thousands(ax)
        ax.grid(axis="y", color="#e6e6e6")
        ax.set_axisbelow(True)
        if len(t) == 1:
            ax.text(0.5, 0.6, "no complete past span in silver_daily", transform=ax.transAxes, **NOTE)
    return save_png(fig, path)


def _change_text(t: pd.DataFrame) -> str:
    f = t.loc[t["kind"] == "forecast", "total"]
    last = t.loc[t["span"] == -1, "total"]
    if f.empty or last.empty or float(last.iloc[0]) == 0:
        return ""
    days = int((t["last"].iloc[0] - t["first"].iloc[0]).days) + 1
    return f"forecast {float(f.iloc[0]) / float(last.iloc[0]) - 1:+.1%} vs the previous {days} days"


# --- staffing heatmap -----------------------------------------------------------------------------------

@plain_text
def staffing_heatmap_chart(staffing: pd.DataFrame, as_of: date, path: Path, days: int = 7) -> Path:
    """Per queue: scheduled staff needed (staff_p50, after shrinkage) by time of day x day, the next `days` days.

    Only times of day at which some day needs staff are drawn (closed hours are left out); a day that needs
    no one (closed) is a grey column.
    """
    first = day_start(as_of)
    last = first + pd.Timedelta(days=days - 1)
    s = staffing.loc[(staffing["interval_start"] >= first) & (staffing["interval_start"] < last + pd.Timedelta(days=1))]
    title = (f"Staff to schedule per interval, {first:%a %d %b}–{last:%a %d %b %Y} "
             f"(forecast from {as_of:%a %d %b %Y})")
    subtitle = ("Each cell = staff needed in that interval for the p50 forecast, after shrinkage (Erlang C at the "
                "configured service level); darker = more; grey = no one needed (closed). "
                "p10/p90 staffing is in gold_staffing_interval.")
    queues = panel_order(s["queue"].unique())
    if not queues:
        return empty_chart(path, title, subtitle, "No staffing rows for this origin (gold_staffing_interval is empty).")
    s = s.assign(day=s["interval_start"].dt.normalize(), tod=s["interval_start"].dt.strftime("%H:%M"))
    day_index = pd.date_range(first, last, freq="D")
    n_tod = max(len(_open_times(s.loc[s["queue"] == q])) for q in queues)
    width = 9.0 if panel_grid(len(queues))[1] == 1 else 14.0  # one column of 7 days needs no full-width picture
    fig, axes = new_figure(len(queues), 0.9 + 0.17 * max(n_tod, 4), title, subtitle, width=width, sharex=False)
    for ax, queue in zip(axes, queues):
        q = s.loc[s["queue"] == queue]
        times = _open_times(q)
        if not times:
            ax.set_axis_off()
            ax.set_title(queue, loc="left", fontsize=10)
            ax.text(0.5, 0.5, "no staff needed in these days (closed)", transform=ax.transAxes, **NOTE)
            continue
        grid = (q.pivot_table(index="tod", columns="day", values="staff_p50", aggfunc="max")
                .reindex(index=times, columns=day_index))
        values = grid.to_numpy(dtype=float)
        closed_day = ~(np.nan_to_num(values) > 0).any(axis=0)
        # Grey, without a number: intervals that need no one (closed, or outside that day's hours).
        masked = np.ma.masked_where(~(np.nan_to_num(values) > 0), values)
        ax.set_facecolor("#eeeeee")
        vmax = max(float(np.nanmax(values)), 1.0)
        ax.imshow(masked, aspect="auto", cmap="Blues", vmin=0, vmax=vmax * 1.1, interpolation="nearest")
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v) and v > 0 and len(times) <= 48:
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, in_layout=False,  # inside the axes
                        color="white" if v > 0.55 * vmax else "black")
        for j in np.flatnonzero(closed_day):
            ax.text(j, (len(times) - 1) / 2, "closed", rotation=90, ha="center", va="center", fontsize=8, color="#777777")
        ax.set_xticks(range(len(day_index)), [f"{d:%a}\n{d:%d %b}" for d in day_index], fontsize=8)
        step = max(1, len(times) // 12)
        ax.set_yticks(range(0, len(times), step), times[::step], fontsize=8)
        peak = int(np.nanmax(values))
        ax.set_title(f"{queue}  (peak {peak} staff)", loc="left", fontsize=10)
        ax.set_ylabel("interval start", fontsize=9)
    return save_png(fig, path)


def _open_times(q: pd.DataFrame) -> list[str]:
    """Times of day (HH:MM) from the first to the last interval that needs staff on any day."""
    if q.empty:
        return []
    need = q.groupby("tod")["staff_p50"].max()
    times = sorted(need.index)
    staffed = [t for t in times if need[t] > 0]
    if not staffed:
        return []
    return times[times.index(staffed[0]):times.index(staffed[-1]) + 1]

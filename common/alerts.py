"""Alert rules of step 4: pure functions from hand-sized frames to `Alert`s, one table `gold_alerts`.

Every alert names its queue (None: the whole center), the metric, its value,
the threshold it crossed and what to look at. A rule gives at most one alert
per queue (per metric), at its highest severity. Defaults follow common WFM
practice; step 4 passes the `alerts:` section of the config.

- `daily_mape_alerts`: the forecast made `horizon_day` days ahead (1: "yesterday's
  forecast for yesterday") misses an open day by more than 15% (critical), or
  by more than 10% on each of the last 3 open days (warning).
- `weekly_bias_alerts`: (sum p50 - sum actual) / sum actual of a complete
  Monday-Sunday week beyond +-5% in the last week (critical), or beyond +-3%
  with the same sign 2 weeks running (warning).
- `freshness_alerts`: the newest contact is more than 2 h (warning) / 6 h
  (critical) before the end of the last open interval before the as-of.
- `drift_alerts`: population stability index (PSI) of the last 28 days
  against the year before, > 0.1 warning, > 0.3 critical, for two features
  per queue. Volume level is measured on open intervals rather than days:
  4 weeks hold ~20 open days, and PSI's own sampling noise at that size
  (about (bins - 1) / n) is above the 0.1 threshold, while ~400 open
  intervals put it near 0.02 (a 20% level shift then reads ~0.14). Weekday
  shares compare each open weekday's mean volume as a share of the week.
- `beats_naive_alerts`: lightgbm's wMAPE is not below the seasonal naive
  benchmark's on the same points over the last 4 weeks of origins (warning).
- `fallback_alerts`: a queue of the latest forecast got seasonal naive
  instead of the model (warning, with gold_forecast_daily.fallback_reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd

from common.calendar import WEEKDAYS
from common.evaluation import NAIVE_BENCHMARK, STORED_METHODS

CRITICAL, WARNING = "critical", "warning"
ALERT_COLUMNS = ["severity", "alert_rule", "queue", "metric", "value", "threshold", "message"]
RECENT_DAYS = 7          # the MAPE rule judges only a latest open day this recent (no alert on stale forecasts)
MIN_RECENT_DAYS = 5      # open days a drift window needs before PSI is judged
MIN_REFERENCE_DAYS = 20
PSI_FLOOR = 1e-4         # share given to an empty bin, so PSI stays finite


@dataclass(frozen=True)
class Alert:
    """One alert: how bad, which rule and metric, the value against its threshold, and what to look at."""

    severity: str
    rule: str
    metric: str
    message: str
    queue: str | None = None
    value: float | None = None
    threshold: float | None = None


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    """One row per alert (`ALERT_COLUMNS`), critical first, then by rule and queue."""
    # `rule` is a reserved word in SQL Server: the column is `alert_rule`.
    frame = pd.DataFrame([asdict(a) for a in alerts]).rename(columns={"rule": "alert_rule"}).reindex(columns=ALERT_COLUMNS)
    frame = frame.astype({"queue": "object", "value": "float64", "threshold": "float64"})
    frame = frame.assign(queue=frame["queue"].where(frame["queue"].notna(), None))  # the whole center: None, not NaN
    order = frame["severity"].map({CRITICAL: 0, WARNING: 1})
    frame = frame.assign(_o=order, _q=frame["queue"].fillna(""))
    return frame.sort_values(["_o", "alert_rule", "_q", "metric"], kind="stable").drop(columns=["_o", "_q"]).reset_index(drop=True)


def _judged_points(accuracy: pd.DataFrame, as_of: date, horizon_day: int) -> pd.DataFrame:
    """The published forecast's open-day points made `horizon_day` days ahead, dated before `as_of`."""
    a = accuracy
    keep = (a["method"].isin(list(STORED_METHODS)) & (a["horizon_day"] == horizon_day) & a["is_open"].astype(bool)
            & (a["date"] < pd.Timestamp(as_of)))
    return a.loc[keep].sort_values(["queue", "date"], kind="stable")


def _ahead(horizon_day: int) -> str:
    return "the same night" if horizon_day == 1 else f"{horizon_day} days ahead"


def daily_mape_alerts(accuracy: pd.DataFrame, as_of: date, *, horizon_day: int = 1, warning: float = 0.10,
                      warning_days: int = 3, critical: float = 0.15) -> list[Alert]:
    """Per queue: critical when the latest open day's APE > `critical`, else warning when each of the last
    `warning_days` open days has APE > `warning`.

    `accuracy`: gold_forecast_accuracy rows. Open days with a zero actual have
    no APE and are skipped; a latest day older than RECENT_DAYS is not judged.
    """
    points = _judged_points(accuracy, as_of, horizon_day)
    points = points.loc[points["actual"] > 0]
    out = []
    for queue, g in points.groupby("queue", sort=True):
        ape = (g["abs_error"] / g["actual"]).to_numpy()
        last = g.iloc[-1]
        if last["date"] < pd.Timestamp(as_of) - pd.Timedelta(days=RECENT_DAYS):
            continue
        if ape[-1] > critical:
            out.append(Alert(CRITICAL, "daily_mape", "daily_mape", queue=str(queue), value=float(ape[-1]),
                             threshold=critical, message=(
                f"{queue}: the forecast for {last['date']:%a %Y-%m-%d} made {_ahead(horizon_day)} was off by "
                f"{100 * ape[-1]:.1f}% (p50 {last['p50']:.0f}, actual {last['actual']:.0f}), above "
                f"{100 * critical:.0f}% (alerts.mape_critical); look at that day: a campaign, an outage or "
                "mass event, a holiday the calendar missed, or an incomplete export")))
        elif len(ape) >= warning_days and (ape[-warning_days:] > warning).all():
            tail = g.iloc[-warning_days:]
            days = ", ".join(f"{d:%a %m-%d} {100 * v:.1f}%" for d, v in zip(tail["date"], ape[-warning_days:]))
            out.append(Alert(WARNING, "daily_mape", "daily_mape", queue=str(queue),
                             value=float(ape[-warning_days:].min()), threshold=warning, message=(
                f"{queue}: daily MAPE above {100 * warning:.0f}% on each of the last {warning_days} open days "
                f"({days}) (alerts.mape_warning); a lasting change the model has not caught up with: check "
                "campaigns, routing or opening-hour changes and the holiday calendar, then retrain (2_train.py --force)")))
    return out


def weekly_bias_alerts(accuracy: pd.DataFrame, as_of: date, *, horizon_day: int = 1, warning: float = 0.03,
                       warning_weeks: int = 2, critical: float = 0.05) -> list[Alert]:
    """Per queue: weekly bias of complete Mon-Sun weeks before `as_of`.

    Critical when |bias| > `critical` in the last complete week; warning when
    |bias| > `warning` with the same sign in each of the last `warning_weeks`.
    Bias = (sum p50 - sum actual) / sum actual over the week's open days.
    """
    points = _judged_points(accuracy, as_of, horizon_day)
    end = pd.Timestamp(as_of)
    monday = end - pd.Timedelta(days=end.day_of_week)
    weeks = [monday - pd.Timedelta(days=7 * k) for k in range(1, max(warning_weeks, 1) + 1)]
    points = points.assign(week=points["date"] - pd.to_timedelta(points["date"].dt.day_of_week, unit="D"))
    points = points.loc[points["week"].isin(weeks)]
    sums = points.groupby(["queue", "week"])[["p50", "actual"]].sum()
    out = []
    for queue in sorted(sums.index.get_level_values("queue").unique()):
        got = sums.loc[queue]
        bias = {w: (r["p50"] - r["actual"]) / r["actual"] for w, r in got.iterrows() if r["actual"] > 0}
        last = bias.get(weeks[0])
        if last is None:
            continue
        word = "over" if last > 0 else "under"
        look = ("plans built on it are over-staffed" if last > 0 else "plans built on it are under-staffed")
        if abs(last) > critical:
            out.append(Alert(CRITICAL, "weekly_bias", "weekly_bias", queue=str(queue), value=float(last),
                             threshold=critical, message=(
                f"{queue}: week of {weeks[0]:%Y-%m-%d} {word}-forecast by {100 * abs(last):.1f}% (forecast made "
                f"{_ahead(horizon_day)}), beyond +-{100 * critical:.0f}% (alerts.bias_critical); {look}: check for a "
                "level change (growth, a campaign starting or ending, routing or IVR changes) or missing days in the "
                "export")))
            continue
        streak = [bias.get(w) for w in weeks]
        if all(b is not None and abs(b) > warning and np.sign(b) == np.sign(last) for b in streak):
            listed = ", ".join(f"{w:%m-%d} {100 * b:+.1f}%" for w, b in zip(reversed(weeks), reversed(streak)))
            out.append(Alert(WARNING, "weekly_bias", "weekly_bias", queue=str(queue),
                             value=float(min(streak, key=abs)), threshold=warning, message=(
                f"{queue}: {word}-forecast beyond +-{100 * warning:.0f}% {len(weeks)} weeks running (weeks of "
                f"{listed}) (alerts.bias_warning); {look}: a trend the model lags behind; check recent growth or "
                "decline and campaigns, then retrain (2_train.py --force)")))
    return out


def freshness_alerts(newest_contact: pd.Timestamp | None, last_open_end: pd.Timestamp | None, *,
                     warning_hours: float = 2, critical_hours: float = 6) -> list[Alert]:
    """The whole center: hours between the newest contact and the end of the last open interval before the as-of."""
    if last_open_end is None:
        return []
    if newest_contact is None:
        return [Alert(CRITICAL, "data_freshness", "hours_late", queue=None, value=None, threshold=critical_hours,
                      message="no contacts in bronze before the as-of at all: check the source settings and the "
                              "drop folder / source query, then run 0_load_bronze.py")]
    late = max(0.0, (pd.Timestamp(last_open_end) - pd.Timestamp(newest_contact)).total_seconds() / 3600)
    severity = CRITICAL if late > critical_hours else WARNING if late > warning_hours else None
    if severity is None:
        return []
    limit = critical_hours if severity == CRITICAL else warning_hours
    return [Alert(severity, "data_freshness", "hours_late", queue=None, value=round(late, 2), threshold=limit, message=(
        f"the newest contact ({pd.Timestamp(newest_contact):%Y-%m-%d %H:%M}) is {late:.1f} h before the end of the last "
        f"open interval ({pd.Timestamp(last_open_end):%Y-%m-%d %H:%M}), more than {limit:g} h "
        f"(alerts.freshness_{severity}_hours): did the last export arrive complete? check the drop folder or "
        "source query and the 0_load_bronze log before trusting yesterday's numbers"))]


def psi(reference: np.ndarray | pd.Series, recent: np.ndarray | pd.Series, bins: int = 10) -> float:
    """Population stability index of `recent` against `reference`, in quantile bins of `reference`.

    sum over bins of (recent share - reference share) * ln(recent share /
    reference share); empty bins count as PSI_FLOOR. NaN when either side is empty.
    """
    ref = np.asarray(reference, dtype=float)
    rec = np.asarray(recent, dtype=float)
    ref, rec = ref[np.isfinite(ref)], rec[np.isfinite(rec)]
    if not len(ref) or not len(rec):
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    n = len(edges) + 1
    expected = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n) / len(ref)
    actual = np.bincount(np.searchsorted(edges, rec, side="right"), minlength=n) / len(rec)
    return share_psi(expected, actual)


def share_psi(expected: np.ndarray | pd.Series, actual: np.ndarray | pd.Series) -> float:
    """PSI of two share vectors over the same categories (each summing to 1)."""
    e = np.clip(np.asarray(expected, dtype=float), PSI_FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=float), PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def weekday_shares(daily: pd.DataFrame) -> pd.Series:
    """Share of the week per weekday 0..6: each weekday's mean open-day volume over the sum of those means."""
    open_days = daily.loc[daily["is_open"].astype(bool)]
    means = open_days.groupby(open_days["date"].dt.day_of_week)["offered"].mean().reindex(range(7), fill_value=0.0)
    total = means.sum()
    return means / total if total > 0 else means


def drift_alerts(intervals: pd.DataFrame, daily: pd.DataFrame, as_of: date, *, recent_days: int = 28,
                 reference_days: int = 364, bins: int = 10, warning: float = 0.1, critical: float = 0.3) -> list[Alert]:
    """Per queue: PSI of the volume level (open intervals) and of the weekday shares, recent vs reference window.

    Recent = [as_of - recent_days, as_of); reference = the `reference_days`
    before it. `intervals`: silver_interval (queue, date, offered, is_open);
    `daily`: silver_daily (queue, date, offered, is_open). A window with fewer
    open days than MIN_RECENT_DAYS / MIN_REFERENCE_DAYS is not judged.
    """
    end = pd.Timestamp(as_of)
    split = end - pd.Timedelta(days=recent_days)
    start = split - pd.Timedelta(days=reference_days)

    def windows(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        frame = frame.loc[frame["is_open"].astype(bool)]
        return (frame.loc[(frame["date"] >= start) & (frame["date"] < split)],
                frame.loc[(frame["date"] >= split) & (frame["date"] < end)])

    out = []
    for queue in sorted(set(daily["queue"].astype("str"))):
        ref_d, rec_d = windows(daily.loc[daily["queue"] == queue])
        if ref_d["date"].nunique() < MIN_REFERENCE_DAYS or rec_d["date"].nunique() < MIN_RECENT_DAYS:
            continue
        ref_i, rec_i = windows(intervals.loc[intervals["queue"] == queue])
        if len(ref_i) and len(rec_i):
            value = psi(ref_i["offered"], rec_i["offered"], bins)
            out += _drift_alert(queue, "psi_volume_level", value, warning, critical, (
                f"volume level of the last {recent_days} days moved away from the {reference_days} days before "
                f"(mean per open interval {rec_i['offered'].mean():.1f} vs {ref_i['offered'].mean():.1f}); check for a "
                "campaign, a routing or IVR change, or a queue split or merge; retrain (2_train.py --force) if it lasts"))
        ref_s, rec_s = weekday_shares(ref_d), weekday_shares(rec_d)
        value = share_psi(ref_s, rec_s)
        moved = int((rec_s - ref_s).abs().idxmax())
        out += _drift_alert(queue, "psi_weekday_shares", value, warning, critical, (
            f"weekday pattern of the last {recent_days} days changed (biggest move: {WEEKDAYS[moved]} "
            f"{100 * ref_s[moved]:.0f}% -> {100 * rec_s[moved]:.0f}% of the week); check opening hours per weekday "
            "(rules.opening_hours), holidays or closures in the window, or a changed callback/outbound schedule"))
    return out


def _drift_alert(queue: str, metric: str, value: float, warning: float, critical: float, detail: str) -> list[Alert]:
    if not np.isfinite(value) or value <= warning:
        return []
    severity, limit = (CRITICAL, critical) if value > critical else (WARNING, warning)
    return [Alert(severity, "feature_drift", metric, queue=queue, value=round(value, 4), threshold=limit,
                  message=f"{queue}: PSI {value:.2f} > {limit:g} (alerts.drift_{severity}_psi): {detail}")]


def beats_naive_alerts(accuracy: pd.DataFrame, as_of: date, *, window_days: int = 28,
                       min_days: int = 10) -> list[Alert]:
    """Per queue: warning when lightgbm's wMAPE is not below the naive benchmark's on the same open-day points.

    Points: origins in [as_of - window_days, as_of) forecast by lightgbm that
    have a naive_benchmark row; judged with at least `min_days` of them.
    """
    end = pd.Timestamp(as_of)
    a = accuracy.loc[(accuracy["forecast_origin"] >= end - pd.Timedelta(days=window_days))
                     & (accuracy["forecast_origin"] < end)]
    keys = ["forecast_origin", "queue", "date"]
    model = a.loc[(a["method"] == "lightgbm") & a["is_open"].astype(bool), [*keys, "actual", "abs_error"]]
    naive = a.loc[a["method"] == NAIVE_BENCHMARK, [*keys, "abs_error"]].rename(columns={"abs_error": "naive_abs_error"})
    paired = model.merge(naive, on=keys, how="inner")
    out = []
    for queue, g in paired.groupby("queue", sort=True):
        total = g["actual"].sum()
        if len(g) < min_days or total <= 0:
            continue
        ours, theirs = g["abs_error"].sum() / total, g["naive_abs_error"].sum() / total
        if ours >= theirs:
            out.append(Alert(WARNING, "model_vs_naive", "wmape_vs_naive", queue=str(queue), value=float(ours),
                             threshold=float(theirs), message=(
                f"{queue}: lightgbm wMAPE {100 * ours:.1f}% does not beat seasonal naive {100 * theirs:.1f}% on the "
                f"same {len(g)} open days of the last {window_days} days of origins; check the drift alerts and recent "
                "pattern changes, retrain (2_train.py --force) or roll back (2_train.py --rollback)")))
    return out


def fallback_alerts(latest_forecast: pd.DataFrame) -> list[Alert]:
    """Per queue of the latest forecast (gold_forecast_daily rows of one origin) that was not made by the model."""
    f = latest_forecast
    used = f.loc[(f["method"] != "lightgbm") | f["fallback_reason"].notna()]
    out = []
    for queue, g in used.groupby("queue", sort=True):
        reasons = g["fallback_reason"].dropna()
        reason = str(reasons.iloc[0]) if len(reasons) else "no reason recorded"
        origin = pd.Timestamp(g["forecast_origin"].iloc[0])
        out.append(Alert(WARNING, "forecast_fallback", "fallback_days", queue=str(queue), value=float(len(g)),
                         threshold=0.0, message=(
            f"{queue}: the forecast from {origin:%Y-%m-%d} uses {g['method'].iloc[0]} instead of the model on "
            f"{len(g)} days: {reason}; look at the reason: train or promote a model (2_train.py), the queue's history, "
            "or the failed guard in data_quality_checks of 3_forecast")))
    return out

"""Alert rules of step 4: pure functions from hand-sized frames to `Alert`s, one table `gold_alerts`.

Every alert names its queue (None: the whole center), the metric, its value,
the threshold it crossed, the days it is about and what to look at. A rule
gives at most one alert per queue (per metric), at its highest severity.
Defaults follow common WFM practice; step 4 passes the `alerts:` section of
the config. A rule judges only on enough evidence; where there is too little
it stays quiet rather than raise an alert a planner cannot act on.

- `daily_mape_alerts`: the forecast made `horizon_day` days ahead (1: "yesterday's
  forecast for yesterday") misses an open day by more than 15% and by more
  than chance (critical), or by more than 10% on each of the last 3 open days
  (warning). Days with fewer than 50 actual contacts are not judged: at that
  size chance alone moves a day about as far as the threshold (Poisson noise
  1/sqrt(n): 14% at 50). "More than chance": the actual lies beyond the
  forecast's own p10-p90 band stretched 1.8 times around p50 (about the 1st or
  99th percentile of a calibrated band), so a 100-call queue's 18% day that
  its band allowed for is not a critical alert on most nights.
- `weekly_bias_alerts`: (sum p50 - sum actual) / sum actual of a complete
  Monday-Sunday week beyond +-5% in the last week (critical), or beyond +-3%
  with the same sign 2 weeks running (warning). Complete: every open day of
  the week (silver_daily.is_open, so a holiday week needs only its open days)
  has a scored forecast, or at least `min_days` of them.
- `freshness_alerts`: the newest contact is more than 2 h (warning) / 6 h
  (critical) before the end of the last open interval before the as-of.
- `drift_alerts`: population stability index (PSI) of the last 28 days
  against the year before, > 0.1 warning, > 0.3 critical, for two features
  per queue. Volume level is measured on open intervals rather than days:
  4 weeks hold ~20 open days, and PSI's own sampling noise at that size
  (about (bins - 1) / n) is above the 0.1 threshold, while ~400 open
  intervals put it near 0.02 (a 20% level shift then reads ~0.14); it is
  judged only where that noise, (bins - 1) (1/n_recent + 1/n_reference), is
  at most half the warning threshold (a stable queue then warns on fewer than
  1 night in 25). Weekday shares compare each open weekday's mean volume as a
  share of the week, judged when every weekday open in the recent window is
  there at least twice (one day per weekday is one odd day, not a pattern).
- `beats_naive_alerts`: lightgbm's wMAPE is not below the seasonal naive
  benchmark's on the same points over the last 4 weeks of origins (warning),
  judged on at least `min_days` distinct open days.
- `fallback_alerts`: a queue of the latest forecast got seasonal naive
  instead of the model (warning, with gold_forecast_daily.fallback_reason).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd

from common.evaluation import NAIVE_BENCHMARK, STORED_METHODS
from common.forecast_frame import MODEL_METHODS
from common.opening_hours import WEEKDAYS

log = logging.getLogger(__name__)

CRITICAL, WARNING = "critical", "warning"
ALERT_COLUMNS = ["severity", "alert_rule", "queue", "metric", "value", "threshold", "message"]
RECENT_DAYS = 7          # the MAPE rule judges only a latest open day this recent (no alert on stale forecasts)
MIN_RECENT_DAYS = 5      # open days a drift window needs before PSI is judged
MIN_REFERENCE_DAYS = 20
MIN_DAYS_PER_WEEKDAY = 2  # the weekday-share PSI needs each weekday open in the recent window this often
PSI_FLOOR = 1e-4         # share given to an empty bin, so PSI stays finite
DAY_NAMES = tuple(d.capitalize() for d in WEEKDAYS)


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


def _span(first: pd.Timestamp, last: pd.Timestamp) -> str:
    """'2025-03-03..09', '2025-03-31..04-06', '2024-12-30..2025-01-05': the dates from `first` to `last`."""
    end = "%Y-%m-%d" if first.year != last.year else "%m-%d" if first.month != last.month else "%d"
    return f"{first:%Y-%m-%d}..{last.strftime(end)}"


def _weekday_runs(dates: Iterable[pd.Timestamp]) -> str:
    """'Mon-Fri', 'Mon, Wed-Fri': the weekdays of `dates` (one Mon-Sun week), consecutive ones as a range."""
    runs: list[list[int]] = []
    for d in sorted({pd.Timestamp(x).day_of_week for x in dates}):
        if runs and d == runs[-1][1] + 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return ", ".join(DAY_NAMES[a] if a == b else f"{DAY_NAMES[a]}-{DAY_NAMES[b]}" for a, b in runs) or "none"


# p10 and p90 are the 10% tails of a calibrated band; for a normal spread the 1% tails lie 2.326 / 1.282 = 1.8 times
# as far from the median. A miss inside that stretched band happens by chance on about 1 day in 50 per queue.
BEYOND_CHANCE = 1.8


def beyond_chance(actual: float, p10: float, p50: float, p90: float, stretch: float = BEYOND_CHANCE) -> bool:
    """Whether `actual` lies outside the forecast's p10-p90 band stretched `stretch` times around p50 (a forecast
    without a band, p10 = p50 = p90, has every miss beyond chance)."""
    return actual > p50 + stretch * (p90 - p50) or actual < p50 - stretch * (p50 - p10)


def daily_mape_alerts(accuracy: pd.DataFrame, as_of: date, *, horizon_day: int = 1, warning: float = 0.10,
                      warning_days: int = 3, critical: float = 0.15, min_actual: float = 50) -> list[Alert]:
    """Per queue: critical when the latest judged open day's APE > `critical` and the miss is `beyond_chance` of
    its own band, else warning when each of the last `warning_days` judged open days has APE > `warning`.

    `accuracy`: gold_forecast_accuracy rows. Judged: open days with at least
    `min_actual` actual contacts (and more than 0, which has no APE); a day
    below that is skipped (its APE is mostly chance), so the latest judged day
    may be an earlier one, and the message names it. A latest judged day older
    than RECENT_DAYS is not judged.
    """
    points = _judged_points(accuracy, as_of, horizon_day)
    points = points.loc[(points["actual"] > 0) & (points["actual"] >= min_actual)]
    out = []
    for queue, g in points.groupby("queue", sort=True):
        ape = (g["abs_error"] / g["actual"]).to_numpy()
        last = g.iloc[-1]
        if last["date"] < pd.Timestamp(as_of) - pd.Timedelta(days=RECENT_DAYS):
            continue
        if ape[-1] > critical and beyond_chance(last["actual"], last["p10"], last["p50"], last["p90"]):
            out.append(Alert(CRITICAL, "daily_mape", "daily_mape", queue=str(queue), value=float(ape[-1]),
                             threshold=critical, message=(
                f"{queue}: the forecast for {last['date']:%a %Y-%m-%d} made {_ahead(horizon_day)} was off by "
                f"{100 * ape[-1]:.1f}% (p50 {last['p50']:.0f}, p10-p90 {last['p10']:.0f}-{last['p90']:.0f}, actual "
                f"{last['actual']:.0f}), above {100 * critical:.0f}% (alerts.mape_critical) and further out than its "
                "range allows by chance; look at that day: a campaign, an outage or "
                "mass event, a holiday the calendar missed, or an incomplete export")))
        elif len(ape) >= warning_days and (ape[-warning_days:] > warning).all():
            tail = g.iloc[-warning_days:]
            days = ", ".join(f"{d:%a %Y-%m-%d} {100 * v:.1f}%" for d, v in zip(tail["date"], ape[-warning_days:]))
            out.append(Alert(WARNING, "daily_mape", "daily_mape", queue=str(queue),
                             value=float(ape[-warning_days:].min()), threshold=warning, message=(
                f"{queue}: daily MAPE above {100 * warning:.0f}% on each of the last {warning_days} open days "
                f"({days}) (alerts.mape_warning); a lasting change the model has not caught up with: check "
                "campaigns, routing or opening-hour changes and the holiday calendar, then retrain (2_train.py --force)")))
    return out


@dataclass(frozen=True)
class _Week:
    """One Mon-Sun week of a queue as the bias rule sees it: its bias (None: not judged) and the days behind it."""

    monday: pd.Timestamp
    bias: float | None
    scored: tuple[pd.Timestamp, ...]     # open days with a scored forecast
    open_days: tuple[pd.Timestamp, ...]  # every open day of the week (silver_daily.is_open)

    def evidence(self) -> str:
        """'week 2025-03-03..09 (5 open days scored: Mon-Fri)', or '(2 of 5 ...; not scored: Tue, Thu-Fri)'."""
        n, m = len(self.scored), len(self.open_days)
        days = f"open day{'s' if m != 1 else ''}"
        label = f"week {_span(self.monday, self.monday + pd.Timedelta(days=6))}"
        if n == m:
            return f"{label} ({n} {days} scored: {_weekday_runs(self.scored)})"
        missing = _weekday_runs(sorted(set(self.open_days) - set(self.scored)))
        return f"{label} ({n} of {m} {days} scored: {_weekday_runs(self.scored)}; not scored: {missing})"


def _monday_of(dates: pd.Series) -> pd.Series:
    return dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")


def _judge_week(points: pd.DataFrame, open_dates: set[pd.Timestamp], monday: pd.Timestamp, min_days: int) -> _Week:
    """The bias of one queue's week from its scored `points`, judged when min(min_days, open days) are scored."""
    week = points.loc[_monday_of(points["date"]) == monday]
    scored = sorted(set(week["date"]))
    sunday = monday + pd.Timedelta(days=6)
    open_days = sorted({d for d in open_dates if monday <= d <= sunday} | set(scored))  # a scored point is open
    actual = float(week["actual"].sum())
    enough = len(scored) >= min(min_days, len(open_days)) and actual > 0
    bias = (float(week["p50"].sum()) - actual) / actual if enough else None
    return _Week(monday, bias, tuple(scored), tuple(open_days))


def weekly_bias_alerts(accuracy: pd.DataFrame, daily: pd.DataFrame, as_of: date, *, horizon_day: int = 1,
                       warning: float = 0.03, warning_weeks: int = 2, critical: float = 0.05,
                       min_days: int = 7) -> list[Alert]:
    """Per queue: weekly bias of complete Mon-Sun weeks before `as_of`.

    Critical when |bias| > `critical` in the last complete week; warning when
    |bias| > `warning` with the same sign in each of the last `warning_weeks`.
    Bias = (sum p50 - sum actual) / sum actual over the week's scored open days.
    `daily`: silver_daily rows (queue, date, is_open) of those weeks, which say
    which days were open. A week is complete, and judged, when at least
    min(`min_days`, its open days) of its open days have a scored point: the
    default 7 asks for all of them, so a week with a holiday counts when its
    other open days were all scored, and a week with one scored day never does.
    """
    points = _judged_points(accuracy, as_of, horizon_day)
    end = pd.Timestamp(as_of)
    monday = end - pd.Timedelta(days=end.day_of_week)
    weeks = [monday - pd.Timedelta(days=7 * k) for k in range(1, max(warning_weeks, 1) + 1)]
    points = points.loc[_monday_of(points["date"]).isin(weeks)]
    opened = daily.loc[daily["is_open"].astype(bool)]
    opened = opened.loc[_monday_of(opened["date"]).isin(weeks)]
    out = []
    for queue, g in points.groupby("queue", sort=True):
        open_dates = set(opened.loc[opened["queue"] == queue, "date"])
        judged = [_judge_week(g, open_dates, w, min_days) for w in weeks]
        latest, last = judged[0], judged[0].bias
        if last is None:
            log.info("weekly bias %s: %s is not judged (alerts.bias_min_days %d)", queue, latest.evidence(), min_days)
            continue
        word = "over" if last > 0 else "under"
        look = ("plans built on it are over-staffed" if last > 0 else "plans built on it are under-staffed")
        if abs(last) > critical:
            out.append(Alert(CRITICAL, "weekly_bias", "weekly_bias", queue=str(queue), value=float(last),
                             threshold=critical, message=(
                f"{queue}: {latest.evidence()} {word}-forecast by {100 * abs(last):.1f}% (forecast made "
                f"{_ahead(horizon_day)}), beyond +-{100 * critical:.0f}% (alerts.bias_critical); {look}: check for a "
                "level change (growth, a campaign starting or ending, routing or IVR changes) or missing days in the "
                "export")))
            continue
        streak = [w.bias for w in judged]
        if all(b is not None and abs(b) > warning and np.sign(b) == np.sign(last) for b in streak):
            listed = ", ".join(f"{w.evidence()} {100 * w.bias:+.1f}%" for w in reversed(judged))
            out.append(Alert(WARNING, "weekly_bias", "weekly_bias", queue=str(queue),
                             value=float(min(streak, key=abs)), threshold=warning, message=(
                f"{queue}: {word}-forecast beyond +-{100 * warning:.0f}% {len(weeks)} weeks running ({listed}) "
                f"(alerts.bias_warning); {look}: a trend the model lags behind; check recent growth or "
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
    edges = _bin_edges(ref, bins)
    n = len(edges) + 1
    expected = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n) / len(ref)
    actual = np.bincount(np.searchsorted(edges, rec, side="right"), minlength=n) / len(rec)
    return share_psi(expected, actual)


def _bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges of `bins` quantile bins of `reference` (fewer bins where its values repeat)."""
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def psi_noise(reference: np.ndarray | pd.Series, recent: np.ndarray | pd.Series, bins: int = 10) -> float:
    """The PSI that chance alone gives two samples of these sizes from one distribution: about
    (k - 1) (1/n_recent + 1/n_reference), k = the bins `psi` uses (inf when either side is empty)."""
    ref = np.asarray(reference, dtype=float)
    ref, n_rec = ref[np.isfinite(ref)], int(np.isfinite(np.asarray(recent, dtype=float)).sum())
    if not len(ref) or not n_rec:
        return float("inf")
    return len(_bin_edges(ref, bins)) * (1 / n_rec + 1 / len(ref))


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
    open days than MIN_RECENT_DAYS / MIN_REFERENCE_DAYS is not judged; the
    volume level is judged only when `psi_noise` is at most half of `warning`,
    the weekday shares only when each weekday open in the recent window is
    there MIN_DAYS_PER_WEEKDAY times.
    """
    end = pd.Timestamp(as_of)
    split = end - pd.Timedelta(days=recent_days)
    start = split - pd.Timedelta(days=reference_days)

    def windows(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        frame = frame.loc[frame["is_open"].astype(bool)]
        return (frame.loc[(frame["date"] >= start) & (frame["date"] < split)],
                frame.loc[(frame["date"] >= split) & (frame["date"] < end)])

    recent, reference = _span(split, end - pd.Timedelta(days=1)), _span(start, split - pd.Timedelta(days=1))
    out = []
    for queue in sorted(set(daily["queue"].astype("str"))):
        ref_d, rec_d = windows(daily.loc[daily["queue"] == queue])
        if ref_d["date"].nunique() < MIN_REFERENCE_DAYS or rec_d["date"].nunique() < MIN_RECENT_DAYS:
            continue
        recent_txt = f"{recent} ({rec_d['date'].nunique()} open days)"
        reference_txt = f"{reference} ({ref_d['date'].nunique()} open days)"
        ref_i, rec_i = windows(intervals.loc[intervals["queue"] == queue])
        noise = psi_noise(ref_i["offered"], rec_i["offered"], bins)
        if noise <= warning / 2:
            value = psi(ref_i["offered"], rec_i["offered"], bins)
            out += _drift_alert(queue, "psi_volume_level", value, warning, critical, (
                f"volume level of {recent_txt} moved away from {reference_txt} (mean per open interval "
                f"{rec_i['offered'].mean():.1f} vs {ref_i['offered'].mean():.1f}); check for a campaign, a routing or "
                "IVR change, or a queue split or merge; retrain (2_train.py --force) if it lasts"))
        elif len(ref_i) and len(rec_i):
            log.info("drift %s: volume level not judged: %d recent and %d reference open intervals leave a PSI of "
                     "%.3f to chance alone, above half of alerts.drift_warning_psi %g", queue, len(rec_i), len(ref_i),
                     noise, warning)
        per_weekday = rec_d.groupby(rec_d["date"].dt.day_of_week)["date"].nunique()
        if per_weekday.min() < MIN_DAYS_PER_WEEKDAY:
            continue
        ref_s, rec_s = weekday_shares(ref_d), weekday_shares(rec_d)
        value = share_psi(ref_s, rec_s)
        moved = int((rec_s - ref_s).abs().idxmax())
        out += _drift_alert(queue, "psi_weekday_shares", value, warning, critical, (
            f"weekday pattern of {recent_txt} changed from {reference_txt} (biggest move: {WEEKDAYS[moved]} "
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
    have a naive_benchmark row; judged when they cover at least `min_days`
    distinct open days (a few nights of origins give many points on few days).
    """
    end = pd.Timestamp(as_of)
    a = accuracy.loc[(accuracy["forecast_origin"] >= end - pd.Timedelta(days=window_days))
                     & (accuracy["forecast_origin"] < end)]
    keys = ["forecast_origin", "queue", "date"]
    model = a.loc[a["method"].isin(MODEL_METHODS) & a["is_open"].astype(bool), [*keys, "actual", "abs_error"]]
    naive = a.loc[a["method"] == NAIVE_BENCHMARK, [*keys, "abs_error"]].rename(columns={"abs_error": "naive_abs_error"})
    paired = model.merge(naive, on=keys, how="inner")
    out = []
    for queue, g in paired.groupby("queue", sort=True):
        total, n_days = g["actual"].sum(), g["date"].nunique()
        if n_days < min_days or total <= 0:
            continue
        ours, theirs = g["abs_error"].sum() / total, g["naive_abs_error"].sum() / total
        if ours >= theirs:
            out.append(Alert(WARNING, "model_vs_naive", "wmape_vs_naive", queue=str(queue), value=float(ours),
                             threshold=float(theirs), message=(
                f"{queue}: lightgbm wMAPE {100 * ours:.1f}% does not beat seasonal naive {100 * theirs:.1f}% on the "
                f"same {len(g)} points: {n_days} open days {_span(g['date'].min(), g['date'].max())} forecast from "
                f"origins {_span(g['forecast_origin'].min(), g['forecast_origin'].max())} (the last {window_days} days "
                "of origins); check the drift alerts and recent pattern changes, retrain (2_train.py --force) or roll "
                "back (2_train.py --rollback)")))
    return out


def fallback_alerts(latest_forecast: pd.DataFrame) -> list[Alert]:
    """Per queue of the latest forecast (gold_forecast_daily rows of one origin) that was not made by the model."""
    f = latest_forecast
    used = f.loc[~f["method"].isin(MODEL_METHODS) | f["fallback_reason"].notna()]
    out = []
    for queue, g in used.groupby("queue", sort=True):
        reasons = g["fallback_reason"].dropna()
        reason = str(reasons.iloc[0]) if len(reasons) else "no reason recorded"
        origin = pd.Timestamp(g["forecast_origin"].iloc[0])
        out.append(Alert(WARNING, "forecast_fallback", "fallback_days", queue=str(queue), value=float(len(g)),
                         threshold=0.0, message=(
            f"{queue}: the forecast from {origin:%Y-%m-%d} uses {g['method'].iloc[0]} instead of the model on "
            f"{len(g)} days ({_span(g['date'].min(), g['date'].max())}): {reason}; look at the reason: train or "
            "promote a model (2_train.py), the queue's history, or the failed guard in data_quality_checks of "
            "3_forecast")))
    return out

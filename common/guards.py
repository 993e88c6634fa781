"""Forecast guards: usable inputs, checks on each queue's forecast, and the fallback that always gives one.

The nightly run must end with a forecast for every queue. A queue gets the
weekly seasonal naive forecast (`forecaster.seasonal_naive_forecast`, bands
from its own historical errors) instead of the model's when the model cannot
forecast it (no production model, files missing or changed, queue unknown to
the model, fewer open days than `training.min_history_days`) or when its model
forecast fails a check:

- `forecast_non_negative`: every daily and interval value is finite and >= 0;
- `forecast_total_vs_recent`: the p50 total over the horizon's open days is
  within +-`max_total_deviation` of the same days valued at the trailing
  `total_weeks`-week same-weekday mean of open days (days whose weekday had no
  open day in those weeks are left out of both sides);
- `forecast_interval_peak`: no interval above `max_interval_ratio` x its day's
  mean open interval;
- `forecast_intraday_shape`: each day's open intervals correlate at least
  `min_shape_correlation` with the same weekday's historical profile (days
  with fewer than 3 intervals the profile knows are not judged).

A queue with fewer than 7 known days cannot have a weekly naive forecast; it
gets the mean of its open days (0 when it has none) on every open day, the
same value for every quantile, and the reason says so. Every check yields a
`CheckResult` of severity warning: the fallback handles a failure.
Frames use silver/gold names: `queue, date, offered, is_open, is_holiday`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from common.calendar import OpeningHours
from common.errors import DataError
from common.forecaster import quantile_column, seasonal_naive_forecast
from common.intraday import minute_of_day, quantile_columns
from common.validation import WARNING, CheckResult

CHECK_RECENCY = "history_recency"
CHECK_MODEL = "forecast_model"
CHECK_NON_NEGATIVE = "forecast_non_negative"
CHECK_TOTAL = "forecast_total_vs_recent"
CHECK_PEAK = "forecast_interval_peak"
CHECK_SHAPE = "forecast_intraday_shape"
GUARD_CHECKS = (CHECK_NON_NEGATIVE, CHECK_TOTAL, CHECK_PEAK, CHECK_SHAPE)
NAIVE_MIN_DAYS = 7
LIGHTGBM, SEASONAL_NAIVE = "lightgbm", "seasonal_naive"
_MIN_SHAPE_POINTS = 3


@dataclass(frozen=True)
class GuardLimits:
    """Thresholds of the post-prediction checks (config `forecast.guards`)."""

    max_total_deviation: float = 0.40
    total_weeks: int = 4
    max_interval_ratio: float = 5.0
    min_shape_correlation: float = 0.8


# --- inputs -------------------------------------------------------------------------------------------------

def day_calendar(queues: Sequence[str], start: date, end: date, hours: OpeningHours,
                 closed_dates: pd.DataFrame) -> pd.DataFrame:
    """One row per queue per date `start`..`end`: `queue, date, is_open, is_holiday`.

    is_holiday = the date is in `closed_dates`; is_open = the queue has an
    opening window that weekday and the date is not closed (the per-day
    equivalent of "any open interval" in `calendar.interval_grid`).
    """
    dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", unit="ns")
    closed = set(pd.to_datetime(closed_dates["date"]).dt.normalize()) if len(closed_dates) else set()
    is_holiday = dates.isin(list(closed))
    names = sorted({str(q) for q in queues})
    weekday = dates.day_of_week.to_numpy()
    parts = []
    for queue in names:
        open_weekday = np.array([hours.window(queue, wd) is not None for wd in range(7)])
        parts.append(pd.DataFrame({"queue": queue, "date": dates, "is_open": open_weekday[weekday] & ~is_holiday,
                                   "is_holiday": is_holiday}))
    if not parts:
        return pd.DataFrame({"queue": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                             "is_open": pd.Series(dtype=bool), "is_holiday": pd.Series(dtype=bool)})
    return pd.concat(parts, ignore_index=True).astype({"queue": "str"})


def complete_history(history: pd.DataFrame, calendar: pd.DataFrame) -> pd.DataFrame:
    """Daily history on a complete calendar: every date from the queue's first day to the calendar's last.

    Rows missing from `history` (silver not built for those days) get
    `offered` NaN (unknown, never 0) and `is_open`/`is_holiday` from
    `calendar` (`day_calendar` output). Grain: one row per queue per date.
    """
    hist = history.loc[:, ["queue", "date", "offered", "is_open", "is_holiday"]].astype({"queue": "str"})
    if hist.duplicated(["queue", "date"]).any():
        raise DataError("daily history has more than one row for a queue and date")
    first = hist.groupby("queue")["date"].min().rename("first").reset_index()
    cal = calendar.merge(first, on="queue", how="inner")
    cal = cal.loc[cal["date"] >= cal["first"], ["queue", "date", "is_open", "is_holiday"]]
    out = cal.merge(hist, on=["queue", "date"], how="outer", suffixes=("_cal", ""))
    out = out.assign(is_open=out["is_open"].fillna(out["is_open_cal"]).astype(bool),
                     is_holiday=out["is_holiday"].fillna(out["is_holiday_cal"]).astype(bool),
                     offered=out["offered"].astype(float))
    out = out.loc[:, ["queue", "date", "offered", "is_open", "is_holiday"]]
    return out.sort_values(["queue", "date"], kind="stable").reset_index(drop=True)


def check_history_recency(history: pd.DataFrame, as_of: date) -> list[CheckResult]:
    """Per queue: silver_daily reaches the day before `as_of` (else the forecast starts from stale data)."""
    last_needed = pd.Timestamp(as_of) - pd.Timedelta(days=1)
    results = []
    for queue, last in history.groupby("queue")["date"].max().items():
        gap = int((last_needed - last) / pd.Timedelta(days=1))
        ok = gap <= 0
        detail = (f"silver_daily reaches {last:%Y-%m-%d}" + ("" if ok else
                  f", {gap} day(s) short of {last_needed:%Y-%m-%d}; those days are unknown to the forecast "
                  "(run 1_build_silver.py for them)"))
        results.append(CheckResult(CHECK_RECENCY, WARNING, bool(ok), detail, queue=str(queue), value=float(max(gap, 0)),
                                   threshold=0.0))
    return results


def model_eligibility(history: pd.DataFrame, known_queues: Collection[str] | None, min_open_days: int,
                      model_problem: str | None) -> tuple[dict[str, str], list[CheckResult]]:
    """Which queues the model must not forecast, and why; plus one `forecast_model` result per queue.

    `known_queues` is the model's queues (None when there is no usable model,
    `model_problem` then says why). Open days count only days with a known value.
    Without a model, a queue short of `min_open_days` leads with that: step 2
    leaves such queues out and skips training when every queue is short, so
    "no production model" alone would hide the cause from the analyst.
    """
    known_y = history["offered"].notna() & history["is_open"].astype(bool)
    open_days = known_y.groupby(history["queue"].astype("str")).sum().astype(int)
    short = {q: f"history too short: {n} open days < training.min_history_days {min_open_days}"
             for q, n in open_days.items() if n < min_open_days}
    reasons, results = {}, []
    for queue, n_open in open_days.items():
        if known_queues is None:
            reason = model_problem or "no usable production model"
            if queue in short:
                reason = f"{short[queue]}, so step 2 trains no model on this queue yet; {reason}"
        elif queue not in set(known_queues):
            reason = "queue unknown to the production model (new, or left out of its training)"
        elif queue in short:
            reason = short[queue]
        else:
            reason = None
        if reason:
            reasons[queue] = reason
        detail = reason or f"model forecast: queue known to the model, {n_open} open days of history"
        results.append(CheckResult(CHECK_MODEL, WARNING, reason is None, detail, queue=queue, value=float(n_open),
                                   threshold=float(min_open_days)))
    return reasons, results


# --- post-prediction checks -----------------------------------------------------------------------------

def check_forecast(daily: pd.DataFrame, intervals: pd.DataFrame, history: pd.DataFrame,
                   reference_profile: pd.DataFrame, as_of: date, limits: GuardLimits = GuardLimits(),
                   method: str = LIGHTGBM) -> list[CheckResult]:
    """The four post-prediction checks (module doc) for every queue of `daily`: 4 results per queue.

    `daily`: `queue, date, is_open, p10, p50, p90`; `intervals`:
    `intraday.split_daily` output; `history`: daily `queue, date, offered,
    is_open` before `as_of`; `reference_profile`: `intraday.intraday_profile`
    output. `method` names the forecast checked, in each detail.
    """
    qcols = quantile_columns(daily)
    if "p50" not in qcols:
        raise DataError(f"check_forecast daily: needs a p50 column; has {list(daily.columns)}")
    daily = daily.astype({"queue": "str"})
    intervals = intervals.astype({"queue": "str"})
    negative = _bad_values(daily, qcols).add(_bad_values(intervals, qcols), fill_value=0)
    totals = _total_vs_recent(daily, history, as_of, limits.total_weeks)
    peaks = _interval_peaks(intervals, qcols)
    shapes = _shape_correlations(intervals, reference_profile)
    results = []
    for queue in sorted(daily["queue"].unique()):
        bad = int(negative.get(queue, 0))
        results.append(CheckResult(CHECK_NON_NEGATIVE, WARNING, bad == 0,
                                   f"{method}: " + (f"{bad} negative or missing daily/interval values" if bad
                                                    else "every daily and interval value is finite and >= 0"),
                                   queue=queue, value=float(bad), threshold=0.0))
        results.append(_total_result(queue, totals.get(queue), limits, method))
        results.append(_peak_result(queue, peaks.get(queue), limits, method))
        results.append(_shape_result(queue, shapes.get(queue), limits, method))
    return results


def _bad_values(frame: pd.DataFrame, qcols: list[str]) -> pd.Series:
    values = frame[qcols].to_numpy(dtype=float, na_value=np.nan)
    bad = (~np.isfinite(values) | (values < 0)).sum(axis=1)
    return pd.Series(bad, index=frame["queue"].to_numpy()).groupby(level=0).sum()


def _total_vs_recent(daily: pd.DataFrame, history: pd.DataFrame, as_of: date, weeks: int) -> dict[str, tuple]:
    """Per queue: (forecast p50 total, expected total, judged open days) over open days with a baseline."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * weeks)
    h = history.loc[(history["date"] >= start) & (history["date"] < pd.Timestamp(as_of))
                    & history["is_open"].astype(bool) & history["offered"].notna()]
    base = h.groupby([h["queue"].astype("str"), h["date"].dt.day_of_week.rename("weekday")])["offered"].mean()
    base = base.rename("expected").reset_index()
    fut = daily.loc[daily["is_open"].astype(bool), ["queue", "date", "p50"]]
    fut = fut.assign(weekday=fut["date"].dt.day_of_week).merge(base, on=["queue", "weekday"], how="inner")
    sums = fut.groupby("queue").agg(forecast=("p50", "sum"), expected=("expected", "sum"), days=("p50", "size"))
    return {q: (r.forecast, r.expected, int(r.days)) for q, r in sums.iterrows()}


def _total_result(queue: str, total: tuple | None, limits: GuardLimits, method: str) -> CheckResult:
    tol, weeks = limits.max_total_deviation, limits.total_weeks
    if total is None:
        return CheckResult(CHECK_TOTAL, WARNING, True, f"{method}: not judged: no open forecast day has an open "
                           f"same-weekday day in the last {weeks} weeks", queue=queue, threshold=tol)
    forecast, expected, days = total
    if expected <= 0:
        ok = forecast <= 0
        return CheckResult(CHECK_TOTAL, WARNING, bool(ok), f"{method}: p50 total {forecast:.0f} over {days} open days; "
                           f"the last {weeks} weeks had no contact on those weekdays", queue=queue, threshold=tol)
    deviation = forecast / expected - 1.0
    ok = bool(np.isfinite(deviation)) and abs(deviation) <= tol + 1e-12
    detail = (f"{method}: p50 total {forecast:.0f} over {days} open days vs {expected:.0f} at the trailing "
              f"{weeks}-week same-weekday mean: {deviation:+.0%} (limit +-{tol:.0%})")
    return CheckResult(CHECK_TOTAL, WARNING, bool(ok), detail, queue=queue,
                       value=float(deviation) if np.isfinite(deviation) else None, threshold=tol)


def _interval_peaks(intervals: pd.DataFrame, qcols: list[str]) -> dict[str, tuple]:
    """Per queue: (highest interval / its day's mean open interval, interval_start of it), over all quantiles."""
    open_ = intervals.loc[intervals["is_open"].astype(bool)]
    if open_.empty:
        return {}
    keys = [open_["queue"], open_["date"]]
    best = pd.Series(-np.inf, index=open_.index)
    for q in qcols:
        values = open_[q].astype(float)
        mean = values.groupby(keys).transform("mean")
        ratio = values / mean.where(mean > 0)
        best = np.fmax(best, ratio.fillna(-np.inf))
    frame = pd.DataFrame({"queue": open_["queue"], "ratio": best, "at": open_["interval_start"]})
    frame = frame.loc[np.isfinite(frame["ratio"])]
    top = frame.sort_values(["queue", "ratio"], ascending=[True, False], kind="stable").groupby("queue").head(1)
    return {r.queue: (float(r.ratio), r.at) for r in top.itertuples(index=False)}


def _peak_result(queue: str, peak: tuple | None, limits: GuardLimits, method: str) -> CheckResult:
    limit = limits.max_interval_ratio
    if peak is None:
        return CheckResult(CHECK_PEAK, WARNING, True, f"{method}: not judged: no open interval with volume",
                           queue=queue, threshold=limit)
    ratio, at = peak
    ok = ratio <= limit + 1e-12
    detail = (f"{method}: highest interval {at:%Y-%m-%d %H:%M} is {ratio:.2f}x its day's mean open interval "
              f"(limit {limit:g}x)")
    return CheckResult(CHECK_PEAK, WARNING, bool(ok), detail, queue=queue, value=ratio, threshold=limit)


def _shape_correlations(intervals: pd.DataFrame, profile: pd.DataFrame) -> dict[str, tuple]:
    """Per queue: (lowest daily correlation of open-interval p50 with the profile share, its date, days judged)."""
    open_ = intervals.loc[intervals["is_open"].astype(bool), ["queue", "date", "interval_start", "p50"]]
    open_ = open_.assign(weekday=open_["date"].dt.day_of_week.astype("int64"),
                         minute=minute_of_day(open_["interval_start"]))
    prof = profile.loc[:, ["queue", "weekday", "minute", "share"]].astype({"queue": "str"})
    joined = open_.merge(prof, on=["queue", "weekday", "minute"], how="inner")
    day_total = joined.groupby(["queue", "date"])["p50"].transform("sum")
    joined = joined.loc[day_total > 0]
    if joined.empty:
        return {}
    codes, days = pd.factorize(pd.MultiIndex.from_frame(joined[["queue", "date"]]))
    x = joined["p50"].to_numpy(dtype=float)
    y = joined["share"].to_numpy(dtype=float)
    n = np.bincount(codes).astype(float)
    mx, my = np.bincount(codes, x) / n, np.bincount(codes, y) / n
    dx, dy = x - mx[codes], y - my[codes]
    sxx, syy, sxy = np.bincount(codes, dx * dx), np.bincount(codes, dy * dy), np.bincount(codes, dx * dy)
    scale = np.sqrt(sxx * syy)
    # flat = no variation beyond rounding noise, relative to the values' size
    flat_x, flat_y = sxx <= 1e-20 + 1e-12 * mx ** 2 * n, syy <= 1e-20 + 1e-12 * my ** 2 * n
    # both flat: same shape (1); one flat and the other not: no shape in common (0)
    corr = np.where(flat_x & flat_y, 1.0, np.where(flat_x | flat_y, 0.0,
                                                   np.divide(sxy, scale, out=np.zeros_like(sxy), where=scale > 0)))
    judged = n >= _MIN_SHAPE_POINTS
    frame = pd.DataFrame({"queue": days.get_level_values(0), "date": days.get_level_values(1), "corr": corr})
    frame = frame.loc[judged]
    out = {}
    for queue, rows in frame.groupby("queue", sort=True):
        worst = rows.loc[rows["corr"].idxmin()]
        out[str(queue)] = (float(worst["corr"]), worst["date"], len(rows))
    return out


def _shape_result(queue: str, shape: tuple | None, limits: GuardLimits, method: str) -> CheckResult:
    limit = limits.min_shape_correlation
    if shape is None:
        return CheckResult(CHECK_SHAPE, WARNING, True, f"{method}: not judged: no forecast day with volume has "
                           f">= {_MIN_SHAPE_POINTS} open intervals with same-weekday history", queue=queue,
                           threshold=limit)
    corr, day, days = shape
    ok = corr >= limit - 1e-12
    detail = (f"{method}: lowest intraday correlation with the same weekday's history {corr:.2f} on {day:%Y-%m-%d} "
              f"({days} days judged, limit {limit:g})")
    return CheckResult(CHECK_SHAPE, WARNING, bool(ok), detail, queue=queue, value=corr, threshold=limit)


def failed_reasons(results: Sequence[CheckResult]) -> dict[str, str]:
    """Queue -> 'check: detail; ...' of its failed post-prediction checks (queues that must fall back)."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        if r.check_name in GUARD_CHECKS and not r.passed and r.queue is not None:
            reasons.setdefault(r.queue, []).append(f"{r.check_name}: {r.detail}")
    return {q: "guard failed: " + "; ".join(parts) for q, parts in reasons.items()}


# --- fallback -------------------------------------------------------------------------------------------

def fallback_forecast(history: pd.DataFrame, future: pd.DataFrame,
                      quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> tuple[pd.DataFrame, dict[str, str]]:
    """The fallback for every queue of `future`, and a note per queue that got less than seasonal naive.

    `history`: daily `queue, date, offered, is_open, is_holiday` ending the
    day before each queue's first future date (unknown days NaN); `future`:
    `queue, date, is_open, is_holiday`. Queues with >= 7 known days get
    `seasonal_naive_forecast`; the others the mean of their open days (module
    doc). Grain: one row per queue per future date: `queue, date,
    horizon_day, p10, p50, p90`.
    """
    quantiles = tuple(sorted(quantiles))
    qcols = [quantile_column(q) for q in quantiles]
    hist = history.astype({"queue": "str"})
    fut = future.astype({"queue": "str"})
    known = hist["offered"].notna().groupby(hist["queue"]).sum()
    naive_queues = sorted(q for q in fut["queue"].unique() if known.get(q, 0) >= NAIVE_MIN_DAYS)
    parts, notes = [], {}
    if naive_queues:
        h = hist.loc[hist["queue"].isin(naive_queues)].rename(columns={"queue": "series", "offered": "y"})
        f = fut.loc[fut["queue"].isin(naive_queues)].rename(columns={"queue": "series"})
        parts.append(seasonal_naive_forecast(h, f, quantiles).rename(columns={"series": "queue"}))
    for queue in sorted(set(fut["queue"]) - set(naive_queues)):
        h = hist.loc[hist["queue"] == queue]
        open_known = h.loc[h["is_open"].astype(bool) & h["offered"].notna(), "offered"]
        mean = float(open_known.mean()) if len(open_known) else 0.0
        rows = fut.loc[fut["queue"] == queue].sort_values("date")
        last = h["date"].max() if len(h) else rows["date"].min() - pd.Timedelta(days=1)
        value = np.where(rows["is_open"].to_numpy(dtype=bool), mean, 0.0)
        parts.append(pd.DataFrame({"queue": queue, "date": rows["date"].to_numpy(),
                                   "horizon_day": ((rows["date"] - last) // pd.Timedelta(days=1)).to_numpy(),
                                   **{c: value for c in qcols}}))
        notes[queue] = (f"history too short for seasonal naive ({int(known.get(queue, 0))} known days < "
                        f"{NAIVE_MIN_DAYS}): mean of its open days (n={len(open_known)}) = {mean:.1f} on every "
                        "open day, no band")
    out = pd.concat(parts, ignore_index=True).astype({"queue": "str", "horizon_day": "int64"})
    return out.loc[:, ["queue", "date", "horizon_day", *qcols]].sort_values(
        ["queue", "date"], kind="stable").reset_index(drop=True), notes


def apply_fallback(primary: pd.DataFrame, fallback: pd.DataFrame, reasons: dict[str, str],
                   model_version: str | None) -> pd.DataFrame:
    """The forecast to publish: the model's rows, and the fallback's for queues with a reason or no model rows.

    Grain: one row per queue per date: `queue, date, horizon_day, p10, p50,
    p90, method, model_version, fallback_reason` (model_version only on
    lightgbm rows; a queue without model rows and without a reason gets
    'no model forecast').
    """
    qcols = quantile_columns(fallback)
    cols = ["queue", "date", "horizon_day", *qcols]
    modelled = set(primary["queue"].astype("str")) if len(primary) else set()
    fb = fallback.loc[:, cols].astype({"queue": "str"})
    use_fb = fb["queue"].map(lambda q: q in reasons or q not in modelled)
    parts = [fb.loc[use_fb].assign(method=SEASONAL_NAIVE, model_version=None,
                                   fallback_reason=fb.loc[use_fb, "queue"].map(
                                       lambda q: reasons.get(q, "no model forecast")))]
    if len(primary):
        pm = primary.loc[:, cols].astype({"queue": "str"})
        keep = ~pm["queue"].isin(list(reasons))
        parts.append(pm.loc[keep].assign(method=LIGHTGBM, model_version=model_version, fallback_reason=None))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else parts[0]
    out = out.astype({"model_version": "object", "fallback_reason": "object"})
    return out.sort_values(["queue", "date"], kind="stable").reset_index(drop=True)

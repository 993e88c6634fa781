"""Forecast guards: usable inputs, checks on each queue's forecast, and the fallback that always gives one.

The nightly run must end with a forecast for every queue. A queue gets the
weekly seasonal naive forecast (`baselines.seasonal_naive_forecast`, bands
from its own historical errors) instead of the model's when the model cannot
forecast it (no production model, files missing or changed, queue unknown to
the model, fewer open days than `training.min_history_days`) or when its model
forecast fails a check:

- `forecast_non_negative`: every daily and interval value is finite and >= 0;
- `forecast_day_vs_recent`: each open forecast day's p50 is within +-`max_total_deviation` of the mean of the
  same weekday's open days in the trailing `total_weeks` weeks (the design's post-prediction rule, per day: one
  absurd day must not hide in a 14-day total). Not judged: closed days (0 by rule), days next to a closed holiday
  (eves and bridge days differ by nature), weekdays without an open day in those weeks; and a deviation within
  three times the queue's normal day-to-day spread (its own recent days, at least a Poisson count's: 3 sqrt(mean)
  + 1) is noise, not a failure, so a small noisy queue is not thrown away for a normal day. Days next to a holiday
  are also left out of the mean.

The intraday split is the same for the model and the fallback, so its checks (peak interval, shape against
history) judge the profile (`common.profiles`), never the daily model.

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

from common.baselines import seasonal_naive_forecast
from common.errors import DataError
from common.forecast_frame import quantile_column
from common.intraday import quantile_columns
from common.opening_hours import OpeningHours
from common.validation import WARNING, CheckResult

CHECK_RECENCY = "history_recency"
CHECK_MODEL = "forecast_model"
CHECK_NON_NEGATIVE = "forecast_non_negative"
CHECK_DAY = "forecast_day_vs_recent"
CHECK_PROFILE = "intraday_profile"
GUARD_CHECKS = (CHECK_NON_NEGATIVE, CHECK_DAY)
NAIVE_MIN_DAYS = 7
LIGHTGBM, SEASONAL_NAIVE = "lightgbm", "seasonal_naive"
NOISE_SIGMAS = 3.0
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class GuardLimits:
    """Thresholds of the post-prediction checks (config `forecast.guards`)."""

    max_total_deviation: float = 0.40
    total_weeks: int = 4


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

def check_forecast(daily: pd.DataFrame, intervals: pd.DataFrame, history: pd.DataFrame, closed_dates: pd.DataFrame,
                   as_of: date, limits: GuardLimits = GuardLimits(), method: str = LIGHTGBM) -> list[CheckResult]:
    """The daily post-prediction checks (module doc) for every queue of `daily`: 2 results per queue.

    `daily`: `queue, date, is_open, p10, p50, p90`; `intervals`: `intraday.split_daily` output; `history`: daily
    `queue, date, offered, is_open` before `as_of`; `closed_dates`: `date` of closed holidays (eves are the days
    next to them). `method` names the forecast checked, in each detail.
    """
    qcols = quantile_columns(daily)
    if "p50" not in qcols:
        raise DataError(f"check_forecast daily: needs a p50 column; has {list(daily.columns)}")
    daily = daily.astype({"queue": "str"})
    intervals = intervals.astype({"queue": "str"})
    negative = _bad_values(daily, qcols).add(_bad_values(intervals, qcols), fill_value=0)
    days = day_deviations(daily, history, closed_dates, as_of, limits.total_weeks)
    results = []
    for queue in sorted(daily["queue"].unique()):
        bad = int(negative.get(queue, 0))
        results.append(CheckResult(CHECK_NON_NEGATIVE, WARNING, bad == 0,
                                   f"{method}: " + (f"{bad} negative or missing daily/interval values" if bad
                                                    else "every daily and interval value is finite and >= 0"),
                                   queue=queue, value=float(bad), threshold=0.0))
        results.append(_day_result(queue, days.loc[days["queue"] == queue], limits, method))
    return results


def _bad_values(frame: pd.DataFrame, qcols: list[str]) -> pd.Series:
    values = frame[qcols].to_numpy(dtype=float, na_value=np.nan)
    bad = (~np.isfinite(values) | (values < 0)).sum(axis=1)
    return pd.Series(bad, index=frame["queue"].to_numpy()).groupby(level=0).sum()


def _next_to_holiday(dates: pd.Series, closed_dates: pd.DataFrame) -> np.ndarray:
    closed = set(pd.to_datetime(closed_dates["date"]).dt.normalize()) if len(closed_dates) else set()
    if not closed:
        return np.zeros(len(dates), dtype=bool)
    one = pd.Timedelta(days=1)
    return ((dates - one).isin(list(closed)) | (dates + one).isin(list(closed))).to_numpy()


def day_deviations(daily: pd.DataFrame, history: pd.DataFrame, closed_dates: pd.DataFrame, as_of: date,
                   weeks: int) -> pd.DataFrame:
    """One row per judged forecast day: `queue, date, p50, expected, days, deviation, noise`.

    expected = mean offered of the same weekday's open days in the `weeks` weeks before `as_of` (days next to a
    holiday left out), over `days` days; noise = 3 x the larger of a Poisson count's spread (sqrt(expected), plus
    one call) and the queue's own day-to-day spread in those weeks (`_relative_spread` x expected): a deviation
    within it is what a normal day does. Judged: open days not next to a holiday whose weekday has such a mean.
    """
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * weeks)
    h = history.loc[(history["date"] >= start) & (history["date"] < pd.Timestamp(as_of))
                    & history["is_open"].astype(bool) & history["offered"].notna()]
    h = h.loc[~_next_to_holiday(h["date"], closed_dates)]
    keys = [h["queue"].astype("str"), h["date"].dt.day_of_week.rename("weekday")]
    base = h.groupby(keys)["offered"].agg(["mean", "size"]).rename(columns={"mean": "expected", "size": "days"})
    base = base.reset_index()
    spread = _relative_spread(h, keys)
    fut = daily.loc[daily["is_open"].astype(bool), ["queue", "date", "p50"]]
    fut = fut.loc[~_next_to_holiday(fut["date"], closed_dates)]
    fut = fut.assign(weekday=fut["date"].dt.day_of_week).merge(base, on=["queue", "weekday"], how="inner")
    expected = fut["expected"].to_numpy(dtype=float)
    deviation = np.divide(fut["p50"].to_numpy(dtype=float) - expected, expected,
                          out=np.full(len(fut), np.inf), where=expected > 0)
    deviation = np.where((expected <= 0) & (fut["p50"].to_numpy(dtype=float) <= 0), 0.0, deviation)
    rel = fut["queue"].map(spread).fillna(0.0).to_numpy(dtype=float)
    noise = np.maximum(NOISE_SIGMAS * np.sqrt(np.maximum(expected, 0)) + 1.0, NOISE_SIGMAS * rel * expected)
    out = fut.assign(deviation=deviation, noise=noise).loc[:, ["queue", "date", "p50", "expected", "days",
                                                                "deviation", "noise"]]
    return out.sort_values(["queue", "date"], kind="stable").reset_index(drop=True)


def _relative_spread(h: pd.DataFrame, keys: list[pd.Series]) -> pd.Series:
    """Per queue: the day-to-day spread of its open days around their weekday mean, as a share of that mean.

    Robust (1.4826 x median absolute deviation, so one odd day does not widen it), and corrected for the mean being
    fitted on the same days (x sqrt(n / (n - 1)) per weekday). 0 with fewer than 2 days on every weekday.
    """
    mean = h.groupby(keys)["offered"].transform("mean")
    n = h.groupby(keys)["offered"].transform("size").astype(float)
    ok = (mean > 0) & (n >= 2)
    rel = ((h["offered"] / mean - 1.0) * np.sqrt(n / (n - 1.0).where(n > 1, 1.0))).loc[ok]
    mad = rel.abs().groupby(h.loc[ok, "queue"].astype("str")).median()
    return 1.4826 * mad


def _day_result(queue: str, days: pd.DataFrame, limits: GuardLimits, method: str) -> CheckResult:
    tol, weeks = limits.max_total_deviation, limits.total_weeks
    if days.empty:
        return CheckResult(CHECK_DAY, WARNING, True, f"{method}: not judged: no open forecast day (away from "
                           f"holidays) has an open same-weekday day in the last {weeks} weeks", queue=queue,
                           threshold=tol)
    off = (~np.isfinite(days["deviation"]) | (days["deviation"].abs() > tol + 1e-12)) & (
        (days["p50"] - days["expected"]).abs() > days["noise"])
    worst = days.loc[days["deviation"].abs().fillna(np.inf).idxmax()]
    if off.any():
        first = days.loc[off].iloc[0]
        more = f" ({int(off.sum())} days off in all)" if off.sum() > 1 else ""
        detail = (f"{method}: {_day_words(first, weeks)}; limit +-{tol:.0%}{more}")
        value = float(first["deviation"]) if np.isfinite(first["deviation"]) else None
        return CheckResult(CHECK_DAY, WARNING, False, detail, queue=queue, value=value, threshold=tol)
    detail = (f"{method}: {len(days)} open days judged, each within +-{tol:.0%} of its usual weekday (or within "
              f"noise); furthest {worst['date']:%a %Y-%m-%d} {worst['deviation']:+.0%}")
    return CheckResult(CHECK_DAY, WARNING, True, detail, queue=queue, value=float(worst["deviation"]), threshold=tol)


def _day_words(row: pd.Series, weeks: int) -> str:
    """"the forecast for Tue 2025-03-11 (1,234 calls) is 62% above the usual Tuesday (762: mean of the last 4)"."""
    name = _WEEKDAY_NAMES[row["date"].day_of_week]
    dev = row["deviation"]
    how = "far above" if not np.isfinite(dev) else f"{abs(dev):.0%} {'above' if dev > 0 else 'below'}"
    return (f"the forecast for {row['date']:%a %Y-%m-%d} ({row['p50']:,.0f} calls) is {how} the usual {name} "
            f"({row['expected']:,.0f}: mean of the last {int(row['days'])} open {name}s in {weeks} weeks)")


def profile_results(choice: pd.DataFrame) -> list[CheckResult]:
    """One `intraday_profile` result per queue from `profiles.choose_profiles`' choice: failed (a warning) when a
    weekday's same-weekday profile was replaced, with which profile and why."""
    results = []
    for queue, rows in choice.groupby("queue", sort=True):
        replaced = rows.loc[~rows["passed"].astype(bool)]
        detail = ("same-weekday profiles used for every weekday" if replaced.empty else "; ".join(
            f"{_WEEKDAY_NAMES[int(r.weekday)]}: {r.reason}" for r in replaced.itertuples(index=False)))
        results.append(CheckResult(CHECK_PROFILE, WARNING, replaced.empty, detail, queue=str(queue),
                                   value=float(len(replaced)), threshold=0.0))
    return results


def failed_reasons(results: Sequence[CheckResult]) -> dict[str, str]:
    """Queue -> 'check: detail; ...' of its failed post-prediction checks (queues that must fall back)."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        if r.check_name in GUARD_CHECKS and not r.passed and r.queue is not None:
            detail = r.detail.split(": ", 1)[1] if r.detail.startswith(f"{LIGHTGBM}: ") else r.detail
            reasons.setdefault(r.queue, []).append(f"model forecast failed its check: {detail}")
    return {q: "; ".join(parts) + "; seasonal naive published instead" for q, parts in reasons.items()}


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

"""From daily forecasts to intervals: the same-weekday intraday profile, the split, and the AHT per interval.

Intervals are matched by local wall-clock time of day (`minute` = minutes since
local midnight), never by UTC, so a profile learnt in winter applies to a
summer day at the same clock time. DST days need no special case: the
interval grid of a fall-back day has 50 half-hours whose repeated 02:00 and
02:30 both take the profile's 02:00 / 02:30 share, a spring-forward day has 46
and lacks them; the weights are renormalised per day, so every day's intervals
sum to its daily value for each quantile.

Decisions:
- The profile is the mean offered per time of day over the included days
  (the queue's open, non-holiday same-weekday days of the last N weeks; open
  intervals only), divided by the sum of those means. A mean over the days
  where that time was open (not a pooled sum) keeps a time of day that opened
  recently, or one missing on a spring-forward day, on the same footing. A
  repeated wall-clock time on a past fall-back day counts once (its mean).
- An open interval the profile knows nothing about (a new opening hour, a
  weekday never open before, a queue without interval history) gets the flat
  share 1 / (open intervals that day); the day's weights are then
  renormalised. Times the profile knows that are closed now get nothing.
- AHT per interval is the handled-weighted mean of the same weekday and time
  of day over the last `weeks` weeks, else the queue's weekday mean, else the
  queue's mean over those weeks, else `default_seconds` (300 s by default);
  `aht_source` says which. Closed intervals have no AHT (NaN).
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from common.errors import DataError

_QUANTILE_COLUMN = re.compile(r"^p\d+(\.\d+)?$")
GRID_COLUMNS = ["queue", "date", "interval_start", "interval_start_utc", "is_open"]


def minute_of_day(local_times: pd.Series) -> np.ndarray:
    """Minutes since local midnight of each wall-clock time (int64)."""
    ns = pd.to_datetime(local_times).to_numpy().astype("datetime64[ns]")
    return ((ns - ns.astype("datetime64[D]")).astype("timedelta64[m]")).astype(np.int64)


def quantile_columns(frame: pd.DataFrame) -> list[str]:
    """The quantile columns of a forecast frame (`p10`, `p50`, `p97.5`, ...), in frame order."""
    return [c for c in frame.columns if _QUANTILE_COLUMN.match(str(c))]


def _window(frame: pd.DataFrame, as_of: date, weeks: int) -> pd.DataFrame:
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * weeks)
    dates = frame["date"]
    return frame.loc[(dates >= start) & (dates < pd.Timestamp(as_of))]


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {missing}; have {list(frame.columns)}")


def intraday_profile(history: pd.DataFrame, as_of: date, weeks: int, closed_dates: pd.DataFrame,
                     half_life_weeks: float | None = None) -> pd.DataFrame:
    """Same-weekday intraday shares of the `weeks` weeks before `as_of` (see module doc).

    `half_life_weeks` weights each day by 0.5 ** (its age in weeks / half_life) in the per-time means, so
    recent weeks count more (None: every included day counts the same; `days` still counts days).

    `history` has silver_interval columns `queue, date, interval_start,
    offered, is_open`; dates in `closed_dates.date` are left out. Grain: one
    row per queue per weekday (0=Mon) per wall-clock minute of day that was
    open on an included day: `queue, weekday, minute, share, days` (days =
    how many days the mean is over). Shares sum to 1 per queue and weekday;
    a queue and weekday whose included days had no contact at all has no rows.
    """
    if weeks < 1:
        raise DataError(f"forecast.profile_weeks == {weeks}, must be >= 1")
    _require(history, ["queue", "date", "interval_start", "offered", "is_open"], "intraday_profile history")
    frame = _window(history, as_of, weeks)
    closed = pd.to_datetime(closed_dates["date"]) if len(closed_dates) else pd.Series(dtype="datetime64[ns]")
    frame = frame.loc[frame["is_open"].astype(bool) & ~frame["date"].isin(closed)]
    empty = pd.DataFrame({"queue": pd.Series(dtype="str"), "weekday": pd.Series(dtype="int64"),
                          "minute": pd.Series(dtype="int64"), "share": pd.Series(dtype=float),
                          "days": pd.Series(dtype="int64")})
    if frame.empty:
        return empty
    frame = pd.DataFrame({"queue": frame["queue"].astype("str").to_numpy(), "date": frame["date"].to_numpy(),
                          "minute": minute_of_day(frame["interval_start"]),
                          "offered": frame["offered"].to_numpy(dtype=float, na_value=np.nan)})
    # a past fall-back day holds 02:00 twice: one value per day and clock time
    per_day = frame.groupby(["queue", "date", "minute"], as_index=False, sort=False)["offered"].mean()
    per_day = per_day.assign(weekday=per_day["date"].dt.day_of_week.astype("int64"))
    if half_life_weeks is not None:
        if not half_life_weeks > 0:
            raise DataError(f"intraday_profile half_life_weeks == {half_life_weeks}, must be > 0 (or None)")
        age_weeks = (pd.Timestamp(as_of) - per_day["date"]).dt.days.to_numpy() / 7.0
        weight = np.where(per_day["offered"].notna().to_numpy(), 0.5 ** (age_weeks / half_life_weeks), 0.0)
        per_day = per_day.assign(_w=weight, _wy=per_day["offered"].fillna(0.0).to_numpy() * weight)
        level = per_day.groupby(["queue", "weekday", "minute"], as_index=False, sort=True).agg(
            _wy=("_wy", "sum"), _w=("_w", "sum"), days=("offered", "count"))
        level = level.assign(mean=level["_wy"] / level["_w"].where(level["_w"] > 0)).drop(columns=["_wy", "_w"])
    else:
        level = per_day.groupby(["queue", "weekday", "minute"], as_index=False, sort=True).agg(
            mean=("offered", "mean"), days=("offered", "count"))
    total = level.groupby(["queue", "weekday"])["mean"].transform("sum")
    level = level.loc[total > 0]
    share = level["mean"] / total.loc[total > 0]
    out = level.assign(share=share.to_numpy(), days=level["days"].astype("int64"))
    return out.loc[:, list(empty.columns)].reset_index(drop=True) if not out.empty else empty


def split_daily(daily_forecast: pd.DataFrame, profile: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    """Each day's quantiles spread over its intervals by the profile (see module doc).

    `daily_forecast`: `queue, date, p10, p50, p90` (any `pNN` columns), one
    row per queue per date. `profile`: `intraday_profile` output. `grid`:
    `calendar.interval_grid` rows (`queue, date, interval_start,
    interval_start_utc, is_open`). Grain: one row per grid row whose queue and
    date are forecast: `queue, date, interval_start, interval_start_utc,
    is_open, share, p10, p50, p90`; closed intervals are 0 and each day's
    intervals sum to its daily value per quantile. A day with volume but no
    open interval in `grid` is a DataError (the calendars disagree).
    """
    qcols = quantile_columns(daily_forecast)
    _require(daily_forecast, ["queue", "date", *qcols], "split_daily daily_forecast")
    _require(grid, GRID_COLUMNS, "split_daily grid")
    _require(profile, ["queue", "weekday", "minute", "share"], "split_daily profile")
    if not qcols:
        raise DataError("split_daily daily_forecast: no quantile columns (p10, p50, ...)")
    daily = daily_forecast.loc[:, ["queue", "date", *qcols]].astype({"queue": "str"})
    if daily.duplicated(["queue", "date"]).any():
        raise DataError("split_daily daily_forecast: more than one row for a queue and date")
    g = grid.loc[:, GRID_COLUMNS].astype({"queue": "str"})
    g = g.assign(weekday=g["date"].dt.day_of_week.astype("int64"), minute=minute_of_day(g["interval_start"]))
    _check_days_covered(daily, g, qcols)

    merged = g.merge(daily, on=["queue", "date"], how="inner")
    prof = profile.loc[:, ["queue", "weekday", "minute", "share"]].astype({"queue": "str"})
    merged = merged.merge(prof, on=["queue", "weekday", "minute"], how="left", validate="many_to_one")
    is_open = merged["is_open"].to_numpy(dtype=bool)
    known = merged["share"].to_numpy(dtype=float, na_value=np.nan)
    day = merged.groupby(["queue", "date"], sort=False).ngroup().to_numpy()
    n_open = np.bincount(day, weights=is_open.astype(float))[day]
    flat = np.divide(1.0, n_open, out=np.zeros(len(day)), where=n_open > 0)
    weight = np.where(is_open, np.where(np.isnan(known), flat, known), 0.0)
    total = np.bincount(day, weights=weight)[day]
    # all known shares 0 on today's open intervals (calls only came in hours now closed): flat
    weight = np.where(total > 0, np.divide(weight, total, out=np.zeros(len(day)), where=total > 0),
                      np.where(is_open, flat, 0.0))
    values = {q: merged[q].to_numpy(dtype=float) * weight for q in qcols}
    out = merged.loc[:, GRID_COLUMNS].assign(share=weight, **values)
    return out.sort_values(["queue", "interval_start_utc"], kind="stable").reset_index(drop=True)


def _check_days_covered(daily: pd.DataFrame, grid: pd.DataFrame, qcols: list[str]) -> None:
    has_open = grid.loc[grid["is_open"].astype(bool), ["queue", "date"]].drop_duplicates().assign(_open=True)
    check = daily.merge(has_open, on=["queue", "date"], how="left")
    lost = check["_open"].isna().to_numpy() & (check[qcols].to_numpy(dtype=float) > 0).any(axis=1)
    if lost.any():
        row = check.loc[lost].iloc[0]
        raise DataError(f"split_daily: {int(lost.sum())} forecast day(s) with volume have no open interval in the "
                        f"grid, first {row['queue']} {row['date']:%Y-%m-%d}; the daily calendar and the interval "
                        "grid disagree")


def aht_forecast(history: pd.DataFrame, grid: pd.DataFrame, as_of: date, weeks: int,
                 default_seconds: float = 300.0) -> pd.DataFrame:
    """AHT per forecast interval (see module doc for the fallbacks).

    `history` has silver_interval columns `queue, date, interval_start,
    handled, aht_seconds`; only the `weeks` weeks before `as_of` are used.
    Grain: one row per `grid` row: `queue, interval_start_utc, aht_seconds,
    aht_source` (interval | weekday | queue | default | closed).
    """
    if weeks < 1:
        raise DataError(f"forecast.aht_weeks == {weeks}, must be >= 1")
    if not default_seconds > 0:
        raise DataError(f"forecast.default_aht_seconds == {default_seconds}, must be > 0")
    _require(history, ["queue", "date", "interval_start", "handled", "aht_seconds"], "aht_forecast history")
    _require(grid, GRID_COLUMNS, "aht_forecast grid")
    h = _window(history, as_of, weeks)
    handled = h["handled"].to_numpy(dtype=float, na_value=np.nan)
    aht = h["aht_seconds"].to_numpy(dtype=float, na_value=np.nan)
    ok = (handled > 0) & np.isfinite(aht)
    h = pd.DataFrame({"queue": h["queue"].astype("str").to_numpy()[ok],
                      "weekday": h["date"].dt.day_of_week.to_numpy()[ok].astype("int64"),
                      "minute": minute_of_day(h["interval_start"])[ok],
                      "work": aht[ok] * handled[ok], "handled": handled[ok]})
    g = grid.loc[:, ["queue", "date", "interval_start", "interval_start_utc", "is_open"]].astype({"queue": "str"})
    g = g.assign(weekday=g["date"].dt.day_of_week.astype("int64"), minute=minute_of_day(g["interval_start"]))
    aht_out = np.full(len(g), np.nan)
    source = np.full(len(g), "default", dtype=object)
    # finest level first; a coarser level fills only what is still missing
    for name, keys in (("interval", ["queue", "weekday", "minute"]), ("weekday", ["queue", "weekday"]),
                       ("queue", ["queue"])):
        sums = h.groupby(keys, as_index=False)[["work", "handled"]].sum()
        sums = sums.assign(mean=sums["work"] / sums["handled"]).loc[:, [*keys, "mean"]]
        level = g.loc[:, keys].merge(sums, on=keys, how="left")["mean"].to_numpy(dtype=float)
        fill = np.isnan(aht_out) & ~np.isnan(level)
        aht_out[fill] = level[fill]
        source[fill] = name
    aht_out[np.isnan(aht_out)] = float(default_seconds)
    is_open = g["is_open"].to_numpy(dtype=bool)
    aht_out[~is_open] = np.nan
    source[~is_open] = "closed"
    return pd.DataFrame({"queue": g["queue"].to_numpy(), "interval_start_utc": g["interval_start_utc"].to_numpy(),
                         "aht_seconds": aht_out, "aht_source": pd.Series(source, dtype="str").to_numpy()})


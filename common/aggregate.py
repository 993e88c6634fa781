"""Contacts and interval reports onto the complete interval calendar: `silver_interval` and `silver_daily`.

`aggregate_intervals` counts `silver_calls` contacts (from `common.cdr`) per queue and interval of the calendar;
`intervals_from_report` gives the same `silver_interval` from interval-report sources; `aggregate_daily` sums the
intervals per queue and day. Queue aliases and AHT clipping apply to both sources. Every function is pure: it returns
a new frame and never modifies its input. Time columns are naive local wall clock unless the name ends in `_utc`.
"""

from __future__ import annotations

import logging
import math
from functools import reduce

import numpy as np
import pandas as pd

from common import calendar as cal
from common.cdr import _COUNT_COLUMNS, DAILY_COLUMNS, DEMAND_OUTCOMES, INTERVAL_COLUMNS, _holiday_names, _require
from common.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _grid_positions(grid: pd.DataFrame, queues: pd.Series, interval_utc: pd.Series, what: str) -> np.ndarray:
    """Row position in `grid` of each (queue, interval_start_utc); DataError for any that is not there."""
    _require(grid, ("queue", "date", "interval_start", "interval_start_utc", "is_open"), "grid")
    unknown = sorted(set(queues.dropna().unique()) - set(grid["queue"].unique()))
    if unknown:
        raise DataError(f"{what} have queue(s) {unknown[:5]} that the interval grid lacks; "
                        "build interval_grid for every queue in the data (and its opening hours)")
    keys = pd.MultiIndex.from_arrays([grid["queue"].astype("str"), grid["interval_start_utc"].astype("datetime64[ns]")])
    if not keys.is_unique:
        raise DataError("grid has repeated (queue, interval_start_utc) rows; pass interval_grid(...) output as is")
    pos = keys.get_indexer(pd.MultiIndex.from_arrays([queues.astype("str"), interval_utc.astype("datetime64[ns]")]))
    if (pos < 0).any():
        missing = interval_utc[pos < 0]
        raise DataError(f"{int((pos < 0).sum())} {what} fall outside the interval grid "
                        f"(interval_start_utc {missing.min()} .. {missing.max()}, grid "
                        f"{grid['interval_start_utc'].min()} .. {grid['interval_start_utc'].max()}); "
                        "build the grid over every date of the data")
    return pos


def _count_at(pos: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pos[mask], minlength=n).astype("float64")


def aggregate_intervals(contacts: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    """silver_interval from silver_calls: one row per grid row (queue x interval, closed ones too).

    Counts are float64 (as in the table, and so the interval-report path can
    hold unknowns). offered = contacts that count as offered; handled/abandoned
    = offered ones answered/abandoned; short_abandoned = every short abandon
    that started in the interval (open or not); offered_outside_hours =
    answered/abandoned contacts outside opening hours or on closed dates;
    aht_seconds = mean handle_seconds of handled contacts whose handle is
    known (NaN when none). Intervals without contacts are 0.
    """
    _require(contacts, ("queue", "interval_start_utc", "outcome", "handle_seconds", "is_open_hours",
                        "counts_as_offered"), "contacts")
    n = len(grid)
    pos = _grid_positions(grid, contacts["queue"], contacts["interval_start_utc"], "contacts")
    outcome = contacts["outcome"]
    offered = contacts["counts_as_offered"].to_numpy(dtype=bool)
    answered = (outcome == "answered").to_numpy()
    handled = offered & answered
    handle = contacts["handle_seconds"].to_numpy(dtype="float64", na_value=np.nan)
    timed = handled & ~np.isnan(handle)
    handle_sum = np.bincount(pos[timed], weights=handle[timed], minlength=n)
    timed_n = np.bincount(pos[timed], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        aht = np.where(timed_n > 0, handle_sum / np.maximum(timed_n, 1), np.nan)
    outside = ~contacts["is_open_hours"].to_numpy(dtype=bool) & outcome.isin(DEMAND_OUTCOMES).to_numpy()
    return pd.DataFrame({
        "queue": grid["queue"].astype("str").to_numpy(),
        "date": grid["date"].to_numpy(),
        "interval_start": grid["interval_start"].to_numpy(),
        "interval_start_utc": grid["interval_start_utc"].to_numpy(),
        "offered": _count_at(pos, offered, n),
        "handled": _count_at(pos, handled, n),
        "abandoned": _count_at(pos, offered & (outcome == "abandoned").to_numpy(), n),
        "short_abandoned": _count_at(pos, (outcome == "short_abandon").to_numpy(), n),
        "offered_outside_hours": _count_at(pos, outside, n),
        "aht_seconds": aht,
        "is_open": grid["is_open"].to_numpy(dtype=bool),
    }).astype({"queue": "str"})


def _sum_unknown_wins(values: pd.Series, groups: list) -> pd.Series:
    """Group sums that stay NaN when any member is unknown: a partial sum would look like a real count."""
    return values.groupby(groups, sort=False).sum(skipna=False)


def _weighted_aht(aht: pd.Series, weight: pd.Series, groups: list) -> pd.Series:
    """sum(aht * weight) / sum(weight) over rows with a known aht and weight > 0; NaN where none."""
    use = aht.notna() & weight.notna() & (weight > 0)
    num = (aht * weight).where(use, 0.0).groupby(groups, sort=False).sum()
    den = weight.where(use, 0.0).groupby(groups, sort=False).sum()
    return (num / den).where(den > 0)


def aggregate_daily(intervals: pd.DataFrame, closed_dates: pd.DataFrame | None) -> pd.DataFrame:
    """silver_daily from silver_interval: one row per queue per local date (closed days too).

    Counts are day sums (NaN if any interval's is unknown, which only the
    interval-report path produces); aht_seconds is weighted by handled;
    is_open = any open interval; is_holiday/holiday_name from `closed_dates`
    (holiday_calendar output). Ordered by queue, date.
    """
    _require(intervals, INTERVAL_COLUMNS, "intervals")
    groups = [intervals["queue"], intervals["date"]]
    sums = {c: _sum_unknown_wins(intervals[c].astype("float64"), groups) for c in _COUNT_COLUMNS}
    daily = pd.DataFrame(sums)
    daily["aht_seconds"] = _weighted_aht(intervals["aht_seconds"], intervals["handled"], groups)
    daily["is_open"] = intervals["is_open"].groupby(groups, sort=False).any()
    daily = daily.reset_index(names=["queue", "date"]).sort_values(["queue", "date"], kind="stable")
    names = _holiday_names(daily["date"], closed_dates)
    daily = daily.assign(is_holiday=names.notna(), holiday_name=names, queue=daily["queue"].astype("str"))
    return daily[DAILY_COLUMNS].reset_index(drop=True)


# --- renamed queues ----------------------------------------------------------------------------------------

def apply_queue_aliases(rows: pd.DataFrame, aliases: dict[str, str]) -> pd.DataFrame:
    """Bronze rows with old queue names replaced by current ones (`rules.queue_aliases`, chains already resolved).

    Grain unchanged for call legs (one row per leg): a renamed queue's history and its new name become one
    series, and a redial across the rename is one contact. Interval-report rows (no `call_id`; one row per
    queue per reported interval) are first reduced to the newest export of each (old queue, interval), as
    `intervals_from_report` would, and the rows that now share (queue, interval_start_utc) are summed into
    one (both names reported calls in that interval): counts summed (unknown if any part is unknown, a
    blank beside offered 0 is 0), aht_seconds weighted by handled (by offered where handled is unknown).
    """
    if not aliases or rows.empty or not rows["queue"].isin(list(aliases)).any():
        return rows
    renamed = rows.assign(queue=rows["queue"].replace(aliases).astype("str"))
    if "call_id" in rows.columns or "interval_start_utc" not in rows.columns:
        return renamed
    order = np.arange(len(rows))
    newest = rows.assign(_order=order).sort_values(["queue", "interval_start_utc", "load_id", "_order"], kind="stable")
    keep = np.sort(newest.loc[~newest.duplicated(["queue", "interval_start_utc"], keep="last"), "_order"].to_numpy())
    renamed = renamed.iloc[keep].reset_index(drop=True)
    key = ["queue", "interval_start_utc"]
    shared = renamed.duplicated(key, keep=False)
    if not shared.any():
        return renamed
    both = renamed[shared]
    groups = [both["queue"], both["interval_start_utc"]]
    offered = both["offered"].astype("float64")
    parts = {c: both[c].astype("float64").mask((offered == 0) & both[c].isna(), 0.0) if c in both.columns
             else pd.Series(np.nan, index=both.index) for c in ("handled", "abandoned")}
    merged = both.groupby(groups, sort=False).first()  # names, timestamps and dates are the same within a group
    merged["offered"] = offered.groupby(groups, sort=False).sum()
    for c, values in parts.items():
        if c in both.columns:
            merged[c] = _sum_unknown_wins(values, groups)
    if "aht_seconds" in both.columns:
        merged["aht_seconds"] = _weighted_aht(both["aht_seconds"].astype("float64"),
                                              parts["handled"].fillna(offered), groups)
    merged["load_id"] = both["load_id"].groupby(groups, sort=False).max()
    merged = merged.drop(columns=key, errors="ignore").reset_index()
    out = pd.concat([renamed[~shared], merged[renamed.columns]], ignore_index=True)
    return out.astype(renamed.dtypes.to_dict())


# --- interval-report sources -----------------------------------------------------------------------------

def _report_minutes(local_starts: pd.Series) -> int:
    """The report's interval length, inferred as the gcd of its start times' minutes since midnight (and 1440)."""
    since_midnight = (local_starts - local_starts.dt.normalize()) / pd.Timedelta(minutes=1)
    if (since_midnight % 1 != 0).any():
        raise DataError("report.interval_start has times that are not whole minutes; "
                        "interval reports start on whole minutes (e.g. 08:00, 08:15)")
    return int(reduce(math.gcd, since_midnight.astype("int64").unique().tolist(), 1440))


def intervals_from_report(report: pd.DataFrame, grid: pd.DataFrame, interval_minutes: int,
                          with_source_rows: bool = False) -> pd.DataFrame:
    """silver_interval from an interval-report source: one row per grid row, same columns as aggregate_intervals.

    With `with_source_rows`, also `source_rows`: how many report rows (after dedup) fell in the interval, so a
    row that reports 0 calls still shows the export covered it (0: the export had no row for it). It is for
    the completeness check and is not stored in silver_interval.

    Decisions (so the two source kinds mean the same downstream):
    - a repeated (queue, interval_start_utc) keeps the row of the highest load_id (the newest export), and
      within it the last row (`report_checks.check_restated` names those with different numbers);
    - rows finer than `interval_minutes` (5/15 min) are summed into the configured interval;
      the report's length is the gcd of its start times' minutes after midnight, so a report whose
      every row falls on whole hours reads as hourly; a coarser report is a DataError;
    - offered in a closed grid interval moves to offered_outside_hours; offered, handled and abandoned
      are 0 there and aht NaN (CDR meaning: handled is a part of offered);
    - handled/abandoned left blank (or absent) in a row that has calls are unknown: NaN, and an interval
      with any unknown part is NaN (a blank in a row with offered 0 is 0). short_abandoned is NaN
      throughout: a report does not separate short abandons (its offered is the ACD's own count);
    - aht_seconds is weighted by handled (by offered where handled is unknown); NaN where no weight.
    """
    _require(report, ("queue", "interval_start", "interval_start_utc", "offered", "load_id"), "report")
    if interval_minutes not in cal.INTERVAL_MINUTES:
        raise ConfigError(f"rules.interval_minutes: {interval_minutes!r} is not allowed; "
                          f"use one of {', '.join(map(str, cal.INTERVAL_MINUTES))}")
    rows = report.assign(**{c: np.nan for c in ("handled", "abandoned", "aht_seconds") if c not in report.columns})
    if rows["offered"].isna().any():
        raise DataError(f"report.offered is missing in {int(rows['offered'].isna().sum())} row(s); "
                        "offered is required in an interval report")
    local = rows["interval_start"].astype("datetime64[ns]")
    utc = rows["interval_start_utc"].astype("datetime64[ns]")
    if len(rows):
        minutes = _report_minutes(local)
        if interval_minutes % minutes:
            fits = [m for m in cal.INTERVAL_MINUTES if m % minutes == 0]
            hint = (f"set rules.interval_minutes to {' or '.join(map(str, fits))}" if fits
                    else "it is too coarse for interval forecasting (rules.interval_minutes is at most 60); for "
                         "daily totals (one row per queue per day) set source.kind: daily, or load them as "
                         "daily_history: beside the intervals (see README, Daily totals)")
            raise DataError(f"report intervals are {minutes} minutes long (their starts fall on multiples of "
                            f"{minutes} minutes) but rules.interval_minutes is {interval_minutes}; "
                            f"they cannot be summed into it; {hint}")
    rows = rows.assign(_local=local, _utc=utc, _order=np.arange(len(rows)))
    rows = rows.sort_values(["queue", "_utc", "load_id", "_order"], kind="stable")
    rows = rows[~rows.duplicated(["queue", "_utc"], keep="last")]

    # The bucket's UTC start: the row's UTC minus its wall-clock distance into the bucket (DST-safe).
    floored = cal.floor_to_interval(rows["_local"], interval_minutes)
    bucket_utc = rows["_utc"] - (rows["_local"] - floored)
    n = len(grid)
    pos = pd.Series(_grid_positions(grid, rows["queue"], bucket_utc, "report rows"), index=rows.index)
    offered = rows["offered"].astype("float64")
    no_calls = offered == 0
    handled = rows["handled"].astype("float64").mask(no_calls & rows["handled"].isna(), 0.0)
    abandoned = rows["abandoned"].astype("float64").mask(no_calls & rows["abandoned"].isna(), 0.0)
    weight = handled.fillna(offered)

    per = pd.DataFrame({
        "offered": offered.groupby(pos).sum(),
        "handled": _sum_unknown_wins(handled, [pos]),
        "abandoned": _sum_unknown_wins(abandoned, [pos]),
        "aht_seconds": _weighted_aht(rows["aht_seconds"].astype("float64"), weight, [pos]),
    }).reindex(np.arange(n))
    is_open = grid["is_open"].to_numpy(dtype=bool)
    reported = is_open & per["offered"].notna().to_numpy()
    offered_all = per["offered"].fillna(0.0).to_numpy()
    # An open interval without a report row is stored as 0 calls (the forecast needs a number); where a busy
    # interval lacks its row, the completeness check names it (`source_rows` 0). Closed ones hold no offered demand.
    out = pd.DataFrame({
        "queue": grid["queue"].astype("str").to_numpy(),
        "date": grid["date"].to_numpy(),
        "interval_start": grid["interval_start"].to_numpy(),
        "interval_start_utc": grid["interval_start_utc"].to_numpy(),
        "offered": np.where(is_open, offered_all, 0.0),
        "handled": np.where(reported, per["handled"].to_numpy(), 0.0),
        "abandoned": np.where(reported, per["abandoned"].to_numpy(), 0.0),
        "short_abandoned": np.full(n, np.nan),
        "offered_outside_hours": np.where(is_open, 0.0, offered_all),
        "aht_seconds": np.where(reported, per["aht_seconds"].to_numpy(), np.nan),
        "is_open": is_open,
    }).astype({"queue": "str"})
    if with_source_rows:
        out["source_rows"] = np.bincount(pos.to_numpy(), minlength=n).astype("int64")
    return out


def clip_aht(frame: pd.DataFrame, low: float, high: float) -> tuple[pd.DataFrame, int]:
    """aht_seconds clipped into [low, high] (grain unchanged); also returns how many values were clipped.

    NaN stays NaN (no handled contacts is not an AHT of `low`).
    """
    if low > high:
        raise ConfigError(f"validation.aht_min_seconds ({low}) is above validation.aht_max_seconds ({high}); "
                          "the minimum must be below the maximum")
    aht = frame["aht_seconds"].astype("float64")
    outside = int(((aht < low) | (aht > high)).sum())
    return frame.assign(aht_seconds=aht.clip(low, high)), outside

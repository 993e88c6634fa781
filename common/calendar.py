"""Local time and the interval grid: DST-correct conversions, open-or-closed, intervals.

Conventions (see DESIGN.md): datetime columns are naive local wall-clock time
unless their name ends in `_utc`, in which case they are naive UTC. Every
datetime this module returns is `datetime64[ns]`, whatever the input unit
(pandas 3 defaults to `us`; merges across units work, but one unit is simpler).

A day is the span between two local midnights, so it has 23 or 25 hours on DST
days. The interval grid cuts that span into equal slices of real time; on a
fall-back day two slices share a wall-clock label, and `interval_start_utc` is
the key that tells them apart. Contacts are joined to the grid with
`floor_to_interval_utc`.

Opening hours are parsed in `opening_hours`, closed dates built in `public_holidays`.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from common.errors import ConfigError
from common.opening_hours import OpeningHours, window_table

log = logging.getLogger(__name__)

INTERVAL_MINUTES = (5, 10, 15, 20, 30, 60)

_NS_PER_MIN = 60 * 10**9


# ---------------------------------------------------------------- time zones


def _check_tz(tz: str) -> str:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"timezone: {tz!r} is not an IANA time zone; use a name such as Europe/Stockholm"
        ) from None
    return tz


def _check_minutes(minutes: int) -> int:
    if isinstance(minutes, bool) or minutes not in INTERVAL_MINUTES:
        raise ConfigError(
            f"rules.interval_minutes: {minutes!r} is not allowed; use one of "
            f"{', '.join(map(str, INTERVAL_MINUTES))} (it must divide a day)"
        )
    return int(minutes)


def _as_datetime(s: pd.Series) -> pd.Series:
    return s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s)


def localize(naive_local: pd.Series, tz: str) -> pd.Series:
    """Naive local wall-clock times in `tz` -> naive UTC (datetime64[ns], same index).

    Times in the spring-forward gap (02:30 on 2025-03-30 in Stockholm) do not
    exist; they move forward to the first real instant after the gap (03:00
    CEST). Times in the fall-back hour (02:30 on 2025-10-26) happen twice; we
    take the first occurrence (summer time, CEST), as a clock that is read
    once would. Already tz-aware input is just converted to UTC.
    """
    _check_tz(tz)
    s = _as_datetime(naive_local)
    if s.dt.tz is None:
        first = np.ones(len(s), dtype=bool)  # True = DST, applied only where ambiguous
        s = s.dt.tz_localize(tz, ambiguous=first, nonexistent="shift_forward")
    return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")


def to_local(aware_or_utc: pd.Series, tz: str) -> pd.Series:
    """Tz-aware times, or naive times taken as UTC -> naive local wall clock in `tz` (ns)."""
    _check_tz(tz)
    s = _as_datetime(aware_or_utc)
    if s.dt.tz is None:
        s = s.dt.tz_localize("UTC")
    return s.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")


def _wall_clock_ns(local_times: pd.Series) -> np.ndarray:
    s = _as_datetime(local_times)
    if s.dt.tz is not None:  # aware input: its own wall clock is the local time
        s = s.dt.tz_localize(None)
    return s.to_numpy().astype("datetime64[ns]")


# ---------------------------------------------------------------- open / closed


def _closed_days(closed_dates: pd.DataFrame | None) -> np.ndarray:
    if closed_dates is None or len(closed_dates) == 0:
        return np.array([], dtype=np.int64)
    days = pd.to_datetime(closed_dates["date"]).to_numpy().astype("datetime64[D]")
    return days[~np.isnat(days)].astype(np.int64)


def _queue_codes(queues: pd.Series | Sequence) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(np.asarray(queues, dtype=object))
    codes = np.where(codes < 0, len(uniques), codes)  # missing queue -> default row
    return codes, np.asarray(uniques, dtype=object)


def is_open_at(
    queues: pd.Series, local_times: pd.Series, hours: OpeningHours, closed_dates: pd.DataFrame
) -> pd.Series:
    """One bool per row: the queue is open at that local wall-clock time.

    True where the time of day is in the queue's window for that weekday
    ([open, close)) and the date is not in `closed_dates.date`. NaT is False.
    Rows pair up by position; the result has `local_times`' index. Vectorised
    through a (queue, weekday) lookup table, so millions of rows are cheap.
    """
    if len(queues) != len(local_times):
        raise ValueError(f"queues has {len(queues)} rows, local_times {len(local_times)}")
    ns = _wall_clock_ns(local_times)
    nat = np.isnat(ns)
    days = ns.astype("datetime64[D]")
    tod = (ns - days).astype(np.int64)  # ns since local midnight
    day_num = days.astype(np.int64)
    weekday = np.where(nat, 0, (day_num + 3) % 7)  # 1970-01-01 was a Thursday (3)

    codes, names = _queue_codes(queues)
    opens, closes = window_table(names, hours)
    open_ns = opens[codes, weekday] * _NS_PER_MIN
    close_ns = closes[codes, weekday] * _NS_PER_MIN
    result = (tod >= open_ns) & (tod < close_ns) & ~nat
    result &= ~np.isin(day_num, _closed_days(closed_dates))
    index = local_times.index if isinstance(local_times, pd.Series) else None
    return pd.Series(result, index=index, dtype=bool)


# ---------------------------------------------------------------- interval grid


def interval_grid(
    queues: Sequence[str],
    start: date,
    end: date,
    minutes: int,
    tz: str,
    hours: OpeningHours,
    closed_dates: pd.DataFrame,
) -> pd.DataFrame:
    """The complete interval calendar: one row per queue per interval of each local day.

    Days are `start`..`end` inclusive. A day runs from local midnight to the
    next local midnight in real time and is cut into `minutes`-long slices,
    so a 23-hour spring-forward day has 46 half-hours and a 25-hour fall-back
    day 50 (whose repeated wall-clock labels differ in `interval_start_utc`).
    An interval is open if its wall-clock span [start, start + minutes)
    overlaps the queue's window that weekday and the day is not closed.
    Columns: queue, date, interval_start, interval_start_utc, is_open; sorted
    by queue, interval_start_utc.
    """
    minutes = _check_minutes(minutes)
    _check_tz(tz)
    start_ts, end_ts = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end_ts < start_ts:
        raise ValueError(f"interval_grid: end {end_ts.date()} is before start {start_ts.date()}")

    days = pd.Series(pd.date_range(start_ts, end_ts, freq="D", unit="ns"))
    # Day bounds via localize: a midnight inside a DST gap moves to the first
    # real instant, an ambiguous one takes its first occurrence, so consecutive
    # days meet without gap or overlap.
    day_start = localize(days, tz).to_numpy()
    day_end = localize(days + pd.Timedelta(days=1), tz).to_numpy()
    step = np.timedelta64(minutes, "m").astype("timedelta64[ns]")
    length = (day_end - day_start).astype(np.int64)
    if np.any(length % step.astype(np.int64)):
        bad = days[length % step.astype(np.int64) != 0].iloc[0].date()
        raise ConfigError(
            f"rules.interval_minutes: {minutes} does not divide the length of {bad} in "
            f"timezone {tz!r} (its clocks change by a fraction of an interval); use a shorter interval"
        )
    counts = length // step.astype(np.int64)
    day_idx = np.repeat(np.arange(len(days)), counts)
    within = np.arange(len(day_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    starts_utc = day_start[day_idx] + within * step
    starts_local = to_local(pd.Series(starts_utc), tz).to_numpy()
    start_min = ((starts_local - starts_local.astype("datetime64[D]")).astype(np.int64)) // _NS_PER_MIN
    if np.any(start_min % minutes):
        raise ConfigError(
            f"timezone: {tz!r} puts interval starts off the {minutes}-minute wall-clock grid; "
            "use a shorter rules.interval_minutes"
        )

    names = np.array(sorted({str(q) for q in queues}), dtype=object)
    n_int, n_q = len(starts_utc), len(names)
    opens, closes = window_table(names, hours)
    day_vals = days.to_numpy()[day_idx]
    weekday = (day_vals.astype("datetime64[D]").astype(np.int64) + 3) % 7
    q_codes = np.repeat(np.arange(n_q), n_int)
    wd = np.tile(weekday, n_q)
    s_min = np.tile(start_min, n_q)
    # Overlap, not containment: 08:15-17:45 opens the 08:00 and 17:30 half-hours.
    is_open = (s_min < closes[q_codes, wd]) & (s_min + minutes > opens[q_codes, wd])
    closed = np.isin(day_vals.astype("datetime64[D]").astype(np.int64), _closed_days(closed_dates))
    is_open &= ~np.tile(closed, n_q)
    return pd.DataFrame(
        {
            "queue": pd.Series(np.repeat(names, n_int), dtype="str"),
            "date": pd.Series(np.tile(day_vals, n_q), dtype="datetime64[ns]"),
            "interval_start": pd.Series(np.tile(starts_local, n_q), dtype="datetime64[ns]"),
            "interval_start_utc": pd.Series(np.tile(starts_utc, n_q), dtype="datetime64[ns]"),
            "is_open": pd.Series(is_open, dtype=bool),
        }
    )


def floor_to_interval(local_times: pd.Series, minutes: int) -> pd.Series:
    """Each local wall-clock time floored to its interval's wall-clock start (ns).

    This works in wall clock only: on a fall-back day 02:10 CEST and 02:10 CET
    both give 02:00, although they are two different grid intervals. To join
    contacts to `interval_grid`, use `floor_to_interval_utc`.
    """
    minutes = _check_minutes(minutes)
    ns = pd.Series(_wall_clock_ns(local_times), index=local_times.index)
    return ns.dt.floor(f"{minutes}min")


def floor_to_interval_utc(
    utc_times: pd.Series, local_times: pd.Series | None, minutes: int, tz: str
) -> pd.Series:
    """Each instant's `interval_start_utc` on the `interval_grid` of `tz` (naive UTC, ns).

    Intervals start at wall-clock multiples of `minutes`, so the key comes
    from the local floor, not from flooring UTC (in Asia/Kolkata, +05:30,
    10:45 local belongs to the 10:00 interval = 04:30 UTC, while flooring UTC
    05:15 would give 05:00 = 10:30 local). The key is the UTC time minus the
    wall-clock remainder, which keeps the two fall-back 02:00 intervals apart.
    The key depends on `utc_times` alone; `local_times` (may be None) is only
    checked: rows whose wall clock is not `to_local(utc_times, tz)`, such as
    a raw time inside the spring-forward gap, are logged as a warning and
    placed by their UTC time, so one odd record does not stop a nightly run.
    """
    minutes = _check_minutes(minutes)
    local = to_local(utc_times, tz)
    if local_times is not None:
        given = pd.Series(_wall_clock_ns(local_times), index=local.index)
        differ = (given != local) & given.notna() & local.notna()
        if differ.any():
            i = int(np.flatnonzero(differ.to_numpy())[0])
            log.warning(
                "floor_to_interval_utc: %d row(s) have a local time that is not their UTC time "
                "in %s (first: local %s, utc %s = %s local); placed by UTC",
                int(differ.sum()), tz, given.iloc[i], utc_times.iloc[i], local.iloc[i],
            )
    utc = to_local(utc_times, "UTC")
    key = utc - (local - local.dt.floor(f"{minutes}min"))
    off_grid = (to_local(key, tz) != local.dt.floor(f"{minutes}min")) & key.notna()
    if off_grid.any():
        raise ConfigError(
            f"timezone: {tz!r} changes its clocks by a fraction of rules.interval_minutes="
            f"{minutes}; use a shorter interval"
        )
    return key

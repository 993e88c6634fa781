"""The intraday split of a queue without interval history: `intraday.default_shape`, or days only.

A queue known only from daily totals (source.kind daily, or a daily_history queue with no intervals or CDRs) has no
profile to split its days by. With `intraday.default_shape` (weights per time of day, for every weekday or per
weekday) its open days are split by that shape; without it the run forecasts its days only: gold_forecast_daily
rows, no interval or staffing rows, and the report says so. A queue with any interval history keeps the profiles of
`common.profiles`.

Shape weights need not sum to 1: each day's weights over the queue's open intervals are divided by their sum. A time
the shape does not list gets 0 that day (so the split never mixes the shape with a flat share); a queue-weekday the
shape gives nothing at all (e.g. a Saturday only one queue opens) is split flat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from common.errors import ConfigError
from common.opening_hours import WEEKDAYS, OpeningHours

KEY = "intraday.default_shape"
DEFAULT_SHAPE = "default_shape"  # gold_forecast_daily.intraday_profile of a day split by it
DAYS_ONLY = "days only: no interval history and no intraday.default_shape, so no staffing"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

Shape = dict[int, dict[int, float]]  # weekday (0 = Mon) -> minute of day -> weight


def parse_default_shape(spec: dict | None, hours: OpeningHours, interval_minutes: int) -> Shape | None:
    """The shape per weekday, or None when not configured; ConfigError (one line naming the key) when a time is not
    "HH:MM" on the interval grid, lies outside every queue's opening hours that weekday, or the weights sum to 0."""
    if not spec:
        return None
    per_weekday = any(isinstance(v, dict) for v in spec.values())
    days = {k: v for k, v in spec.items()} if per_weekday else dict.fromkeys(WEEKDAYS, spec)
    shape: Shape = {}
    for day, times in days.items():
        if day not in WEEKDAYS or not isinstance(times, dict):
            raise ConfigError(f"{KEY}.{day}: give weights per time (\"08:00\": 5) for every weekday, or per weekday "
                              f"under {', '.join(WEEKDAYS)}")
        weekday = WEEKDAYS.index(day)
        windows = [w for w in [hours.default[day], *(q[day] for q in hours.queues.values())] if w is not None]
        parsed = {}
        for text, weight in times.items():
            where = f"{KEY}.{day + '.' if per_weekday else ''}{text}"
            m = _TIME.match(str(text))
            minute = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
            if not m or not 0 <= minute < 1440 or minute % interval_minutes:
                raise ConfigError(f"{where}: not a time \"HH:MM\" on the {interval_minutes}-minute grid "
                                  "(rules.interval_minutes)")
            if weight < 0:
                raise ConfigError(f"{where}: weight {weight} is negative")
            fits = any(lo < minute + interval_minutes and minute < hi for lo, hi in windows)
            if weight > 0 and not fits and (per_weekday or not _open_any_day(hours, minute, interval_minutes)):
                raise ConfigError(f"{where}: outside the opening hours (rules.opening_hours) of every queue on "
                                  f"{day if per_weekday else 'every weekday'}; remove it or fix the hours")
            if fits:
                parsed[minute] = float(weight)
        if per_weekday and sum(times.values()) <= 0:
            raise ConfigError(f"{KEY}.{day}: the weights sum to 0; give the busy times a weight > 0")
        shape[weekday] = parsed
    if sum(sum(day.values()) for day in shape.values()) <= 0:
        raise ConfigError(f"{KEY}: the weights sum to 0; give the busy times a weight > 0")
    return shape


def _open_any_day(hours: OpeningHours, minute: int, interval_minutes: int) -> bool:
    windows = [w for week in [hours.default, *hours.queues.values()] for w in week.values() if w is not None]
    return any(lo < minute + interval_minutes and minute < hi for lo, hi in windows)


def queues_with_interval_history(history_int: pd.DataFrame) -> set[str]:
    """Queues with at least one open interval in `history_int` (silver_interval rows step 3 reads)."""
    if history_int.empty:
        return set()
    return set(history_int.loc[history_int["is_open"].astype(bool), "queue"].astype("str").unique())


def shape_profile(shape: Shape, queues: Sequence[str], hours: OpeningHours, interval_minutes: int) -> pd.DataFrame:
    """`intraday.intraday_profile`-style rows (queue, weekday, minute, share, days) from the default shape: every open
    interval of each queue and weekday the shape gives a weight, its share of that day's open weights."""
    rows = []
    for queue in queues:
        for weekday, weights in shape.items():
            window = hours.window(queue, weekday)
            if window is None:
                continue
            lo, hi = window
            minutes = np.arange(lo - lo % interval_minutes, hi, interval_minutes)
            w = np.array([weights.get(int(m), 0.0) for m in minutes])
            if w.sum() <= 0:
                continue  # the shape says nothing about this queue's day: split_daily spreads it flat
            rows.append(pd.DataFrame({"queue": queue, "weekday": weekday, "minute": minutes.astype("int64"),
                                      "share": w / w.sum(), "days": 0}))
    if not rows:
        return pd.DataFrame({"queue": pd.Series(dtype="str"), "weekday": pd.Series(dtype="int64"),
                             "minute": pd.Series(dtype="int64"), "share": pd.Series(dtype=float),
                             "days": pd.Series(dtype="int64")})
    return pd.concat(rows, ignore_index=True).astype({"queue": "str", "weekday": "int64", "days": "int64"})


def without_interval_history(profile: pd.DataFrame, choice: pd.DataFrame, history_int: pd.DataFrame,
                             shape: Shape | None, hours: OpeningHours,
                             interval_minutes: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """`profiles.choose_profiles`' (profile, choice) with the queues that have no interval history changed: split by
    the default shape (choice profile `default_shape`), or, without one, marked days only (profile None); and the
    days-only queues, whose interval and staffing rows the run leaves out."""
    known = queues_with_interval_history(history_int)
    bare = sorted(set(choice["queue"].astype("str")) - known)
    if not bare:
        return profile, choice, []
    mine = choice["queue"].isin(bare)
    if shape is None:
        choice = choice.assign(profile=choice["profile"].astype("object").where(~mine, None),
                               reason=choice["reason"].where(~mine, DAYS_ONLY), passed=choice["passed"] | mine)
        return profile.loc[~profile["queue"].isin(bare)].reset_index(drop=True), choice, bare
    default = shape_profile(shape, bare, hours, interval_minutes)
    choice = choice.assign(profile=choice["profile"].where(~mine, DEFAULT_SHAPE),
                           reason=choice["reason"].where(~mine, f"no interval history: split by {KEY}"),
                           passed=choice["passed"] | mine)
    kept = profile.loc[~profile["queue"].isin(bare)]
    return pd.concat([kept, default], ignore_index=True) if len(kept) else default, choice, []


def days_only_sentence(queue: str) -> str:
    """What the run log and the report say of a queue forecast by the day only."""
    return f"{queue}: days only - no interval history and no {KEY}, so no staffing"

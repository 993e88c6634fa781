"""Which intraday profile splits each queue's days, judged on the profile itself, never on the daily model.

The split is daily forecast x profile, the same for the model and the fallback, so an odd intraday shape says
the profile is unusable, not the model. Per queue and weekday (of the forecast days):

1. `same_weekday`: the same-weekday profile of `forecast.profile_weeks` weeks (`intraday.intraday_profile`) is used
   when it passes three checks: it rests on at least `min_days` days; no interval above `max_interval_ratio` x the
   mean open interval; it correlates at least `min_shape_correlation` with the same weekday's profile of the last
   `shape_weeks` weeks (a shape that changes between overlapping windows is noise, e.g. a 5-hour Saturday-evening
   shift with a few calls an interval).
2. Otherwise the more robust candidates are measured, and the best one is used:
   - `pooled_weekdays`: all weekdays with the same opening hours pooled (Sun-Thu 07-24 share one curve);
   - `same_weekday_long`: the same weekday over `long_weeks` weeks;
   - `smoothed`: that long profile smoothed over neighbouring intervals (weights 1-2-1);
   - `flat`: every open interval the same share (always possible).
   Each candidate is built as of `holdout_weeks` weeks before the origin and scored on those weeks' open,
   non-holiday days of that weekday: interval error = sum |actual - day actual x share| / sum actual (the split's own
   error given the true day total). Lowest error wins (ties: the order above); without holdout days the first
   candidate that exists is used.
The choice and its reason are returned per queue and weekday, for gold_forecast_daily and data_quality_checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from common.intraday import intraday_profile, minute_of_day
from common.opening_hours import OpeningHours

SAME_WEEKDAY, POOLED, LONG, SMOOTHED, FLAT = "same_weekday", "pooled_weekdays", "same_weekday_long", "smoothed", "flat"
ROBUST = (POOLED, LONG, SMOOTHED, FLAT)
KEYS = ["queue", "weekday"]
_DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


@dataclass(frozen=True)
class ProfileSettings:
    """Windows and limits of the profile choice (config `forecast.*` and `forecast.guards.*`)."""

    weeks: int = 16
    shape_weeks: int = 8
    long_weeks: int = 52
    holdout_weeks: int = 4
    min_days: int = 4
    max_interval_ratio: float = 5.0
    min_shape_correlation: float = 0.8


def _empty_profile() -> pd.DataFrame:
    return pd.DataFrame({"queue": pd.Series(dtype="str"), "weekday": pd.Series(dtype="int64"),
                         "minute": pd.Series(dtype="int64"), "share": pd.Series(dtype=float),
                         "days": pd.Series(dtype="int64")})


def hour_groups(queues: list[str], hours: OpeningHours) -> pd.DataFrame:
    """One row per queue per open weekday: `queue, weekday, group` (the first weekday with the same window)."""
    rows = []
    for queue in queues:
        first_of: dict = {}
        for wd in range(7):
            window = hours.window(queue, wd)
            if window is not None:
                rows.append((queue, wd, first_of.setdefault(window, wd)))
    return pd.DataFrame(rows, columns=["queue", "weekday", "group"]).astype({"queue": "str", "weekday": "int64",
                                                                             "group": "int64"})


def pooled_profile(history: pd.DataFrame, as_of: date, weeks: int, closed_dates: pd.DataFrame,
                   groups: pd.DataFrame) -> pd.DataFrame:
    """`intraday_profile` of weekdays pooled by opening hours: one row per queue, weekday, minute (same columns).

    The mean per clock time is over every included day of the group (each day once), then copied to each weekday
    of the group. `groups`: `hour_groups` output.
    """
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * weeks)
    closed = pd.to_datetime(closed_dates["date"]) if len(closed_dates) else pd.Series(dtype="datetime64[ns]")
    f = history.loc[(history["date"] >= start) & (history["date"] < pd.Timestamp(as_of))
                    & history["is_open"].astype(bool) & ~history["date"].isin(closed)]
    if f.empty:
        return _empty_profile()
    f = pd.DataFrame({"queue": f["queue"].astype("str").to_numpy(), "date": f["date"].to_numpy(),
                      "weekday": f["date"].dt.day_of_week.astype("int64").to_numpy(),
                      "minute": minute_of_day(f["interval_start"]),
                      "offered": f["offered"].to_numpy(dtype=float, na_value=np.nan)})
    f = f.merge(groups, on=KEYS, how="inner")
    # a past fall-back day holds 02:00 twice: one value per day and clock time
    per_day = f.groupby(["queue", "group", "date", "minute"], as_index=False, sort=False)["offered"].mean()
    level = per_day.groupby(["queue", "group", "minute"], as_index=False, sort=True).agg(
        mean=("offered", "mean"), days=("offered", "count"))
    total = level.groupby(["queue", "group"])["mean"].transform("sum")
    level = level.loc[total > 0]
    level = level.assign(share=level["mean"] / total.loc[total > 0])
    out = level.merge(groups, on=["queue", "group"], how="inner")
    return out.loc[:, list(_empty_profile().columns)].sort_values([*KEYS, "minute"]).reset_index(drop=True)


def smoothed(profile: pd.DataFrame) -> pd.DataFrame:
    """Shares smoothed 1-2-1 over neighbouring minutes of the same queue and weekday, renormalised (same grain)."""
    if profile.empty:
        return profile
    p = profile.sort_values([*KEYS, "minute"], kind="stable").reset_index(drop=True)
    share = p["share"].to_numpy(dtype=float)
    same_prev = (p[KEYS].shift(1) == p[KEYS]).all(axis=1).to_numpy()
    same_next = (p[KEYS].shift(-1) == p[KEYS]).all(axis=1).to_numpy()
    prev = np.where(same_prev, np.roll(share, 1), 0.0)
    nxt = np.where(same_next, np.roll(share, -1), 0.0)
    value = (prev + 2 * share + nxt) / (same_prev + 2.0 + same_next)
    p = p.assign(share=value)
    return p.assign(share=p["share"] / p.groupby(KEYS)["share"].transform("sum"))


def _correlation(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """Per queue and weekday: correlation of the shares of two profiles over the minutes both know (NaN < 3)."""
    j = a.loc[:, [*KEYS, "minute", "share"]].merge(b.loc[:, [*KEYS, "minute", "share"]], on=[*KEYS, "minute"])
    out = {}
    for key, g in j.groupby(KEYS, sort=True):
        x, y = g["share_x"].to_numpy(), g["share_y"].to_numpy()
        if len(g) < 3:
            out[key] = np.nan
        elif x.std() <= 1e-12 and y.std() <= 1e-12:
            out[key] = 1.0  # both flat: the same shape
        elif x.std() <= 1e-12 or y.std() <= 1e-12:
            out[key] = 0.0
        else:
            out[key] = float(np.corrcoef(x, y)[0, 1])
    return pd.Series(out, dtype=float)


def _holdout_error(profile: pd.DataFrame, actual: pd.DataFrame, key: tuple) -> float:
    """Interval error of `profile` (one queue and weekday; empty = flat) on the held-out days `actual`."""
    days = actual.loc[(actual["queue"] == key[0]) & (actual["weekday"] == key[1])]
    if days.empty or days["offered"].sum() <= 0:
        return np.nan
    prof = profile.loc[(profile["queue"] == key[0]) & (profile["weekday"] == key[1]), ["minute", "share"]]
    d = days.merge(prof, on="minute", how="left")
    n_open = d.groupby("date")["minute"].transform("size").astype(float)
    weight = d["share"].fillna(0.0) if len(prof) else 1.0 / n_open
    total_w = pd.Series(weight, index=d.index).groupby(d["date"]).transform("sum")
    weight = np.where(total_w > 0, weight / total_w.where(total_w > 0, 1.0), 1.0 / n_open)
    day_total = d.groupby("date")["offered"].transform("sum")
    return float(np.abs(d["offered"] - day_total * weight).sum() / d["offered"].sum())


def _holdout_days(history: pd.DataFrame, as_of: date, weeks: int, closed_dates: pd.DataFrame) -> pd.DataFrame:
    """Open intervals of open, non-holiday days of the `weeks` weeks before `as_of`: queue, date, weekday, minute,
    offered (one row per clock time: a repeated fall-back hour is summed)."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * weeks)
    closed = pd.to_datetime(closed_dates["date"]) if len(closed_dates) else pd.Series(dtype="datetime64[ns]")
    h = history.loc[(history["date"] >= start) & (history["date"] < pd.Timestamp(as_of))
                    & history["is_open"].astype(bool) & ~history["date"].isin(closed)]
    h = pd.DataFrame({"queue": h["queue"].astype("str").to_numpy(), "date": h["date"].to_numpy(),
                      "weekday": h["date"].dt.day_of_week.astype("int64").to_numpy(),
                      "minute": minute_of_day(h["interval_start"]),
                      "offered": h["offered"].to_numpy(dtype=float, na_value=0.0)})
    return h.groupby(["queue", "date", "weekday", "minute"], as_index=False)["offered"].sum()


def choose_profiles(history: pd.DataFrame, as_of: date, closed_dates: pd.DataFrame, hours: OpeningHours,
                    needed: pd.DataFrame, settings: ProfileSettings = ProfileSettings()
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(profile to split with, choice per queue and weekday); see the module doc.

    `history`: silver_interval rows `queue, date, interval_start, offered, is_open` before `as_of` (at least
    `long_weeks` weeks for the long candidate); `needed`: `queue, weekday` pairs to choose for (the forecast's open
    days). The profile has `intraday_profile`'s columns; a queue and weekday choosing `flat` has no rows (the split
    is then flat over the day's open intervals). The choice: `queue, weekday, profile, reason, passed` (passed =
    the same-weekday profile passed its checks).
    """
    s = settings
    queues = sorted(needed["queue"].astype("str").unique())
    groups = hour_groups(queues, hours)

    def candidates(at: date) -> dict[str, pd.DataFrame]:
        long = intraday_profile(history, at, s.long_weeks, closed_dates)
        return {SAME_WEEKDAY: intraday_profile(history, at, s.weeks, closed_dates),
                POOLED: pooled_profile(history, at, s.weeks, closed_dates, groups), LONG: long,
                SMOOTHED: smoothed(long), FLAT: _empty_profile()}

    now = candidates(as_of)
    reference = intraday_profile(history, as_of, s.shape_weeks, closed_dates)
    corr = _correlation(now[SAME_WEEKDAY], reference)
    held_at = as_of - timedelta(days=7 * s.holdout_weeks)
    earlier = candidates(held_at)
    actual = _holdout_days(history, as_of, s.holdout_weeks, closed_dates)
    group_size = groups.groupby(["queue", "group"])["weekday"].transform("size")
    pooled_alone = set(map(tuple, groups.loc[group_size == 1, KEYS].itertuples(index=False, name=None)))

    parts, rows = [], []
    for queue, weekday in sorted(set(needed.loc[:, KEYS].astype({"queue": "str"}).itertuples(index=False,
                                                                                               name=None))):
        key = (queue, int(weekday))
        problem = _problem(now[SAME_WEEKDAY], reference, corr, key, s)
        if problem is None:
            name, reason = SAME_WEEKDAY, f"same-weekday profile of {s.weeks} weeks"
        else:
            name, reason = _best_robust(now, earlier, actual, key, pooled_alone, s)
            reason = f"{problem}; {reason}"
        rows.append((queue, int(weekday), name, reason, problem is None))
        prof = now[name]
        parts.append(prof.loc[(prof["queue"] == queue) & (prof["weekday"] == weekday)])
    profile = pd.concat(parts, ignore_index=True) if parts else _empty_profile()
    choice = pd.DataFrame(rows, columns=["queue", "weekday", "profile", "reason", "passed"])
    return profile.astype({"queue": "str"}), choice.astype({"queue": "str", "weekday": "int64"})


def _problem(profile: pd.DataFrame, reference: pd.DataFrame, corr: pd.Series, key: tuple,
             s: ProfileSettings) -> str | None:
    """Why the same-weekday profile of `key` is unusable, in words a planner reads; None when it is fine."""
    day = _DAY_NAMES[key[1]]
    p = profile.loc[(profile["queue"] == key[0]) & (profile["weekday"] == key[1])]
    if p.empty:
        return f"no {day} with calls in the last {s.weeks} weeks"
    days = int(p["days"].max())
    if days < s.min_days:
        return f"only {days} {day} of interval history in the last {s.weeks} weeks (needs {s.min_days})"
    ratio = float(p["share"].max() / p["share"].mean())
    if ratio > s.max_interval_ratio + 1e-12:
        at = int(p.loc[p["share"].idxmax(), "minute"])
        return (f"the {day[:-1]} profile puts {ratio:.1f}x the mean interval at {at // 60:02d}:{at % 60:02d} "
                f"(limit {s.max_interval_ratio:g}x)")
    c = corr.get(key, np.nan)
    if np.isfinite(c) and c < s.min_shape_correlation - 1e-12:
        return (f"the {day[:-1]} intraday shape is noisy: the {s.weeks}-week and {s.shape_weeks}-week profiles correlate "
                f"{c:.2f} (limit {s.min_shape_correlation:g})")
    return None


def _best_robust(now: dict, earlier: dict, actual: pd.DataFrame, key: tuple, pooled_alone: set,
                 s: ProfileSettings) -> tuple[str, str]:
    """(candidate name, why) among the robust candidates, by error on the held-out weeks."""
    usable = [n for n in ROBUST if n == FLAT or (
        not (n == POOLED and key in pooled_alone)
        and ((now[n]["queue"] == key[0]) & (now[n]["weekday"] == key[1])).any())]
    errors = {n: _holdout_error(earlier[n], actual, key) for n in usable}
    scored = {n: e for n, e in errors.items() if np.isfinite(e)}
    if not scored:
        name = usable[0]
        return name, f"used the {_label(name, s)} (no recent day to measure the candidates on)"
    name = min(scored, key=lambda n: (scored[n], ROBUST.index(n)))
    others = ", ".join(f"{_label(n, s)} {scored[n]:.0%}" for n in scored if n != name)
    return name, (f"used the {_label(name, s)}: interval error {scored[name]:.0%} on the last {s.holdout_weeks} weeks"
                  + (f" (vs {others})" if others else ""))


def _label(name: str, s: ProfileSettings) -> str:
    return {POOLED: "profile pooled over weekdays with the same hours",
            LONG: f"same-weekday profile of {s.long_weeks} weeks",
            SMOOTHED: f"smoothed {s.long_weeks}-week profile", FLAT: "flat profile"}.get(name, name)

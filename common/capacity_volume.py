"""Weekly volume and AHT 4-26 weeks ahead, and the plan's own rolling backtest that picks the method and the spread.

Volume methods (one per queue, the lowest weekly wMAPE on the backtest at the plan's horizons wins):
- `seasonal`: the pipeline's seasonal shape (`common.seasonality`: weekday effects per queue, a yearly cycle and
  trend pooled over queues, once the history spans 15 months) times each queue's level over the last 8 weeks;
- `seasonal_flat`: the same without the trend (a trend extrapolated half a year can run away);
- `recent_mean`: each weekday's mean of the last 8 weeks' open days.
Closed days (weekdays without opening hours, holidays) are 0 in every method, so a week with a holiday plans less.

AHT methods: `recent` (the last 8 weeks' handled-weighted mean) and `trend` (plus a damped slope of the last 13
weeks). The backtest also gives the errors the Monte Carlo draws from: log(actual / forecast) per queue and weeks
ahead, from origins whose weeks ended before the plan's as-of, so the bands come from what happened, not a formula.

Everything runs on a dense queue x day panel (`Panel`) starting on a Monday: a backtest of 100 origins is array
slicing, not 100 rounds of DataFrame filtering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from common.errors import DataError
from common.seasonality import fit_shape

VOLUME_METHODS = ("recent_mean", "seasonal_flat", "seasonal")   # ties go to the first (the simplest)
AHT_METHODS = ("recent", "trend")
LEVEL_WEEKS = 8          # the level is the last 8 weeks: long enough to average out a bad week
TREND_WEEKS = 13
TREND_DAMPING = 0.9      # a slope's effect fades: the sum over h weeks of 0.9^i is at most 9 weeks of slope
ERROR_COLUMNS = ["queue", "origin", "method", "weeks_ahead", "week_start", "forecast", "actual", "log_error"]


def first_monday(as_of: date) -> date:
    """The Monday that starts the plan's week 1: as_of itself when it is a Monday, else the next one."""
    return as_of + timedelta(days=(7 - as_of.weekday()) % 7)


@dataclass(frozen=True)
class Panel:
    """silver_daily as arrays: one row per queue, one column per day from a Monday (`start`) to the day before as-of.

    `offered` is NaN before a queue's first day; a missing day inside is 0 calls. `aht_w` / `aht_wa`: the handled
    calls with an AHT and their AHT x calls, so a week's AHT is their ratio.
    """

    queues: list[str]
    start: pd.Timestamp
    offered: np.ndarray
    is_open: np.ndarray
    aht_w: np.ndarray
    aht_wa: np.ndarray

    @classmethod
    def from_daily(cls, daily: pd.DataFrame, before: date) -> Panel:
        d = daily.loc[pd.to_datetime(daily["date"]) < pd.Timestamp(before)]
        if d.empty:
            raise DataError(f"capacity plan: silver_daily has no rows before {before}; run 1_build_silver.py first")
        dates = pd.to_datetime(d["date"])
        first = dates.min()
        start = first - pd.Timedelta(days=first.day_of_week)
        days = (pd.Timestamp(before) - start).days
        queues = sorted(d["queue"].astype("str").unique())
        q = np.searchsorted(np.array(queues, dtype=object), d["queue"].astype("str").to_numpy(dtype=object))
        t = (dates - start).dt.days.to_numpy()
        offered = np.full((len(queues), days), np.nan)
        starts = pd.Series(t).groupby(q).min()
        for code, s in starts.items():
            offered[code, s:] = 0.0
        offered[q, t] = d["offered"].to_numpy(dtype=float, na_value=0.0)
        is_open = np.zeros((len(queues), days), dtype=bool)
        is_open[q, t] = d["is_open"].astype(bool).to_numpy()
        handled = (d["handled"] if "handled" in d else d["offered"]).astype("float64").fillna(d["offered"])
        aht = (d["aht_seconds"] if "aht_seconds" in d else pd.Series(np.nan, index=d.index)).astype("float64")
        w = np.where(aht.notna().to_numpy() & (handled.to_numpy() > 0), handled.to_numpy(), 0.0)
        aht_w, aht_wa = np.zeros_like(offered), np.zeros_like(offered)
        aht_w[q, t], aht_wa[q, t] = w, w * aht.fillna(0.0).to_numpy()
        return cls(queues, start, offered, is_open, aht_w, aht_wa)

    @property
    def days(self) -> int:
        return self.offered.shape[1]

    def index_of(self, day: date) -> int:
        return (pd.Timestamp(day) - self.start).days

    def weekly(self) -> tuple[np.ndarray, np.ndarray]:
        """(calls, AHT) per queue x complete week (NaN: a week before the queue's first day, or not over)."""
        weeks = self.days // 7
        y = self.offered[:, : weeks * 7].reshape(len(self.queues), weeks, 7)
        calls = np.where(np.isnan(y).any(axis=2), np.nan, np.nansum(y, axis=2))
        w = self.aht_w[:, : weeks * 7].reshape(len(self.queues), weeks, 7).sum(axis=2)
        wa = self.aht_wa[:, : weeks * 7].reshape(len(self.queues), weeks, 7).sum(axis=2)
        return calls, np.where(w > 0, wa / np.where(w > 0, w, 1.0), np.nan)

    def long(self, end: int) -> pd.DataFrame:
        """`series, date, y, is_open` of days before day index `end` (what fit_shape reads)."""
        q, t = np.nonzero(~np.isnan(self.offered[:, :end]))
        return pd.DataFrame({"series": np.array(self.queues, dtype=object)[q],
                             "date": self.start + pd.to_timedelta(t, unit="D"),
                             "y": self.offered[q, t], "is_open": self.is_open[q, t]})


def volume_forecast(panel: Panel, origin: int, open_future: np.ndarray, method: str,
                    shape_cache: dict | None = None) -> np.ndarray:
    """Expected calls per queue x future day from day index `origin` (a Monday), reading days before it only.

    `open_future`: queue x day open flags of the days forecast (0 calls where closed).
    """
    end = min(origin, panel.days)          # the live plan starts on the Monday after the as-of: no data between
    lo = max(end - 7 * LEVEL_WEEKS, 0)
    y, is_open = panel.offered[:, lo:end], panel.is_open[:, lo:end]
    n_days = open_future.shape[1]
    weekday_mean = _weekday_means(y, is_open, lo, n_days, origin)
    if method == "recent_mean":
        return np.where(open_future, weekday_mean, 0.0)
    if method not in ("seasonal", "seasonal_flat"):
        raise ValueError(f"unknown volume method {method!r}")
    shape = _shape(panel, end, shape_cache)
    if shape is None:
        return np.where(open_future, weekday_mean, 0.0)
    if method == "seasonal_flat":
        shape = replace(shape, trend=0.0)
    names = np.array(panel.queues, dtype=object)
    past = panel.start + pd.to_timedelta(np.arange(lo, end), unit="D")
    future = panel.start + pd.to_timedelta(np.arange(origin, origin + n_days), unit="D")
    known = np.array([q in shape.weekday for q in panel.queues])
    safe = np.where(known, names, next(iter(shape.weekday)))
    base = np.exp(_log_shape(shape, safe, past))
    seen = is_open & (np.nan_to_num(y) > 0)
    level = np.where(seen, np.nan_to_num(y), 0).sum(axis=1) / np.maximum(np.where(seen, base, 0).sum(axis=1), 1e-12)
    value = level[:, None] * np.exp(_log_shape(shape, safe, future))
    ok = known[:, None] & (seen.any(axis=1)[:, None]) & np.isfinite(value)
    return np.where(open_future, np.where(ok, value, weekday_mean), 0.0)


def _log_shape(shape, names: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """queue x day log shape: the weekday effect of each queue plus the calendar part all queues share."""
    calendar = shape.log_shape(np.full(len(dates), "\x00", dtype=object), dates)   # an unseen series: no weekday
    weekday = np.array([shape.weekday.get(str(n), [0.0] * 7) for n in names], dtype=float).reshape(len(names), 7)
    return weekday[:, dates.day_of_week.to_numpy()] + calendar[None, :]


def _shape(panel: Panel, origin: int, cache: dict | None):
    if cache is not None and origin in cache:
        return cache[origin]
    try:
        shape = fit_shape(panel.long(origin))
    except DataError:
        shape = None
    if cache is not None:
        cache[origin] = shape
    return shape


def _weekday_means(y: np.ndarray, is_open: np.ndarray, lo: int, n_days: int, origin: int) -> np.ndarray:
    """queue x future day: the mean of that weekday's open days in the window (the queue's mean where none)."""
    use = is_open & ~np.isnan(y)
    vals = np.where(use, np.nan_to_num(y), 0.0)
    weekday = (np.arange(lo, lo + y.shape[1])) % 7          # the panel starts on a Monday
    sums = np.stack([vals[:, weekday == k].sum(axis=1) for k in range(7)], axis=1)
    counts = np.stack([use[:, weekday == k].sum(axis=1) for k in range(7)], axis=1)
    overall = vals.sum(axis=1) / np.maximum(use.sum(axis=1), 1)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall[:, None])
    return means[:, (np.arange(origin, origin + n_days)) % 7]


def aht_forecast(weekly_aht: np.ndarray, origin_week: int, weeks: int, method: str) -> np.ndarray:
    """queue x weeks ahead AHT from the weekly AHT before week index `origin_week` (NaN: the queue has none)."""
    h = np.arange(1, weeks + 1)
    out = np.full((weekly_aht.shape[0], weeks), np.nan)
    for i, row in enumerate(weekly_aht[:, :origin_week]):
        idx = np.flatnonzero(~np.isnan(row))
        if not len(idx):
            continue
        recent = idx[-LEVEL_WEEKS:]
        level = float(row[recent].mean())
        slope = 0.0
        tail = idx[-TREND_WEEKS:]
        if method == "trend" and len(tail) >= 6:
            slope = float(np.polyfit(tail - tail[-1], row[tail], 1)[0])
        lead = h + (origin_week - 1 - recent.mean())          # weeks from the level's centre to week h
        damped = TREND_DAMPING * (1 - TREND_DAMPING ** lead) / (1 - TREND_DAMPING)
        out[i] = np.maximum(level + slope * damped, 0.2 * level)
    return out


def backtest_origins(panel: Panel, as_of: date, backtest_weeks: int, min_history_weeks: int) -> list[date]:
    """Mondays before `as_of` with `min_history_weeks` of history and at least one complete week after them."""
    last_origin = first_monday(as_of) - timedelta(days=7)
    first_data = panel.start + pd.Timedelta(days=int(np.argmax(~np.isnan(panel.offered).all(axis=0))))
    origins = [last_origin - timedelta(days=7 * k) for k in range(backtest_weeks)]
    return sorted(o for o in origins if pd.Timestamp(o) >= first_data + pd.Timedelta(weeks=min_history_weeks)
                  and o + timedelta(days=7) <= as_of)


def backtest(panel: Panel, weeks: int, origins: list[date],
             progress: Callable | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(volume errors, AHT errors) of every method at every origin: `queue, origin, method, weeks_ahead,
    week_start, forecast, actual, log_error` for the complete weeks of the panel.

    Each origin's forecast reads only the panel before that origin; the days' open flags are silver's own.
    """
    calls, aht = panel.weekly()
    names = np.array(panel.queues, dtype=object)
    vol, aht_rows = [], []
    cache: dict = {}
    for origin in (progress(origins) if progress else origins):
        o = panel.index_of(origin)
        ow = o // 7
        n = min(weeks, calls.shape[1] - ow)
        if n <= 0:
            continue
        open_future = panel.is_open[:, o: o + 7 * n]
        for method in VOLUME_METHODS:
            daily = volume_forecast(panel, o, open_future, method, cache)
            fc = daily.reshape(len(names), n, 7).sum(axis=2)
            vol.append(_errors(names, origin, method, fc, calls[:, ow: ow + n]))
        for method in AHT_METHODS:
            aht_rows.append(_errors(names, origin, method, aht_forecast(aht, ow, n, method), aht[:, ow: ow + n]))
    return _concat(vol), _concat(aht_rows)


def _errors(names: np.ndarray, origin: date, method: str, forecast: np.ndarray, actual: np.ndarray) -> dict:
    q, h = np.nonzero(~np.isnan(actual) & ~np.isnan(forecast))
    return {"queue": names[q], "origin": np.full(len(q), np.datetime64(origin, "D")), "method": np.full(len(q), method),
            "weeks_ahead": h + 1, "forecast": forecast[q, h], "actual": actual[q, h]}


def _concat(parts: list[dict]) -> pd.DataFrame:
    """The error rows as one frame (columns ERROR_COLUMNS), built once: a frame per origin costs more than the fit."""
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.array([]) for k in
            ("queue", "origin", "method", "weeks_ahead", "forecast", "actual")}
    out = pd.DataFrame({"queue": pd.array(cols["queue"], dtype="str"), "origin": cols["origin"].astype("datetime64[ns]"),
                        "method": pd.array(cols["method"], dtype="str"),
                        "weeks_ahead": cols["weeks_ahead"].astype("int64")})
    out["week_start"] = out["origin"] + pd.to_timedelta(7 * (out["weeks_ahead"] - 1), unit="D")
    out["forecast"], out["actual"] = cols["forecast"].astype(float), cols["actual"].astype(float)
    # +1 call: a week with no calls (a queue that paused) is a large error, not an infinite one
    out["log_error"] = np.log((out["actual"] + 1.0) / (out["forecast"] + 1.0))
    return out.loc[:, ERROR_COLUMNS]


def known_before(errors: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """The backtest rows whose week had ended before `cutoff` (what a plan made on `cutoff` may learn from)."""
    return errors.loc[errors["week_start"] + pd.Timedelta(days=7) <= pd.Timestamp(cutoff)]


def choose_methods(errors: pd.DataFrame, first_week: int, last_week: int, methods: tuple[str, ...],
                   default: str) -> dict[str, str]:
    """{queue: the method with the lowest wMAPE over weeks first_week..last_week ahead} (`default` without rows)."""
    e = errors.loc[errors["weeks_ahead"].between(first_week, last_week)]
    chosen: dict[str, str] = {}
    for queue, g in e.groupby("queue", sort=True):
        # only weeks every method forecast, so each is judged on the same weeks
        common = g.groupby(["origin", "weeks_ahead"])["method"].transform("nunique") == g["method"].nunique()
        g = g.loc[common]
        score = {m: float((part["forecast"] - part["actual"]).abs().sum() / max(part["actual"].abs().sum(), 1.0))
                 for m, part in g.groupby("method")}
        chosen[str(queue)] = min((m for m in methods if m in score), key=lambda m: score[m], default=default)
    return chosen

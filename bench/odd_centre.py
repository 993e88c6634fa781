"""A generated centre unlike the demo: an interval-report export with the shapes that broke the pipeline's judgment.

Three queues, 30-minute rows, every interval of every day present (a quiet interval is an explicit 0 row, as real
ACD interval reports write it):

- `Bank`: the Israeli-style week, Sun-Thu 07:00-24:00, Fri 07:00-14:00 and a 5-hour Saturday-evening shift
  19:00-24:00 with a few calls an interval (its same-weekday intraday shape is mostly noise); ~2,500 calls a full day;
- `Night`: a 24/7 line whose nights are nearly empty (0-2 calls an interval 00:00-06:00); ~900 calls a day;
- `Small`: a noisy small queue, Mon-Fri 08:00-17:00 and Sat 10:00-14:00, ~40 calls a weekday;

with Swedish public holidays closed, **holiday eves as half-days** (calls stop at 13:00; the export still has the
afternoon's 0 rows), a yearly cycle (summer low, autumn high), a mild trend and gamma day noise. Deterministic for a
seed. `bench/accuracy.py --datasets odd_centre` loads it through steps 0 and 1 with `bench/configs/odd_centre.yaml`.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from common.public_holidays import holiday_calendar

TIMEZONE = "Europe/Stockholm"
# queue: (calls on a full day at level 1, {weekday: (open hour, close hour)}, intraday curve peaks (hour, sd))
QUEUES = {
    "Bank": (2500.0, {6: (7, 24), 0: (7, 24), 1: (7, 24), 2: (7, 24), 3: (7, 24), 4: (7, 14), 5: (19, 24)},
             ((10.5, 2.0), (15.0, 2.5), (20.5, 1.5))),
    "Night": (900.0, {wd: (0, 24) for wd in range(7)}, ((11.0, 3.0), (19.0, 3.0))),
    "Small": (40.0, {0: (8, 17), 1: (8, 17), 2: (8, 17), 3: (8, 17), 4: (8, 17), 5: (10, 14)},
              ((10.0, 1.5), (14.0, 2.0))),
}
WEEKDAY_FACTOR = {"Bank": [1.05, 1.0, 0.97, 1.1, 0.55, 0.04, 1.15],   # Fri short, Sat a few calls, Sun busy
                  "Night": [1.1, 1.0, 1.0, 1.0, 0.95, 0.8, 0.85],
                  "Small": [1.2, 1.0, 1.0, 0.9, 0.8, 0.15, 0.0]}
EVE_CLOSE_HOUR = 13
NIGHT_LEVEL = 0.02  # Night's calls an interval 00:00-06:00, relative to its day shape


def closed_and_eves(start: date, end: date, country: str = "SE") -> tuple[set[date], set[date]]:
    """(closed public holidays as the pipeline closes them, their eves: the days before) in start..end + 1."""
    cal = holiday_calendar(country, None, [], range(start.year, end.year + 2))
    closed = {d.date() for d in pd.to_datetime(cal["date"]) if start <= d.date() <= end + timedelta(days=1)}
    eves = {d - timedelta(days=1) for d in closed} - closed
    return closed, eves


def _curve(hours: np.ndarray, peaks: tuple) -> np.ndarray:
    return sum(np.exp(-((hours - mu) ** 2) / (2 * sd ** 2)) for mu, sd in peaks) + 0.05


def odd_centre_intervals(start: date, end: date, seed: int = 7) -> pd.DataFrame:
    """The export: one row per queue per 30-minute interval of start..end: queue, interval_start (local
    ISO 8601 with its UTC offset), offered, handled, abandoned, aht_seconds (empty when nothing was handled)."""
    rng = np.random.default_rng(seed)
    closed, eves = closed_and_eves(start, end)
    days = pd.date_range(start, end, freq="D")
    rows = []
    for queue, (per_day, hours, peaks) in QUEUES.items():
        for day in days:
            wd = day.day_of_week
            window = hours.get(wd)
            d = day.date()
            doy = day.day_of_year
            season = 1 + 0.15 * np.cos(2 * np.pi * (doy - 290) / 365.25)   # autumn high, summer low
            trend = 1 + 0.05 * (day - pd.Timestamp(start)).days / 365.25
            level = per_day * WEEKDAY_FACTOR[queue][wd] * season * trend * rng.gamma(40.0, 1 / 40.0)
            # local wall clock with its UTC offset: 46 intervals on the spring-forward day, 50 on the fall-back day
            starts = pd.date_range(day.tz_localize(TIMEZONE), (day + pd.Timedelta(days=1)).tz_localize(TIMEZONE),
                                   freq="30min", inclusive="left")
            n = len(starts)
            hour = starts.hour.to_numpy() + starts.minute.to_numpy() / 60 + 0.25
            is_open = full = np.zeros(n, dtype=bool)
            if window is not None and d not in closed:
                lo, hi = window
                full = (hour >= lo) & (hour < hi)
                # an eve closes early: it keeps the morning's calls, the afternoon is 0
                is_open = full & (hour < EVE_CLOSE_HOUR) if d in eves else full
            shape = _curve(hour, peaks)
            if queue == "Night":
                shape = np.where(hour < 6, NIGHT_LEVEL, shape)
            if queue == "Bank" and wd == 5:
                shape = np.ones(n)  # the Saturday shift has no shape of its own: its profile is noise
            weight = np.where(is_open, shape, 0.0)
            full_weight = np.where(full, shape, 0.0).sum()
            mean = level * weight / full_weight if full_weight > 0 else np.zeros(n)
            offered = rng.poisson(mean)
            abandoned = rng.binomial(offered, 0.06)
            handled = offered - abandoned
            aht = np.where(handled > 0, np.round(rng.normal(300, 20, n)), np.nan)
            stamps = [t.isoformat() for t in starts]
            rows.append(pd.DataFrame({"queue": queue, "interval_start": stamps,
                                      "offered": offered, "handled": handled, "abandoned": abandoned,
                                      "aht_seconds": aht}))
    return pd.concat(rows, ignore_index=True)


def write_export(start: date, end: date, path: Path, seed: int = 7) -> Path:
    """The export as one CSV file at `path` (rewritten only when its bytes change, so a re-run loads nothing)."""
    frame = odd_centre_intervals(start, end, seed)
    text = frame.to_csv(index=False, float_format="%.0f").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != text:
        path.write_bytes(text)
    return path

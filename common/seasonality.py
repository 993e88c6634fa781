"""Seasonal shape: weekday effects per series, plus a yearly cycle and trend shared by all series.

The model's level (`common.features`) is measured against this shape: the
trailing level is a weighted mean of y / shape, so it can look back months
without lagging behind the season, and is multiplied by the shape of the day
it is for. A 28-day plain mean is noisy on small queues and a longer one trails
the season (docs/accuracy.md); the shape is what lets the window grow.

The shape is fitted once per model, on the training history, by weighted least
squares on log(y) of open days:

    log y = a[series, weekday] + trend * years + sum_k (c_k cos + s_k sin)(2 pi k day_of_year / 365.25)

- **Weekday effects per series** (a queue's Saturday is its own), centred to
  mean 0 over the weekdays the series is open, so the shape carries no scale.
- **Yearly cycle and trend pooled over series**: two years of one queue are too
  few to tell its season from its noise, one cycle for the centre is not. What
  a queue does differently is left to the trees (`series` x calendar features).
  Only fitted when the history spans `MIN_YEARLY_DAYS`; before that the shape is
  the weekday effects alone (no trend either: the level follows growth).
- **Weights** 1 / (1 / mean + CV^2): the variance of log y for a Poisson count
  with day-to-day noise, so a 100-call queue does not steer the shared cycle as
  much as a 3,000-call one.

The fitted shape is a model parameter, like the trees: stored in meta.json and
applied unchanged at forecast time. The features of day T still read y up to
T-1 only (tests/test_features.py checks it with a fixed shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from common.errors import DataError

FOURIER_ORDER = 3          # yearly harmonics: 3 follow a winter peak and a summer dip without chasing noise
MIN_YEARLY_DAYS = 455      # a year and a quarter of history before a yearly cycle is fitted
DAY_NOISE_CV = 0.15        # typical day-to-day variation of a queue beyond Poisson noise (weights only)
_YEAR = 365.25


@dataclass(frozen=True)
class SeasonalShape:
    """A fitted shape; `log_shape` evaluates it. JSON-serialisable via `to_dict` / `from_dict`."""

    anchor: str                          # ISO date where the trend is 0
    weekday: dict[str, list[float]]      # per series, Monday first, centred over its open weekdays
    trend: float = 0.0                   # log growth per year
    yearly: tuple[float, ...] = ()       # c_1, s_1, c_2, s_2, ...

    def log_shape(self, series: Sequence[str] | np.ndarray, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """log of the shape for each (series, date); 0 for a series the fit did not see."""
        dates = pd.DatetimeIndex(dates)
        dow = dates.day_of_week.to_numpy()
        names = np.asarray(series, dtype=object).astype(str)
        out = np.zeros(len(dates))
        for name, effects in self.weekday.items():
            rows = names == name
            out[rows] = np.asarray(effects)[dow[rows]]
        if self.yearly:
            out += _calendar_matrix(dates, self.anchor, len(self.yearly) // 2) @ np.r_[self.trend, self.yearly]
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "yearly": list(self.yearly)}

    @classmethod
    def from_dict(cls, data: dict) -> SeasonalShape:
        return cls(anchor=str(data["anchor"]), weekday={str(k): [float(v) for v in vals]
                                                        for k, vals in data["weekday"].items()},
                   trend=float(data.get("trend", 0.0)), yearly=tuple(float(v) for v in data.get("yearly", ())))


def fit_shape(history: pd.DataFrame, fourier_order: int = FOURIER_ORDER,
              min_yearly_days: int = MIN_YEARLY_DAYS) -> SeasonalShape:
    """Fit the shape on the open days with y > 0 of `history` (`series, date, y, is_open`)."""
    open_rows = history.loc[history["is_open"].astype(bool) & (history["y"].to_numpy(dtype=float) > 0)]
    if open_rows.empty:
        raise DataError("seasonal shape: no open day with calls in the history; nothing to fit")
    series = open_rows["series"].astype("str").to_numpy(dtype=object)
    dates = pd.DatetimeIndex(open_rows["date"])
    y = open_rows["y"].to_numpy(dtype=float)
    names = sorted(set(series))
    code = np.searchsorted(np.array(names, dtype=object), series)
    dow = dates.day_of_week.to_numpy()
    anchor = str(dates.max().date())
    span = (dates.max() - dates.min()).days + 1
    order = int(fourier_order) if span >= min_yearly_days else 0

    cells = np.zeros((len(y), 7 * len(names)))
    cells[np.arange(len(y)), 7 * code + dow] = 1.0
    X = np.column_stack([cells, _calendar_matrix(dates, anchor, order)]) if order else cells
    mean = pd.Series(y).groupby(code).transform("mean").to_numpy()
    sw = np.sqrt(1.0 / (1.0 / mean + DAY_NOISE_CV**2))
    observed = X.any(axis=0)  # series x weekday cells never open have no column to fit
    beta = np.zeros(X.shape[1])
    beta[observed], *_ = np.linalg.lstsq(X[:, observed] * sw[:, None], np.log(y) * sw, rcond=None)

    weekday = {}
    for i, name in enumerate(names):
        effects, seen = beta[7 * i: 7 * i + 7], observed[7 * i: 7 * i + 7]
        centred = np.where(seen, effects - effects[seen].mean(), 0.0)
        weekday[name] = [float(v) for v in centred]
    rest = beta[7 * len(names):]
    return SeasonalShape(anchor=anchor, weekday=weekday, trend=float(rest[0]) if order else 0.0,
                         yearly=tuple(float(v) for v in rest[1:]) if order else ())


def _calendar_matrix(dates: pd.DatetimeIndex, anchor: str, order: int) -> np.ndarray:
    """Columns: years since `anchor`, then cos/sin of each yearly harmonic."""
    t = (dates - pd.Timestamp(anchor)).days.to_numpy() / _YEAR
    doy = dates.day_of_year.to_numpy()
    cols = [t]
    for k in range(1, order + 1):
        angle = 2 * np.pi * k * doy / _YEAR
        cols += [np.cos(angle), np.sin(angle)]
    return np.column_stack(cols)

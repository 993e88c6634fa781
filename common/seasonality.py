"""Seasonal shape: weekday effects per series, plus a yearly cycle and trend shared by all series.

The model's level (`common.features`) is measured against this shape: the
trailing level is a weighted mean of y / shape, so it can look back months
without lagging behind the season, and is multiplied by the shape of the day
it is for. A 28-day plain mean is noisy on small queues and a longer one trails
the season (docs/accuracy.md); the shape is what lets the window grow.

The shape is fitted once per model, on the last `FIT_DAYS` (3 years) of the
training history, by weighted least squares on log(y) of open days:

    log y = a[series, weekday] + trend * years + sum_k (c_k cos + s_k sin)(2 pi k day_of_year / 365.25)

- **Weekday effects per series** (a queue's Saturday is its own), centred to
  mean 0 over the weekdays the series is open, so the shape carries no scale.
- **Yearly cycle and trend pooled over series**: two years of one queue are too
  few to tell its season from its noise, one cycle for the centre is not. What
  a queue does differently is left to the trees (`series` x calendar features).
  Only fitted when the history spans `MIN_YEARLY_DAYS`; before that the shape is
  the weekday effects alone (no trend either), and the forecaster keeps its
  28-day window level instead (measured better without a season to correct).
- **Weights** 1 / (1 / mean + CV^2): the inverse of the variance of log y for a
  Poisson count with day-to-day noise, so a 100-call queue does not steer the shared cycle as
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
FIT_DAYS = 1096            # the shape is fitted on the last 3 years: the trend is the recent growth, not a decade's
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
        known = list(self.weekday)
        # One lookup for all rows (a mask per series would cost rows x series): unknown series get the zero row.
        code = pd.Index(known, dtype=object).get_indexer(np.asarray(series, dtype=object).astype(str))
        table = np.vstack([np.asarray([self.weekday[name] for name in known], dtype=float).reshape(-1, 7),
                           np.zeros((1, 7))])
        out = table[np.where(code < 0, len(known), code), dates.day_of_week.to_numpy()]
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


def fit_shape(history: pd.DataFrame, fourier_order: int = FOURIER_ORDER, min_yearly_days: int = MIN_YEARLY_DAYS,
              fit_days: int = FIT_DAYS) -> SeasonalShape:
    """Fit the shape on the open days with y > 0 of the last `fit_days` of `history` (`series, date, y, is_open`)."""
    open_rows = history.loc[history["is_open"].astype(bool) & (history["y"].to_numpy(dtype=float) > 0)]
    if open_rows.empty:
        raise DataError("seasonal shape: no open day with calls in the history; nothing to fit")
    open_rows = open_rows.loc[open_rows["date"] > open_rows["date"].max() - pd.Timedelta(days=fit_days)]
    series = open_rows["series"].astype("str").to_numpy(dtype=object)
    dates = pd.DatetimeIndex(open_rows["date"])
    log_y = np.log(open_rows["y"].to_numpy(dtype=float))
    names = sorted(set(series))
    code = np.searchsorted(np.array(names, dtype=object), series)
    cell = 7 * code + dates.day_of_week.to_numpy()   # one effect per series x weekday
    n_cells = 7 * len(names)
    anchor = str(dates.max().date())
    order = int(fourier_order) if (dates.max() - dates.min()).days + 1 >= min_yearly_days else 0

    mean = np.bincount(code, np.exp(log_y)) / np.bincount(code)
    weight = 1.0 / (1.0 / mean[code] + DAY_NOISE_CV**2)
    cell_weight = np.bincount(cell, weight, minlength=n_cells)

    def cell_mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weight * values, minlength=n_cells)[cell] / cell_weight[cell]

    # The series x weekday effects are absorbed by centring within each cell (Frisch-Waugh-Lovell): the same
    # weighted least squares as one dummy column per cell, without a design matrix that grows with series x days.
    if order:
        calendar = _calendar_matrix(dates, anchor, order)
        centred = calendar - np.column_stack([cell_mean(col) for col in calendar.T])
        root = np.sqrt(weight)
        coef, *_ = np.linalg.lstsq(centred * root[:, None], (log_y - cell_mean(log_y)) * root, rcond=None)
        residual = log_y - calendar @ coef
    else:
        coef, residual = np.zeros(1), log_y
    effects = np.bincount(cell, weight * residual, minlength=n_cells) / np.where(cell_weight > 0, cell_weight, 1.0)

    weekday = {}
    for i, name in enumerate(names):
        own, seen = effects[7 * i: 7 * i + 7], cell_weight[7 * i: 7 * i + 7] > 0
        weekday[name] = [float(v) for v in np.where(seen, own - own[seen].mean(), 0.0)]
    return SeasonalShape(anchor=anchor, weekday=weekday, trend=float(coef[0]),
                         yearly=tuple(float(v) for v in coef[1:]))


def _calendar_matrix(dates: pd.DatetimeIndex, anchor: str, order: int) -> np.ndarray:
    """Columns: years since `anchor`, then cos/sin of each yearly harmonic."""
    t = (dates - pd.Timestamp(anchor)).days.to_numpy() / _YEAR
    doy = dates.day_of_year.to_numpy()
    cols = [t]
    for k in range(1, order + 1):
        angle = 2 * np.pi * k * doy / _YEAR
        cols += [np.cos(angle), np.sin(angle)]
    return np.column_stack(cols)

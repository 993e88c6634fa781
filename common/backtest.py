"""Plain rolling-origin backtest of a forecaster against seasonal naive: origins placed from the history's end.

The steps use `training.rolling_backtest` (origins given, production's setup alongside, drivers and a shared
calibration cache); this one needs only a factory of objects with `fit` and `forecast`, or none for naive alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from common.baselines import seasonal_naive_forecast
from common.errors import ConfigError, DataError
from common.forecast_frame import quantile_column
from common.forecaster import QuantileForecaster

log = logging.getLogger(__name__)


def backtest(make_model: Callable[[], QuantileForecaster] | None, history: pd.DataFrame, holidays: pd.DataFrame,
             origins: int = 4, horizon: int = 14, step_days: int = 7, retrain: bool = True,
             quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
    """Rolling-origin backtest of the recursive forecast and of seasonal naive.

    The latest origin is placed so that its horizon ends on the last date of
    `history` (every origin has a full horizon of actuals); earlier origins step
    back by `step_days`. Each origin trains on dates < origin (once, at the
    earliest origin, when `retrain` is False). Grain: one row per method per
    origin per series per date: `origin, series, date, horizon_day, y, is_open,
    p10, p50, p90, method` (`lightgbm` | `seasonal_naive`). `quantiles` is used
    only without a model (the model's own quantiles win).
    """
    for name, value in (("origins", origins), ("horizon", horizon), ("step_days", step_days)):
        if int(value) < 1:
            raise ConfigError(f"backtest {name} == {value}, must be >= 1")
    hist = history.astype({"series": "str"})
    first, last = hist["date"].min(), hist["date"].max()
    starts = [last - pd.Timedelta(days=horizon - 1 + (k - 1) * step_days) for k in range(origins, 0, -1)]
    if starts[0] <= first:
        raise DataError(f"backtest: the earliest origin {starts[0].date()} is not after the first date {first.date()}; "
                        f"use fewer than origins={origins} or a shorter horizon={horizon} / step_days={step_days}")
    if make_model is not None:
        quantiles = tuple(sorted(make_model().quantiles))
    model = None
    parts = []
    for origin in starts:
        train = hist.loc[hist["date"] < origin]
        actual = hist.loc[(hist["date"] >= origin) & (hist["date"] < origin + pd.Timedelta(days=horizon))]
        actual = actual.loc[actual["series"].isin(set(train["series"]))]
        future = actual.drop(columns="y")
        methods = {"seasonal_naive": seasonal_naive_forecast(train, future, quantiles)}
        if make_model is not None:
            if model is None or retrain:
                model = make_model().fit(train, holidays)
            methods["lightgbm"] = model.forecast(train, future, holidays)
        for method, fc in methods.items():
            fc = fc.merge(actual.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"], how="left")
            parts.append(fc.assign(origin=origin, method=method))
        log.info("backtest origin %s: %d series x %d days", origin.date(), actual["series"].nunique(), horizon)
    cols = ["origin", "series", "date", "horizon_day", "y", "is_open", *map(quantile_column, quantiles), "method"]
    return pd.concat(parts, ignore_index=True).loc[:, cols].sort_values(
        ["method", "origin", "series", "date"], kind="stable").reset_index(drop=True)

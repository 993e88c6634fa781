"""Baselines that need no model: weekly seasonal naive (the benchmark and the fallback) and the same-weekday mean.

Both fill the forecast frame of `forecast_frame` (or align with one); the forecaster uses the same-weekday mean as
the other half of its optional blend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from common.forecast_frame import check_future, postprocess_quantiles, quantile_column, with_horizon

BASELINE_WEEKS = 4


def same_weekday_mean(history: pd.DataFrame, points: pd.DataFrame, weeks: int = BASELINE_WEEKS) -> np.ndarray:
    """Per row of `points` (series, date): the mean y of that series' open days with the same weekday in the
    last `weeks` weeks of `history` (unknown y left out); NaN where there is none. Aligned with `points`."""
    h = history.loc[:, ["series", "date", "y", "is_open"]].astype({"series": "str"})
    last = h.groupby("series")["date"].transform("max")
    h = h.loc[(h["date"] > last - pd.Timedelta(days=7 * weeks)) & h["is_open"].astype(bool) & h["y"].notna()]
    means = h.groupby([h["series"], h["date"].dt.day_of_week.rename("weekday")])["y"].mean()
    means = means.rename("baseline").reset_index()
    pts = points.loc[:, ["series", "date"]].astype({"series": "str"})
    pts = pts.assign(weekday=pts["date"].dt.day_of_week)
    return pts.merge(means, on=["series", "weekday"], how="left")["baseline"].to_numpy(dtype=float)


def seasonal_naive_forecast(history: pd.DataFrame, future: pd.DataFrame,
                            quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
    """Weekly seasonal naive with empirical bands: one row per series per future date.

    Point: y of the latest open day of `history` with the same weekday (a week
    before the origin, or earlier when that day was closed); if the weekday was
    never open, the mean of the last 28 days' open days (else 0). The median
    quantile is the point itself (the textbook benchmark); other quantiles add
    the empirical quantile of y - naive over the open days of the last 8 weeks
    (naive = previous open same weekday), when there are >= 5 such errors.
    """
    quantiles = tuple(sorted(quantiles))
    last = check_future(history, future)
    hist = history.loc[:, ["series", "date", "y", "is_open"]].astype({"series": "str"})
    hist = hist.loc[hist["is_open"].astype(bool) & hist["y"].notna()].sort_values(["series", "date"])
    hist = hist.assign(weekday=hist["date"].dt.day_of_week)
    hist = hist.assign(naive=hist.groupby(["series", "weekday"])["y"].shift(1))
    fut = future.loc[:, ["series", "date", "is_open"]].astype({"series": "str"})
    fut = fut.assign(weekday=fut["date"].dt.day_of_week).sort_values(["series", "date"]).reset_index(drop=True)
    points = hist.groupby(["series", "weekday"])["y"].last().rename("point").reset_index()
    fut = fut.merge(points, on=["series", "weekday"], how="left")
    parts = []
    for series, rows in fut.groupby("series", sort=True):
        h = hist.loc[hist["series"] == series]
        end = last[series]
        recent = h.loc[h["date"] > end - pd.Timedelta(days=28), "y"]
        fallback = float(recent.mean()) if len(recent) else 0.0
        point = rows["point"].fillna(fallback).to_numpy(dtype=float)
        errors = h.loc[h["date"] > end - pd.Timedelta(days=56)]
        errors = (errors["y"] - errors["naive"]).dropna().to_numpy()
        offsets = [0.0 if q == 0.5 or len(errors) < 5 else float(np.quantile(errors, q)) for q in quantiles]
        values = postprocess_quantiles(point[:, None] + np.asarray(offsets)[None, :],
                                       rows["is_open"].to_numpy(dtype=bool))
        parts.append(pd.DataFrame({"series": series, "date": rows["date"].to_numpy(),
                                   **{quantile_column(q): values[:, i] for i, q in enumerate(quantiles)}}))
    result = pd.concat(parts, ignore_index=True)
    return with_horizon(result, last)

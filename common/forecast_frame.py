"""The forecast frame every method returns, and the recursive loop that fills it day by day.

Grain: one row per series per future date, `series, date, horizon_day (1..H), p10, p50, p90` (one `p<100*q>` column
per quantile). Post-processing is the same everywhere: quantiles sorted per row, clipped at 0, closed days
(`is_open` False) exactly 0. Nothing here knows a model: `recursive_forecast` takes a features and a predict
function (the forecaster passes its own), `baselines` fill the same frame without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from common.errors import DataError

# gold_forecast_daily.method of a queue the daily model forecast; any other method is a fallback.
LIGHTGBM, ENSEMBLE = "lightgbm", "ensemble"
MODEL_METHODS = (LIGHTGBM, ENSEMBLE)

_CALENDAR = ["series", "date", "is_open", "is_holiday"]


def quantile_column(q: float) -> str:
    """Column name of quantile q: 0.1 -> 'p10', 0.975 -> 'p97.5'."""
    return f"p{round(q * 100, 6):g}"


def postprocess_quantiles(raw: np.ndarray, is_open: np.ndarray) -> np.ndarray:
    """Rows of quantile predictions sorted ascending, clipped at 0, closed days 0 (NaN -> 0)."""
    out = np.sort(np.nan_to_num(np.asarray(raw, dtype=float), nan=0.0), axis=1)
    out = np.clip(out, 0.0, None)
    out[~np.asarray(is_open, dtype=bool)] = 0.0
    return out


def recursive_forecast(
    history: pd.DataFrame,
    future: pd.DataFrame,
    make_features: Callable[[pd.DataFrame], pd.DataFrame],
    predict: Callable[[pd.DataFrame], np.ndarray],
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    lookback: int | None = None,
    members: Callable[[pd.DataFrame], dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Forecast `future` day by day; each day's post-processed median becomes y for the next days' features.

    `make_features(frame) -> build_features result`; `predict(feature rows) -> (n, len(quantiles))` raw values.
    `lookback=None` rebuilds features on the whole history every day (the plain oracle); an int rebuilds
    only the last `lookback` days before the day being forecast, which gives the same numbers when
    `lookback` covers the longest lag/window. `members(feature rows) -> {column: values}` adds more point forecasts
    from the same rows (clipped at 0, closed days 0); they never feed the recursion. Grain: one row per series per
    future date.
    """
    quantiles = tuple(sorted(quantiles))
    median = quantiles.index(0.5)
    last = check_future(history, future)
    frame = pd.concat([history.loc[:, [*_CALENDAR, "y"]], future.loc[:, _CALENDAR].assign(y=np.nan)],
                      ignore_index=True).astype({"series": "str", "y": float})
    frame = frame.sort_values(["series", "date"], kind="stable").reset_index(drop=True)
    y = frame["y"].to_numpy(copy=True)
    dates = frame["date"].to_numpy()
    out = []
    for day in np.unique(future["date"].to_numpy()):
        window = dates <= day
        if lookback is not None:
            window &= dates >= day - np.timedelta64(lookback, "D")
        feats = make_features(frame.loc[window].assign(y=y[window]))
        rows = feats.loc[feats["date"].to_numpy() == day]
        values = postprocess_quantiles(predict(rows), rows["is_open"].to_numpy() == 1)
        names = rows["series"].astype("str").to_numpy()
        today = np.flatnonzero(dates == day)
        y[today[pd.Index(frame["series"].to_numpy()[today]).get_indexer(names)]] = values[:, median]
        extra = {}
        if members is not None:
            is_open = rows["is_open"].to_numpy() == 1
            extra = {k: np.where(is_open, np.clip(np.nan_to_num(v, nan=0.0), 0.0, None), 0.0)
                     for k, v in members(rows).items()}
        out.append(pd.DataFrame({"series": names, "date": rows["date"].to_numpy(),
                                 **{quantile_column(q): values[:, i] for i, q in enumerate(quantiles)}, **extra}))
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        {"series": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
         **{quantile_column(q): pd.Series(dtype=float) for q in quantiles}})
    return with_horizon(result, last)


def check_future(history: pd.DataFrame, future: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """Last history date per series; refuses future rows that do not continue their series day by day."""
    last = history.astype({"series": "str"}).groupby("series")["date"].max()
    fut = future.loc[:, ["series", "date"]].astype({"series": "str"}).sort_values(["series", "date"])
    unknown = sorted(set(fut["series"]) - set(last.index))
    if unknown:
        raise DataError(f"future calendar has series {unknown} with no history")
    for series, dates in fut.groupby("series")["date"]:
        expected = pd.date_range(last[series] + pd.Timedelta(days=1), periods=len(dates), freq="D")
        if not np.array_equal(dates.to_numpy().astype("datetime64[D]"), expected.to_numpy().astype("datetime64[D]")):
            raise DataError(f"future calendar for series {series!r} must be consecutive days starting "
                            f"{expected[0].date()} (the day after its history ends), got {dates.iloc[0].date()}.."
                            f"{dates.iloc[-1].date()} ({len(dates)} rows)")
    return {str(k): v for k, v in last.items()}


def with_horizon(forecast: pd.DataFrame, last: dict[str, pd.Timestamp]) -> pd.DataFrame:
    """`forecast` with `horizon_day` (days after its series' `last` history date), sorted by series and date."""
    origin_end = forecast["series"].map(last)
    horizon = ((forecast["date"] - origin_end) // pd.Timedelta(days=1)).astype(int)
    cols = [c for c in forecast.columns if c not in ("series", "date")]
    out = forecast.assign(horizon_day=horizon).loc[:, ["series", "date", "horizon_day", *cols]]
    return out.sort_values(["series", "date"], kind="stable").reset_index(drop=True)

"""Model features: ONE function for training and forecasting, point-in-time correct.

`build_features` turns a daily history frame (one row per series per date:
`series, date, y, is_open, is_holiday`, the complete calendar with closed days
as y=0) into one row per series per date with the feature columns. The row for
day T reads y only up to T-1, so the same function serves training (on actuals)
and the recursive forecast (on actuals + earlier forecasts).

Choices, and why:
- **Open-day view.** Every y-based feature reads `y` with closed days set to NaN
  (weekends, holidays): zeros on closed days would drag lags and averages down
  (FORECASTING-NOTES, "closed days poison averages"). Rolling mean/std skip NaN,
  so a 7-day window over a Mon-Fri queue averages its 5 open days. A lag that
  lands on a closed day is NaN; LightGBM routes missing values on its own.
- **Same-weekday lags.** 7, 14, 28 and 364 are whole weeks, so they compare a
  Monday with Mondays. `same_weekday_mean_4` (mean of the last 4 open same
  weekdays) is the strong baseline of the notes, given to the model as a feature.
- **Level.** `level` is the trailing 28-day open-day mean (shifted; falls back to
  the 91-day one when the last 28 days had no open day), or, given a fitted
  `SeasonalShape` (`common.seasonality`), the seasonal level: the mean of
  y / shape over the open days of the 364 days before T, weighted by a
  half-life, times T's shape, so a long window neither trails the season nor
  carries a 28-day mean's noise. It is not a feature: the forecaster divides y
  and the y-unit features by it (`target="ratio"`) so trees need not
  extrapolate beyond the levels seen in training.
- **Long lags are optional.** A lag of `OPTIONAL_LAG_MIN_DAYS` (92) or more
  (by default only 364) is kept only when the longest series has `lag +
  warm-up` days, so at least a month of rows carries it. Pass the training
  `feature_names` when forecasting to get exactly the same columns (a kept
  long lag is then NaN where unknown).
- **Rolling stats** are computed window by window in a fixed summation order,
  so the value for day T does not depend on where the frame starts: building
  features on the tail of a history gives bit-identical rows (the fast
  recursive forecast relies on this).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from common.errors import DataError
from common.seasonality import SeasonalShape

FEATURE_LAGS = (1, 7, 14, 28, 364)
ROLLING_WINDOWS = (7, 28)
LEVEL_WINDOW = 28
LEVEL_FALLBACK_WINDOW = 91
SEASONAL_LEVEL_WINDOW = 364  # days behind a seasonal level (weights beyond it are < 6% at the default half-life)
SEASONAL_LEVEL_HALF_LIFE = 90.0
SAME_WEEKDAY_WEEKS = 4
OPTIONAL_LAG_MIN_DAYS = 92  # lags from here on (364) need a long history; shorter ones are always built
HOLIDAY_DISTANCE_CAP = 60  # days; beyond that a holiday has no effect, and it keeps "none known" finite

HISTORY_COLUMNS = ("series", "date", "y", "is_open", "is_holiday")
KEY_COLUMNS = ("series", "date", "y", "level")
CALENDAR_FEATURES = (
    "weekday", "month", "week_of_year", "day_of_month", "is_month_end",
    "days_to_holiday", "days_since_holiday", "is_holiday", "is_open",
)
SAME_WEEKDAY_FEATURE = f"same_weekday_mean_{SAME_WEEKDAY_WEEKS}"
_Y_UNIT_PATTERN = re.compile(r"^(lag_\d+|same_weekday_mean_\d+|roll_(mean|std)_\d+)$")
_LAG_PATTERN = re.compile(r"^lag_(\d+)$")
_WINDOW_PATTERN = re.compile(r"^roll_(?:mean|std)_(\d+)$")


def build_features(
    history: pd.DataFrame,
    holidays: pd.DataFrame,
    lags: Sequence[int] = FEATURE_LAGS,
    windows: Sequence[int] = ROLLING_WINDOWS,
    exogenous: pd.DataFrame | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    shape: SeasonalShape | None = None,
    level_half_life: float = SEASONAL_LEVEL_HALF_LIFE,
) -> pd.DataFrame:
    """Return one row per series per date of `history`: `series, date, y, level` + features.

    `series` is categorical with `categories` (default: the sorted series of
    `history`; pass the training ones when forecasting). `feature_names`
    (default: chosen here, see module doc) fixes the feature columns; read them
    back with `feature_columns`. `holidays` is `date[, holiday_name]` of closed
    dates, future ones included. `exogenous` is `date[, series], <numeric cols>`,
    joined on date (and series when it has that column).
    """
    lags, windows = _check_lags_windows(lags, windows)
    frame = _sorted_history(history)
    starts, ends = _series_bounds(frame)

    y_open = np.where(frame["is_open"].to_numpy(dtype=bool), frame["y"].to_numpy(dtype=float), np.nan)
    log_shape = None if shape is None else shape.log_shape(frame["series"].to_numpy(), frame["date"])
    cols: dict[str, np.ndarray] = {}
    n = len(frame)
    names_y = [lag_name(lag) for lag in lags] + [SAME_WEEKDAY_FEATURE]
    names_y += [f"roll_{stat}_{w}" for w in windows for stat in ("mean", "std")]
    for name in [*names_y, "level"]:
        cols[name] = np.full(n, np.nan)
    for a, b in zip(starts, ends):
        x = y_open[a:b]
        for lag in lags:
            cols[lag_name(lag)][a:b] = _shift(x, lag)
        same_weekday = np.column_stack([_shift(x, 7 * k) for k in range(1, SAME_WEEKDAY_WEEKS + 1)])
        cols[SAME_WEEKDAY_FEATURE][a:b] = _row_mean(same_weekday)
        for w in windows:
            mean, std = _trailing_mean_std(x, w)
            cols[f"roll_mean_{w}"][a:b] = mean
            cols[f"roll_std_{w}"][a:b] = std
        if log_shape is None:
            level, _ = _trailing_mean_std(x, LEVEL_WINDOW)
            fallback, _ = _trailing_mean_std(x, LEVEL_FALLBACK_WINDOW)
            cols["level"][a:b] = np.where(np.isnan(level), fallback, level)
        else:
            day_shape = np.exp(log_shape[a:b])
            adjusted = _trailing_weighted_mean(x / day_shape, SEASONAL_LEVEL_WINDOW, level_half_life)
            cols["level"][a:b] = adjusted * day_shape

    cols.update(_calendar_columns(frame, holidays))
    cats = sorted(frame["series"].unique()) if categories is None else list(categories)
    out = pd.DataFrame({
        "series": pd.Categorical(frame["series"], categories=cats),
        "date": frame["date"].to_numpy(),
        "y": frame["y"].to_numpy(dtype=float),
        **cols,
    })
    exog_cols: list[str] = []
    if exogenous is not None:
        out, exog_cols = _join_exogenous(out, exogenous)

    if feature_names is None:
        longest = int((ends - starts).max()) if len(starts) else 0
        warm = warmup_days(lags, windows)
        kept_lags = [lag for lag in lags if lag < OPTIONAL_LAG_MIN_DAYS or longest >= lag + warm]
        names = ["series", *(lag_name(lag) for lag in kept_lags), *names_y[len(lags):],
                 *CALENDAR_FEATURES, *exog_cols]
    else:
        names = list(feature_names)
        missing = [name for name in names if name not in out.columns or name in KEY_COLUMNS[1:]]
        if missing:
            raise DataError(
                f"build_features: feature_names asks for {missing}, which cannot be built from "
                f"lags={list(lags)}, windows={list(windows)}, exogenous columns={exog_cols}"
            )
    return out.loc[:, [*KEY_COLUMNS, *(name for name in names if name != "series")]]


def feature_columns(features: pd.DataFrame) -> list[str]:
    """The model's feature names in a `build_features` result: `series` + everything after `level`."""
    return ["series", *(c for c in features.columns if c not in KEY_COLUMNS)]


def exogenous_features(feature_names: Sequence[str]) -> list[str]:
    """The drivers among a model's feature names: what is neither the series, a y feature nor a calendar one."""
    return [name for name in feature_names
            if name != "series" and name not in CALENDAR_FEATURES and not _Y_UNIT_PATTERN.match(name)]


def y_unit_features(feature_names: Sequence[str]) -> list[str]:
    """The features measured in units of y (lags, rolling stats), which a ratio model divides by `level`."""
    return [name for name in feature_names if _Y_UNIT_PATTERN.match(name)]


def lag_name(lag: int) -> str:
    """Column name of a lag feature."""
    return f"lag_{lag}"


def warmup_days(lags: Sequence[int] = FEATURE_LAGS, windows: Sequence[int] = ROLLING_WINDOWS) -> int:
    """Days at the start of a series whose features are incomplete (excluded from training)."""
    short_lags = [lag for lag in lags if lag < OPTIONAL_LAG_MIN_DAYS]
    return max([*short_lags, *windows, 7 * SAME_WEEKDAY_WEEKS])


def lookback_days(feature_names: Sequence[str], seasonal_level: bool = False) -> int:
    """How many days before T the features of day T read: enough tail for an exact rebuild."""
    lags = [int(m.group(1)) for m in map(_LAG_PATTERN.match, feature_names) if m]
    windows = [int(m.group(1)) for m in map(_WINDOW_PATTERN.match, feature_names) if m]
    level = [SEASONAL_LEVEL_WINDOW] if seasonal_level else [LEVEL_WINDOW, LEVEL_FALLBACK_WINDOW]
    return max([*lags, *windows, 7 * SAME_WEEKDAY_WEEKS, *level])


def _check_lags_windows(lags: Sequence[int], windows: Sequence[int]) -> tuple[list[int], list[int]]:
    lags, windows = sorted({int(v) for v in lags}), sorted({int(v) for v in windows})
    if not lags or lags[0] < 1:
        raise DataError(f"build_features: lags={lags}, every lag must be >= 1 (the row for T reads up to T-1)")
    if not windows or windows[0] < 2:
        raise DataError(f"build_features: windows={windows}, every rolling window must be >= 2 days")
    return lags, windows


def _sorted_history(history: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise DataError(f"daily history frame lacks columns {missing}; it needs {list(HISTORY_COLUMNS)}")
    frame = history.loc[:, list(HISTORY_COLUMNS)].astype({"series": "str"})
    frame = frame.sort_values(["series", "date"], kind="stable").reset_index(drop=True)
    return frame


def _series_bounds(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Start/end row of each series; refuses duplicate or missing dates (rolling by rows = by days)."""
    series = frame["series"].to_numpy()
    n = len(series)
    if n == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    new = np.r_[True, series[1:] != series[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]
    days = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    step = np.diff(days)
    bad = np.flatnonzero((step != 1) & ~new[1:])
    if len(bad):
        i = bad[0] + 1
        what = "a duplicate" if step[bad[0]] == 0 else f"a gap of {step[bad[0]] - 1} days before"
        raise DataError(
            f"daily history: series {series[i]!r} has {what} date {frame['date'].iloc[i].date()}; "
            "the calendar must have exactly one row per series per date (closed days with y=0)"
        )
    return starts, ends


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _row_mean(matrix: np.ndarray) -> np.ndarray:
    """NaN-skipping mean per row, summed column by column (fixed order = reproducible)."""
    total = np.zeros(matrix.shape[0])
    count = np.zeros(matrix.shape[0])
    for k in range(matrix.shape[1]):
        col = matrix[:, k]
        ok = ~np.isnan(col)
        total += np.where(ok, col, 0.0)
        count += ok
    return np.divide(total, count, out=np.full(len(total), np.nan), where=count >= 1)


def _trailing_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1) of x[i-w:i] per i, skipping NaN; std needs 2 values."""
    view = sliding_window_view(np.concatenate([np.full(w, np.nan), x]), w)[:-1]
    mean = _row_mean(view)
    sq = np.zeros(len(x))
    count = np.zeros(len(x))
    for k in range(w):
        col = view[:, k]
        ok = ~np.isnan(col)
        sq += np.where(ok, (col - mean) ** 2, 0.0)
        count += ok
    std = np.sqrt(np.divide(sq, count - 1, out=np.full(len(x), np.nan), where=count >= 2))
    return mean, std


def _trailing_weighted_mean(x: np.ndarray, w: int, half_life: float) -> np.ndarray:
    """Mean of x[i-w:i] per i weighted 0.5 ** (age / half_life) (age 1 = the day before), skipping NaN.

    Each row is its own reduction over the same w columns, so a row's value does
    not depend on where the frame starts (as in `_trailing_mean_std`)."""
    if not half_life > 0:
        raise DataError(f"seasonal level half-life == {half_life}, must be > 0 days")
    view = sliding_window_view(np.concatenate([np.full(w, np.nan), x]), w)[:-1]  # row i: x[i-w:i], oldest first
    weights = 0.5 ** (np.arange(w, 0, -1) / half_life)
    ok = ~np.isnan(view)
    total = (np.where(ok, view, 0.0) * weights).sum(axis=1)
    weight = (ok * weights).sum(axis=1)
    return np.divide(total, weight, out=np.full(len(x), np.nan), where=weight > 0)


def _calendar_columns(frame: pd.DataFrame, holidays: pd.DataFrame) -> dict[str, np.ndarray]:
    if "date" not in holidays.columns:
        raise DataError("holidays frame lacks column 'date'; it needs date[, holiday_name]")
    dates = frame["date"]
    day = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
    closed = np.unique(pd.to_datetime(holidays["date"]).to_numpy().astype("datetime64[D]").astype(np.int64))
    cap = HOLIDAY_DISTANCE_CAP
    if len(closed):
        # strictly after / before T: the day itself is `is_holiday`; "1 day since" marks catch-up days
        nxt = np.searchsorted(closed, day, side="right")
        prv = np.searchsorted(closed, day, side="left") - 1
        to_next = np.where(nxt < len(closed), closed[np.minimum(nxt, len(closed) - 1)] - day, cap)
        since_prev = np.where(prv >= 0, day - closed[np.maximum(prv, 0)], cap)
    else:
        to_next = since_prev = np.full(len(day), cap)
    return {
        "weekday": dates.dt.day_of_week.to_numpy(dtype=float),
        "month": dates.dt.month.to_numpy(dtype=float),
        "week_of_year": dates.dt.isocalendar().week.to_numpy(dtype=float),
        "day_of_month": dates.dt.day.to_numpy(dtype=float),
        "is_month_end": dates.dt.is_month_end.to_numpy(dtype=float),
        "days_to_holiday": np.minimum(to_next, cap).astype(float),
        "days_since_holiday": np.minimum(since_prev, cap).astype(float),
        "is_holiday": frame["is_holiday"].to_numpy(dtype=float),
        "is_open": frame["is_open"].to_numpy(dtype=float),
    }


def _join_exogenous(out: pd.DataFrame, exogenous: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if "date" not in exogenous.columns:
        raise DataError("exogenous frame lacks column 'date'; it needs date[, series], <numeric columns>")
    keys = ["series", "date"] if "series" in exogenous.columns else ["date"]
    exog_cols = [c for c in exogenous.columns if c not in keys]
    clash = [c for c in exog_cols if c in out.columns]
    bad = [c for c in exog_cols
           if not (pd.api.types.is_numeric_dtype(exogenous[c]) or pd.api.types.is_bool_dtype(exogenous[c]))]
    if clash:
        raise DataError(f"exogenous columns {clash} clash with feature names; rename them")
    if bad:
        raise DataError(f"exogenous columns {bad} are not numeric; features must be numbers or booleans")
    if exogenous.duplicated(keys).any():
        raise DataError(f"exogenous frame has duplicate rows for {keys}; it needs one row per {' per '.join(keys)}")
    right = exogenous.loc[:, [*keys, *exog_cols]].astype({c: float for c in exog_cols})
    if "series" in keys:
        right = right.astype({"series": "str"})
        merged = out.assign(_s=out["series"].astype("str")).merge(
            right.rename(columns={"series": "_s"}), on=["_s", "date"], how="left").drop(columns="_s")
    else:
        merged = out.merge(right, on="date", how="left")
    return merged, exog_cols

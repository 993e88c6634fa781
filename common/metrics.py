"""Forecast accuracy metrics on a backtest/evaluation frame.

Input: one row per forecast point with `y`, `p50` (and `p10`, `p90` or other
`p<100*q>` columns for the interval metrics), plus grouping columns such as
`series`, `origin`, `method`, `horizon_day`. Every metric is computed on open
days only: by default the rows with y > 0 (closed days are 0 by rule on both
sides and would flatter every ratio), or on the rows of a given `mask` (a
boolean array/Series, or the name of a boolean column). A metric whose
denominator is zero or whose selection is empty returns NaN, never inf.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

Mask = np.ndarray | pd.Series | str | None
_QUANTILE_COLUMN = re.compile(r"^p(\d+(?:\.\d+)?)$")
NAIVE_COLUMN = "naive_p50"
NAIVE_METHOD = "seasonal_naive"


def open_mask(frame: pd.DataFrame, mask: Mask = None) -> np.ndarray:
    """Boolean array of the rows a metric uses: `mask` if given, else y > 0; rows without y never count."""
    y = frame["y"].to_numpy(dtype=float)
    if mask is None:
        chosen = y > 0
    elif isinstance(mask, str):
        chosen = frame[mask].to_numpy(dtype=bool)
    else:
        chosen = np.asarray(mask, dtype=bool)
    return chosen & np.isfinite(y)


def _pick(frame: pd.DataFrame, mask: Mask, *cols: str) -> list[np.ndarray]:
    m = open_mask(frame, mask)
    return [frame[c].to_numpy(dtype=float)[m] for c in cols]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den != 0 and np.isfinite(den) else float("nan")


def wmape(frame: pd.DataFrame, mask: Mask = None) -> float:
    """sum |y - p50| / sum y."""
    y, p = _pick(frame, mask, "y", "p50")
    return _ratio(np.abs(y - p).sum(), y.sum())


def mape(frame: pd.DataFrame, mask: Mask = None) -> float:
    """mean |y - p50| / y over the selected rows with y > 0 (a zero actual is always left out)."""
    y, p = _pick(frame, mask, "y", "p50")
    keep = y > 0
    return float(np.mean(np.abs(y[keep] - p[keep]) / y[keep])) if keep.any() else float("nan")


def mae(frame: pd.DataFrame, mask: Mask = None) -> float:
    """mean |y - p50|."""
    y, p = _pick(frame, mask, "y", "p50")
    return float(np.mean(np.abs(y - p))) if len(y) else float("nan")


def rmse(frame: pd.DataFrame, mask: Mask = None) -> float:
    """sqrt(mean (y - p50)^2)."""
    y, p = _pick(frame, mask, "y", "p50")
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else float("nan")


def bias(frame: pd.DataFrame, mask: Mask = None) -> float:
    """sum(p50 - y) / sum y: positive means over-forecast."""
    y, p = _pick(frame, mask, "y", "p50")
    return _ratio((p - y).sum(), y.sum())


def total_volume_error(frame: pd.DataFrame, mask: Mask = None, by: Sequence[str] = ("series", "origin")) -> float:
    """Mean over (series, origin) of |sum p50 - sum y| / sum y: how far off the horizon's total volume is.

    Groups by the columns of `by` that the frame has (none: the whole frame is one horizon);
    groups whose actual total is 0 are left out.
    """
    m = open_mask(frame, mask)
    keys = [c for c in by if c in frame.columns]
    sub = frame.loc[m, [*keys, "y", "p50"]].astype({"y": float, "p50": float})
    if sub.empty:
        return float("nan")
    totals = sub.groupby(keys, observed=True)[["y", "p50"]].sum() if keys else sub[["y", "p50"]].sum().to_frame().T
    totals = totals.loc[totals["y"] != 0]
    if totals.empty:
        return float("nan")
    return float((np.abs(totals["p50"] - totals["y"]) / totals["y"]).mean())


def pinball_loss(y: np.ndarray | pd.Series, q_pred: np.ndarray | pd.Series, q: float) -> float:
    """Mean pinball (quantile) loss of predictions `q_pred` of quantile `q` against actuals `y`."""
    diff = np.asarray(y, dtype=float) - np.asarray(q_pred, dtype=float)
    if len(diff) == 0:
        return float("nan")
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def coverage(frame: pd.DataFrame, mask: Mask = None, lower: str = "p10", upper: str = "p90") -> float:
    """Share of actuals within [lower, upper] (both ends included)."""
    y, lo, hi = _pick(frame, mask, "y", lower, upper)
    return float(np.mean((y >= lo) & (y <= hi))) if len(y) else float("nan")


def mase(frame: pd.DataFrame, mask: Mask = None, naive: str = NAIVE_COLUMN) -> float:
    """MAE of p50 / MAE of the seasonal naive point (`naive` column) on the same rows: < 1 beats naive."""
    y, p, n = _pick(frame, mask, "y", "p50", naive)
    keep = np.isfinite(n)
    return _ratio(np.abs(y[keep] - p[keep]).sum(), np.abs(y[keep] - n[keep]).sum())


def with_naive(frame: pd.DataFrame, keys: Sequence[str] = ("origin", "series", "date")) -> pd.DataFrame:
    """The frame plus `naive_p50`: the seasonal naive p50 of the same point, from its `method` rows.

    Grain unchanged (one row per input row). Frames without a `method` column,
    or that already have `naive_p50`, are returned as they are.
    """
    if NAIVE_COLUMN in frame.columns or "method" not in frame.columns:
        return frame
    on = [k for k in keys if k in frame.columns]
    naive = frame.loc[frame["method"] == NAIVE_METHOD, [*on, "p50"]].rename(columns={"p50": NAIVE_COLUMN})
    return frame.merge(naive.drop_duplicates(on), on=on, how="left", validate="many_to_one")


def accuracy_table(frame: pd.DataFrame, by: list[str], mask: str | None = None) -> pd.DataFrame:
    """One row per group of `by`: n_points, wmape, mape, mae, rmse, bias, total_volume_error, pinball, coverage, mase.

    `pinball` is the mean pinball loss over the frame's quantile columns
    (`p10`, `p50`, `p90`, ...); `coverage` uses the lowest and highest of them;
    `mase` compares with the seasonal naive rows of the same frame (see
    `with_naive`) or a `naive_p50` column. `mask` names a boolean column
    (default: y > 0).
    """
    data = with_naive(frame)
    qcols = sorted((c for c in data.columns if _QUANTILE_COLUMN.match(c)), key=lambda c: float(c[1:]))
    rows = []
    groups = data.groupby(by, sort=True, observed=True, dropna=False) if by else [((), data)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        m = open_mask(group, mask)
        y = group["y"].to_numpy(dtype=float)[m]
        pinballs = [pinball_loss(y, group[c].to_numpy(dtype=float)[m], float(c[1:]) / 100) for c in qcols]
        rows.append({
            **dict(zip(by, key)),
            "n_points": int(m.sum()),
            "wmape": wmape(group, m), "mape": mape(group, m), "mae": mae(group, m), "rmse": rmse(group, m),
            "bias": bias(group, m), "total_volume_error": total_volume_error(group, m),
            "pinball": float(np.mean(pinballs)) if pinballs and len(y) else float("nan"),
            "coverage": coverage(group, m, qcols[0], qcols[-1]) if len(qcols) >= 2 else float("nan"),
            "mase": mase(group, m) if NAIVE_COLUMN in group.columns else float("nan"),
        })
    return pd.DataFrame(rows, columns=[*by, "n_points", "wmape", "mape", "mae", "rmse", "bias",
                                       "total_volume_error", "pinball", "coverage", "mase"])

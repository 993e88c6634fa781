"""What the forecaster learns after fitting, from an inner rolling-origin backtest on its own training history.

Adjustments learnt at fit time and stored with the model (so step 3 applies exactly what step 2 measured): an inner
rolling-origin backtest on the training history (`calibration_origins` origins a week apart, each retrained,
forecasting `calibration_horizon` days recursively, as the nightly run does) gives
- **conformal band factors** c_q (conformalised quantile regression with
  relative scores): p10 moves down by c x p50 where c is the empirical 90%
  quantile of (p10 - y) / p50 over the backtest, p90 likewise upwards (c < 0
  narrows), never across p50; the raw LightGBM bands covered 54-71% of actuals
  where 80% was promised, the calibrated ones 79-80% (docs/accuracy.md);
- optionally (`blend=True`, off by default: it lost out of sample on short
  history, docs/accuracy.md) a blend weight w: p50 = w x model p50 + (1 - w) x
  the mean of the last 4 open same weekdays, w on a 0.05 grid minimising the
  backtest's absolute error.
Too little history for >= 2 inner origins: no adjustment (w = 1, c = 0), logged.

This module is the arithmetic on backtest points and a cache of inner fits; it fits nothing itself. The forecaster
runs the inner backtest (it fits copies of itself) and calls `learn_adjustments`, so the import goes one way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from common.forecast_frame import quantile_column

BLEND_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
NO_ADJUSTMENT = {"blend_weight": 1.0, "band_factors": {}, "origins": [], "points": 0,
                 "note": "no adjustment (disabled, or too little history for 2 inner backtest origins)"}


def learn_adjustments(points: pd.DataFrame, quantiles: Sequence[float], blend: bool = True,
                      calibrate: bool = True) -> dict:
    """Blend weight and conformal band factors from backtest points (see module doc).

    `points`: one row per backtest forecast: `y, is_open, baseline` and the model's quantile columns, and optionally
    `combined` (the ensemble's p50, which then replaces the model's and the blend's). Only open
    days with y > 0 count. Returns {"blend_weight", "band_factors" {column: k}, "points", "coverage_raw",
    "coverage_adjusted", "wmape_model", "wmape_blend"} (coverage of the outer pair of quantiles).
    """
    ok = points["is_open"].astype(bool).to_numpy() & (points["y"].to_numpy(dtype=float) > 0)
    pts = points.loc[ok]
    y = pts["y"].to_numpy(dtype=float)
    m50 = pts["p50"].to_numpy(dtype=float)
    base = pts["baseline"].to_numpy(dtype=float)
    base = np.where(np.isfinite(base), base, m50)
    weight = 1.0
    if blend and len(y):
        errors = np.array([np.abs(y - (w * m50 + (1 - w) * base)).sum() for w in BLEND_GRID])
        # ties go to the model: the larger weight among the best
        weight = float(BLEND_GRID[np.flatnonzero(errors <= errors.min() * (1 + 1e-9))].max())
    p50 = weight * m50 + (1 - weight) * base
    if "combined" in pts.columns:  # the ensemble's p50: the band is calibrated around it
        p50 = pts["combined"].to_numpy(dtype=float)
    factors, n = {}, len(y)
    qcols = [quantile_column(q) for q in sorted(quantiles) if q != 0.5]
    if calibrate and n:
        scale = np.maximum(p50, 1.0)
        for q in (q for q in sorted(quantiles) if q != 0.5):
            col = quantile_column(q)
            shifted = pts[col].to_numpy(dtype=float) - m50 + p50
            score = (shifted - y) / scale if q < 0.5 else (y - shifted) / scale
            factors[col] = round(float(np.quantile(score, 1 - q if q < 0.5 else q)), 6)
    adjusted = apply_band_factors(pts, m50, p50, factors, qcols) if n else {}
    lo, hi = (qcols[0], qcols[-1]) if len(qcols) >= 2 else (None, None)

    def cover(values: dict) -> float | None:
        if lo is None or not n:
            return None
        return round(float(np.mean((y >= values[lo]) & (y <= values[hi]))), 6)

    return {
        "blend_weight": weight, "band_factors": factors, "points": int(n),
        "coverage_raw": cover({c: pts[c].to_numpy(dtype=float) for c in qcols}),
        "coverage_adjusted": cover(adjusted),
        "wmape_model": round(float(np.abs(y - m50).sum() / y.sum()), 6) if n else None,
        "wmape_blend": round(float(np.abs(y - p50).sum() / y.sum()), 6) if n else None,
    }


def apply_band_factors(raw: pd.DataFrame, m50: np.ndarray, p50: np.ndarray, factors: dict, qcols: Sequence[str]) -> dict:
    """Outer quantiles: the model's band moved with the (blended) p50, then widened (c > 0) or narrowed (c < 0)
    by c x p50 on its side, never across p50 (conformalised quantile regression, relative scores)."""
    out, scale = {}, np.maximum(p50, 1.0)
    for col in qcols:
        shifted = raw[col].to_numpy(dtype=float) - m50 + p50
        c = float(factors.get(col, 0.0))
        if float(col[1:]) < 50:
            out[col] = np.minimum(shifted - c * scale, p50)
        else:
            out[col] = np.maximum(shifted + c * scale, p50)
    return out


class CalibrationCache:
    """Inner-backtest forecasts shared by every fit on one history (2_train: its backtest models and the final one).

    The inner backtest of a model trained on days < T forecasts from the origins T - 14 - 7k; 2_train's backtest
    models, trained up to earlier weeks, ask for mostly the same origins again, and are themselves trained on
    exactly the rows an inner model of the final fit was. On one history an origin's inner forecast and raw model
    depend only on the origin (training = every row before it, actuals = the days after it) and the model
    settings, so each is computed once: 2_train fits 14 models instead of 45 (4 backtest origins, 8 inner ones)
    with bit-identical bands. Use one cache per history, holidays and exogenous frame; never across runs.
    """

    def __init__(self) -> None:
        self._points: dict[tuple[pd.Timestamp, str], pd.DataFrame | None] = {}
        self._models: dict[tuple[pd.Timestamp, str], Any] = {}  # fitted QuantileForecasters
        self.hits = 0
        self.misses = 0
        self.models_reused = 0

    def keep_model(self, origin: pd.Timestamp, settings: str, model: Any) -> None:
        """Remember an unadjusted model trained on every row before `origin`."""
        self._models[(pd.Timestamp(origin), settings)] = model

    def model(self, origin: pd.Timestamp, settings: str) -> Any:
        """The unadjusted model trained on every row before `origin` with these settings, if one was kept."""
        found = self._models.get((pd.Timestamp(origin), settings))
        self.models_reused += found is not None
        return found

    def points(self, origin: pd.Timestamp, settings: str,
               compute: Callable[[], pd.DataFrame | None]) -> pd.DataFrame | None:
        key = (pd.Timestamp(origin), settings)
        if key in self._points:
            self.hits += 1
        else:
            self.misses += 1
            self._points[key] = compute()
        return self._points[key]

"""bench/accuracy.py's scores: one row of daily metrics per method, interval wMAPE, how often the critical rule fires.

Input frames have one row per method per origin per series per date: method, origin, series, date, y, is_open,
p10, p50, p90 (common.metrics' open-day conventions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common import alerts
from common.metrics import bias, coverage, mase, open_mask, pinball_loss, total_volume_error, wmape, with_naive

OURS, NAIVE, MEAN4, PUBLISHED = "ours", "seasonal_naive", "same_weekday_mean_4", "published"
QCOLS = ("p10", "p50", "p90")
METHOD_LABELS = {
    OURS: "**wfm-forecast (ours)**",
    PUBLISHED: "**wfm-forecast, published** (after guards and fallback)",
    NAIVE: "weekly seasonal naive",
    MEAN4: "mean of last 4 open same weekdays",
    "statsforecast_autoets": "statsforecast AutoETS (season 7)",
    "statsforecast_mstl": "statsforecast MSTL (season 7)",
    "mlforecast_lgbm_quantile": "mlforecast LightGBM, quantile objectives",
    "mlforecast_lgbm_l2": "mlforecast LightGBM, L2 objective",
}


def method_metrics(frame: pd.DataFrame, seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per method: daily metrics on open days (y > 0), pooled over origins and series.

    wmape, total_error (mean over series x origin of |sum p50 - sum y| / sum y), bias, mase (vs the
    seasonal_naive rows), pinball (mean over p10/p50/p90) and coverage (p10-p90) for methods with a band,
    n_points, seconds.
    """
    data = with_naive(frame)
    rows = []
    for method, g in data.groupby("method", sort=False):
        m = open_mask(g)
        banded = g.loc[m, ["p10", "p90"]].notna().all().all() and m.any()
        y = g["y"].to_numpy(dtype=float)[m]
        pin = [pinball_loss(y, g[c].to_numpy(dtype=float)[m], float(c[1:]) / 100) for c in QCOLS] if banded else []
        rows.append({
            "method": method, "n_points": int(m.sum()), "wmape": wmape(g, m),
            "total_error": total_volume_error(g, m), "bias": bias(g, m),
            "mase": mase(g, m) if "naive_p50" in g.columns else float("nan"),
            "pinball": float(np.mean(pin)) if pin else float("nan"),
            "coverage": coverage(g, m) if banded else float("nan"),
            "seconds": (seconds or {}).get(method, float("nan")),
        })
    return pd.DataFrame(rows)


def interval_wmape(split: pd.DataFrame, daily: pd.DataFrame) -> dict[str, float]:
    """Per method: wMAPE over open intervals of open days (days with a daily actual > 0)."""
    open_days = daily.loc[daily["y"] > 0, ["series", "date"]].drop_duplicates().rename(columns={"series": "queue"})
    s = split.merge(open_days.assign(_day=True), on=["queue", "date"], how="left")
    mask = s["_day"].fillna(False).astype(bool).to_numpy() & s["is_open"].astype(bool).to_numpy()
    s = s.assign(_m=mask)
    return {m: wmape(g, "_m") for m, g in s.groupby("method", sort=True)}


def critical_miss_rates(frame: pd.DataFrame, critical: float = 0.15, min_actual: float = 50) -> dict[str, float]:
    """How often the published forecast's open days (at least `min_actual` calls, every horizon) miss by more than
    `critical` (the old critical `daily_mape` rule), and how often also beyond chance of their own band (the rule
    since issue 15): {"points", "above_threshold", "beyond_chance"}."""
    points = frame.loc[(frame["method"] == PUBLISHED) & frame["is_open"].astype(bool) & (frame["y"] >= min_actual)]
    above = (points["p50"] - points["y"]).abs() / points["y"] > critical
    beyond = [alerts.beyond_chance(y, lo, mid, hi) for y, lo, mid, hi in
              zip(points["y"], points["p10"], points["p50"], points["p90"])]
    return {"points": int(len(points)), "above_threshold": int(above.sum()),
            "beyond_chance": int((above & np.array(beyond, dtype=bool)).sum())}

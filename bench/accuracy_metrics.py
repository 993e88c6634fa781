"""bench/accuracy.py's scores: one row of daily metrics per method, interval wMAPE, how often the critical rule fires.

Input frames have one row per method per origin per series per date: method, origin, series, date, y, is_open,
p10, p50, p90 (common.metrics' open-day conventions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common import alerts
from common.ensemble import MEMBER_PREFIX  # the ensemble's frame: member_<name> p50 columns, p50 = ensemble
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
PEER_PREFIXES = ("statsforecast_", "mlforecast_")  # the methods of bench/peers.py
# Issue 16's goal per series: published p50 daily wMAPE at or below the best of these, and an honest 80% band.
NAIVE_FACTOR = 0.9
GOAL_COVERAGE = (0.72, 0.88)


def member_forecasts(forecast: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each `member_<name>` column of our forecast frame as a point forecast of its own.

    {"member_<name>": frame of series, date, p10, p50, p90 with p10/p90 NaN (a member alone has no calibrated
    band)}; rows where the member gave nothing (NaN, e.g. no vendor forecast for that queue) are left out so they
    do not count as misses. {} when the frame has no member columns.
    """
    out = {}
    for column in [c for c in forecast.columns if str(c).startswith(MEMBER_PREFIX)]:
        rows = forecast.loc[forecast[column].notna()]
        out[column] = pd.DataFrame({"series": rows["series"].to_numpy(), "date": rows["date"].to_numpy(),
                                    "p10": np.nan, "p50": rows[column].to_numpy(dtype=float), "p90": np.nan})
    return out


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


def goal_check(metrics: pd.DataFrame) -> dict:
    """Issue 16's goal on one data set's `method_metrics` rows: the published p50 (ours when nothing was published)
    against the bar = best daily wMAPE of {0.9 x seasonal naive, same_weekday_mean_4, every peer}, and its
    p10-p90 coverage within GOAL_COVERAGE.

    {"method", "wmape", "bar", "bar_from", "candidates" {name: wMAPE}, "wmape_ok", "coverage", "coverage_ok",
    "met", "peers_run"}; {} when neither published nor ours was scored.
    """
    by = metrics.set_index("method")
    target = PUBLISHED if PUBLISHED in by.index else OURS if OURS in by.index else None
    if target is None:
        return {}
    candidates = {}
    if NAIVE in by.index:
        candidates[f"{NAIVE_FACTOR:g} x {NAIVE}"] = NAIVE_FACTOR * float(by.loc[NAIVE, "wmape"])
    for method in by.index:
        if method == MEAN4 or str(method).startswith(PEER_PREFIXES):
            candidates[str(method)] = float(by.loc[method, "wmape"])
    candidates = {k: v for k, v in candidates.items() if np.isfinite(v)}
    bar_from = min(candidates, key=candidates.get) if candidates else None
    bar = candidates[bar_from] if bar_from else float("nan")
    score, cover = float(by.loc[target, "wmape"]), float(by.loc[target, "coverage"])
    wmape_ok = bool(np.isfinite(score) and np.isfinite(bar) and score <= bar)
    coverage_ok = bool(np.isfinite(cover) and GOAL_COVERAGE[0] <= cover <= GOAL_COVERAGE[1])
    return {"method": target, "wmape": score, "bar": bar, "bar_from": bar_from, "candidates": candidates,
            "wmape_ok": wmape_ok, "coverage": cover, "coverage_ok": coverage_ok, "met": wmape_ok and coverage_ok,
            "peers_run": any(str(m).startswith(PEER_PREFIXES) for m in by.index)}

"""The learnt ensemble: member forecasts, weights per series learnt on a rolling backtest, and their combination.

No single method wins on every real series (FORECASTING-NOTES.md: a 4-week same-weekday mean beat every library
model on one bank, a yearly-seasonal model won on a travel company, quantile LightGBM on a small noisy centre), so
the published p50 is a weighted mean of members:

- `lightgbm`: the quantile LightGBM's own median;
- `linear`: a ridge regression on the same point-in-time features and label (`LinearMember`), predicted inside the
  same recursion, so it costs one matrix product per forecast day;
- `same_weekday_mean`: the mean of the last 4 open same weekdays before the origin;
- `seasonal_naive`: the latest open same weekday;
- `vendor`: the WFM tool's own forecast as issued before the origin (`vendor_as_of`), when a vendor table is set.

Weights are per series, non-negative and summing to 1, chosen on a 0.05 grid of the simplex to minimise the
absolute error of the combination over that series' backtest points (the forecaster's inner rolling-origin
backtest: every point forecast from an origin the model had not seen). Recent origins count more: an origin's
points weigh 0.5 ** (its age in origins / half_life_origins), because the model members improve as their training
history grows (on the US bank, LightGBM's inner-backtest error fell from 7% at the oldest origins to 2% at the
newest, while the 4-week mean's stayed at 5-7%). The weights are then shrunk toward a prior by
n / (n + shrink_origins), n the effective number of origins ((sum of weights)^2 / sum of squares): the days of one
origin share one training window and one week's events, so evidence is counted in origins, not points. Last, the
combination must beat LightGBM alone on the same weighted points by `min_gain` of LightGBM's error (default 0: not
be worse), else the series gets LightGBM alone.

Why the prior is LightGBM and not equal weights (the textbook answer to the forecast-combination puzzle): replayed
out of sample on every series we have (bench/ensemble_schemes.py, docs/accuracy.md), the LightGBM prior was better
on three of four (US bank 4.6% vs 4.8%, the odd centre 15.7% vs 15.9%, demo 10.7% vs 10.9%) and 0.2 points worse on
Toronto (11.1% vs 10.9%), where LightGBM alone is weak (13.4%) and both priors hand most of the weight to the
others. A gain rule of 5% kept LightGBM's accuracy where it is best but gave back most of Toronto's gain (12.3%),
so it is off by default (`training.ensemble_min_gain`); `training.ensemble_prior: equal` restores the textbook rule.
A series with no points gets the weights learnt on all points pooled. The band is calibrated after combining
(`calibration.learn_adjustments`), so coverage stays honest.
"""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd

from common.baselines import same_weekday_mean, seasonal_naive_forecast

log = logging.getLogger(__name__)

MEMBERS = ("lightgbm", "linear", "same_weekday_mean", "seasonal_naive", "vendor")
MEMBER_PREFIX = "member_"
WEIGHT_STEP = 0.05
SHRINK_ORIGINS = 1.0        # pseudo-origins of evidence behind the prior
PRIORS = ("lightgbm", "equal")
PRIOR = "lightgbm"          # what thin evidence shrinks toward (bench/ensemble_schemes.py measured both)
MIN_GAIN = 0.0              # the combination must beat LightGBM alone by this share on the backtest, else LightGBM
HALF_LIFE_ORIGINS = 2.0     # an origin's weight halves every this many origins back
MIN_MEMBER_SHARE = 0.8      # a member joins a series' combination when it has a value at this share of its points
POOLED = "*"                # the weights key for series without backtest points of their own


def member_column(name: str) -> str:
    return f"{MEMBER_PREFIX}{name}"


def member_names(frame: pd.DataFrame) -> list[str]:
    """The members present as `member_<name>` columns of `frame`, in MEMBERS order."""
    return [m for m in MEMBERS if member_column(m) in frame.columns]


def simplex_grid(k: int, step: float = WEIGHT_STEP) -> np.ndarray:
    """Every weight vector of length k on the grid `step` with non-negative entries summing to 1: (n, k), the
    vectors heaviest on the first member first (so an argmin's ties go to it)."""
    n = round(1 / step)
    if k == 1:
        return np.ones((1, 1))
    rows = []
    for bars in combinations(range(n + k - 1), k - 1):  # stars and bars
        edges = np.array([-1, *bars, n + k - 1])
        rows.append(np.diff(edges) - 1)
    return np.asarray(rows[::-1], dtype=float) / n


def best_weights(values: np.ndarray, y: np.ndarray, step: float = WEIGHT_STEP,
                 point_weights: np.ndarray | None = None) -> np.ndarray:
    """The grid weights minimising sum_i p_i |y_i - values_i @ w| (`values`: points x members, p: `point_weights`,
    default 1). Ties: the earliest grid row, which puts weight on the earliest members (lightgbm first)."""
    grid = simplex_grid(values.shape[1], step)
    p = np.ones(len(y)) if point_weights is None else np.asarray(point_weights, dtype=float)
    chunk = max(1, 4_000_000 // max(len(y), 1))  # bounded memory: grid rows x points per product
    errors = np.concatenate([(np.abs(y[None, :] - grid[i:i + chunk] @ values.T) * p[None, :]).sum(axis=1)
                             for i in range(0, len(grid), chunk)])
    return grid[int(np.argmin(errors))]


def origin_weights(origins: pd.Series, half_life: float) -> np.ndarray:
    """Per point, 0.5 ** (age / half_life) where age is 0 for the latest origin, 1 for the one before, ..."""
    distinct = np.sort(origins.unique())[::-1]
    age = pd.Series(np.arange(len(distinct), dtype=float), index=distinct)
    return 0.5 ** (origins.map(age).to_numpy(dtype=float) / half_life) if half_life > 0 else np.ones(len(origins))


def learn_weights(points: pd.DataFrame, shrink_origins: float = SHRINK_ORIGINS,
                  half_life_origins: float = HALF_LIFE_ORIGINS, step: float = WEIGHT_STEP, prior: str = PRIOR,
                  min_gain: float = MIN_GAIN) -> dict:
    """Weights per series from backtest points (`series, y, is_open`, `member_*` columns and `origin`; open days with
    y > 0 count; without `origin` every point is an origin of its own, all of equal weight).

    Returns {"members": [...], "weights": {series | POOLED: {member: weight}}, "points": {series: n},
    "origins": {series: effective origins}, "learnt": {series: unshrunk weights},
    "wmape": {series: {member | "ensemble": wMAPE, unweighted}}, "gain": {series: the shrunk combination's
    recency-weighted error below LightGBM's alone, as a share of it}, "kept_lightgbm": [series whose gain was under
    `min_gain`]}. `prior`: what thin evidence shrinks toward, "lightgbm" (all weight on it) or "equal".
    """
    if prior not in PRIORS:
        raise ValueError(f"ensemble prior {prior!r} must be one of {', '.join(PRIORS)}")
    members = member_names(points)
    ok = points["is_open"].astype(bool).to_numpy() & (points["y"].to_numpy(dtype=float) > 0)
    pts = points.loc[ok]
    if "origin" not in pts.columns:
        pts = pts.assign(origin=np.arange(len(pts)))
        half_life_origins = 0.0
    out: dict = {"members": members, "weights": {}, "points": {}, "origins": {}, "learnt": {}, "wmape": {},
                 "gain": {}, "kept_lightgbm": [], "shrink_origins": float(shrink_origins),
                 "half_life_origins": float(half_life_origins), "prior": prior, "min_gain": float(min_gain)}
    for series, rows in [*pts.groupby("series", sort=True), (POOLED, pts)]:
        present = [m for m in members if rows[member_column(m)].notna().mean() >= MIN_MEMBER_SHARE]
        if "lightgbm" not in present:
            present = ["lightgbm", *present]
        values = rows.loc[:, [member_column(m) for m in present]].to_numpy(dtype=float)
        y = rows["y"].to_numpy(dtype=float)
        full = np.isfinite(values).all(axis=1)
        values, y, origins = values[full], y[full], rows["origin"].loc[full]
        n = len(y)
        p = origin_weights(origins, half_life_origins)
        per_origin = pd.Series(p).groupby(origins.to_numpy()).first().to_numpy()
        n_eff = float(per_origin.sum() ** 2 / (per_origin ** 2).sum()) if n else 0.0
        alone = np.eye(len(present))[0]  # present[0] is lightgbm
        base = np.full(len(present), 1 / len(present)) if prior == "equal" else alone
        learnt = best_weights(values, y, step, p) if n else base
        lam = n_eff / (n_eff + shrink_origins) if shrink_origins > 0 else 1.0
        weights = lam * learnt + (1 - lam) * base
        key = str(series)
        gain = 0.0
        if n:
            lgb_error = float((p * np.abs(y - values @ alone)).sum())
            gain = 1 - float((p * np.abs(y - values @ weights)).sum()) / lgb_error if lgb_error > 0 else 0.0
        if gain < min_gain:  # not clearly better than the model alone on this evidence: the model alone
            weights = alone
            out["kept_lightgbm"].append(key)
        out["gain"][key] = round(gain, 4)
        out["weights"][key] = {m: round(float(w), 4) for m, w in zip(present, weights)}
        out["learnt"][key] = {m: round(float(w), 4) for m, w in zip(present, learnt)}
        out["points"][key] = int(n)
        out["origins"][key] = round(n_eff, 2)
        if n:
            scores = {m: float(np.abs(y - values[:, i]).sum() / y.sum()) for i, m in enumerate(present)}
            scores["ensemble"] = float(np.abs(y - values @ weights).sum() / y.sum())
            out["wmape"][key] = {k: round(v, 4) for k, v in scores.items()}
    return out


def weights_for(weights: dict, series: str) -> dict[str, float]:
    """A series' weights, else the pooled ones, else all on lightgbm."""
    table = weights.get("weights") or {}
    return table.get(str(series)) or table.get(POOLED) or {"lightgbm": 1.0}


def combine(frame: pd.DataFrame, weights: dict) -> np.ndarray:
    """The weighted p50 per row of `frame` (`series` and `member_*` columns). A member missing on a row gives its
    weight to the others in proportion; a row with none of its weighted members keeps `member_lightgbm`."""
    out = frame[member_column("lightgbm")].to_numpy(dtype=float).copy()
    for series, idx in frame.groupby("series", sort=False).indices.items():
        w = weights_for(weights, series)
        cols = [m for m in w if member_column(m) in frame.columns]
        if not cols:
            continue
        values = frame.iloc[idx].loc[:, [member_column(m) for m in cols]].to_numpy(dtype=float)
        wv = np.array([w[m] for m in cols])[None, :] * np.isfinite(values)
        total = wv.sum(axis=1)
        mixed = np.nansum(np.nan_to_num(values) * wv, axis=1) / np.where(total > 0, total, 1.0)
        out[idx] = np.where(total > 0, mixed, out[idx])
    return out


def vendor_as_of(vendor: pd.DataFrame | None, origin: pd.Timestamp) -> pd.DataFrame:
    """The vendor's forecast per series and date as it stood before `origin` (the last issue with
    issued_at < origin, a naive timestamp in the same clock as `origin`); later revisions are ignored.
    `vendor`: series, date, forecast, issued_at. Grain: one row per series per date: series, date, vendor."""
    cols = {"series": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
            "vendor": pd.Series(dtype=float)}
    if vendor is None or not len(vendor):
        return pd.DataFrame(cols)
    v = vendor.loc[vendor["issued_at"] < pd.Timestamp(origin)]
    v = v.sort_values(["series", "date", "issued_at"], kind="stable").drop_duplicates(["series", "date"], keep="last")
    return v.loc[:, ["series", "date", "forecast"]].rename(columns={"forecast": "vendor"}).astype(
        {"series": "str", "vendor": float}).reset_index(drop=True)


def with_vendor(frame: pd.DataFrame, vendor: pd.DataFrame | None, origin: pd.Timestamp) -> pd.DataFrame:
    """`frame` (series, date, ...) with `member_vendor` from `vendor_as_of` when a vendor table is given."""
    if vendor is None:
        return frame
    issued = vendor_as_of(vendor, origin).rename(columns={"vendor": member_column("vendor")})
    return frame.drop(columns=[member_column("vendor")], errors="ignore").merge(
        issued, on=["series", "date"], how="left")


def add_members(raw: pd.DataFrame, history: pd.DataFrame, future: pd.DataFrame,
                vendor: pd.DataFrame | None) -> pd.DataFrame:
    """`raw` (series, date, ...) with the members that need no model: the same-weekday mean, seasonal naive and the
    vendor's forecast as issued before the first future date; every member 0 on closed days, like the forecast."""
    naive = seasonal_naive_forecast(history, future.astype({"series": "str"}), (0.5,))
    out = raw.assign(**{member_column("same_weekday_mean"): same_weekday_mean(history, raw)}).merge(
        naive.loc[:, ["series", "date", "p50"]].rename(columns={"p50": member_column("seasonal_naive")}),
        on=["series", "date"], how="left")
    out = with_vendor(out, vendor, pd.Timestamp(future["date"].min()))
    is_open = out.loc[:, ["series", "date"]].merge(
        future.loc[:, ["series", "date", "is_open"]].astype({"series": "str"}), on=["series", "date"],
        how="left")["is_open"].fillna(False).to_numpy(dtype=bool)
    cols = [member_column(m) for m in member_names(out)]
    return out.assign(**{c: np.where(is_open, out[c].clip(lower=0), 0.0) for c in cols})


def format_weights(weights: dict) -> str:
    """One line per series: `Support: lightgbm 0.55, same_weekday_mean 0.30, ... (112 points)`."""
    lines = []
    for series, w in (weights.get("weights") or {}).items():
        if series == POOLED:
            continue
        parts = ", ".join(f"{m} {v:.2f}" for m, v in w.items())
        n, n_eff = (weights.get("points") or {}).get(series, 0), (weights.get("origins") or {}).get(series)
        lines.append(f"{series}: {parts} ({n} points" + (f", {n_eff:g} effective origins)" if n_eff else ")"))
    return "\n".join(lines)


class LinearMember:
    """Ridge regression on the forecaster's feature matrix and label: standardised features (a missing value is the
    training mean), one-hot series and weekday, closed-form solve. Stored as plain numbers in the model's meta.json."""

    def __init__(self, alpha: float = 10.0) -> None:
        self.alpha = alpha

    def _design(self, X: np.ndarray, series: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        Z = (X - self.mean_) / self.scale_
        Z = np.where(np.isfinite(Z), Z, 0.0)
        onehot_s = (series[:, None] == np.arange(self.n_series_)[None, :]).astype(float)
        onehot_w = (weekday[:, None] == np.arange(7)[None, :]).astype(float)
        return np.column_stack([Z, onehot_s, onehot_w])

    def fit(self, X: np.ndarray, series: np.ndarray, weekday: np.ndarray, label: np.ndarray,
            n_series: int) -> LinearMember:
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0)
            scale = np.nanstd(np.where(np.isfinite(X), X, np.nan), axis=0)
        self.mean_ = np.nan_to_num(mean)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        self.n_series_ = int(n_series)
        D = self._design(X, series, weekday)
        ok = np.isfinite(label)
        D, label = D[ok], label[ok]
        # Intercept-free: the weekday one-hot spans the constant. The penalty keeps collinear lags stable.
        gram = D.T @ D + self.alpha * np.eye(D.shape[1])
        self.coef_ = np.linalg.solve(gram, D.T @ label)
        return self

    def predict(self, X: np.ndarray, series: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        return self._design(X, series, weekday) @ self.coef_

    def to_dict(self) -> dict:
        return {"alpha": float(self.alpha), "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                "n_series": self.n_series_, "coef": self.coef_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> LinearMember:
        member = cls(alpha=float(d["alpha"]))
        member.mean_ = np.asarray(d["mean"], dtype=float)
        member.scale_ = np.asarray(d["scale"], dtype=float)
        member.n_series_ = int(d["n_series"])
        member.coef_ = np.asarray(d["coef"], dtype=float)
        return member

"""Quantile LightGBM forecaster, seasonal naive benchmark, recursive loop and backtest.

Every forecast frame has the grain one row per series per future date:
`series, date, horizon_day (1..H), p10, p50, p90` (one `p<100*q>` column per
quantile). Post-processing is the same everywhere: quantiles sorted per row,
clipped at 0, closed days (`is_open` False) exactly 0.

Adjustments learnt at fit time and stored with the model (so step 3 applies
exactly what step 2 measured): an inner rolling-origin backtest on the training
history (`calibration_origins` origins a week apart, each retrained, forecasting
`calibration_horizon` days recursively, as the nightly run does) gives
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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from common.errors import ConfigError, DataError, ModelError
from common.features import (
    FEATURE_LAGS, ROLLING_WINDOWS, SEASONAL_LEVEL_HALF_LIFE, build_features, feature_columns, lookback_days,
    warmup_days, y_unit_features,
)
from common.seasonality import MIN_YEARLY_DAYS, SeasonalShape, fit_shape

log = logging.getLogger(__name__)

BLEND_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
BASELINE_WEEKS = 4
DEFAULT_PARAMS = {
    "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 10,
    "feature_fraction": 0.9, "lambda_l2": 1.0, "max_bin": 255,
}
_ROUNDS_ALIASES = ("n_estimators", "num_iterations", "num_iteration", "num_boost_round", "num_trees",
                   "num_rounds", "num_round", "n_iter", "nrounds", "max_iter")
_META_FILE = "meta.json"
_FORMAT_VERSION = 2
_CALENDAR = ["series", "date", "is_open", "is_holiday"]
# What `_train` sets: a model adopted from a CalibrationCache takes exactly these from the one trained before.
_TRAINED_STATE = ("models_", "quantiles_", "feature_names_", "categories_", "lookback_", "lightgbm_params_",
                  "n_train_rows_", "train_end_", "shape_")
LEVELS = ("window", "seasonal")


def quantile_column(q: float) -> str:
    """Column name of quantile q: 0.1 -> 'p10', 0.975 -> 'p97.5'."""
    return f"p{round(q * 100, 6):g}"


def postprocess_quantiles(raw: np.ndarray, is_open: np.ndarray) -> np.ndarray:
    """Rows of quantile predictions sorted ascending, clipped at 0, closed days 0 (NaN -> 0)."""
    out = np.sort(np.nan_to_num(np.asarray(raw, dtype=float), nan=0.0), axis=1)
    out = np.clip(out, 0.0, None)
    out[~np.asarray(is_open, dtype=bool)] = 0.0
    return out


TARGETS = ("ratio", "log", "raw")
_NO_ADJUSTMENT = {"blend_weight": 1.0, "band_factors": {}, "origins": [], "points": 0,
                  "note": "no adjustment (disabled, or too little history for 2 inner backtest origins)"}


def _to_label(y: np.ndarray, level: np.ndarray, target: str) -> np.ndarray:
    """Training label: y / level (ratio), log((1 + y) / (1 + level)) (log), or y (raw)."""
    if target == "ratio":
        return y / level
    if target == "log":
        return np.log1p(y) - np.log1p(level)
    return y


def _from_label(pred: np.ndarray, level: np.ndarray, target: str) -> np.ndarray:
    """Model output back in units of y (inverse of `_to_label`)."""
    if target == "ratio":
        return pred * level
    if target == "log":
        return np.expm1(pred + np.log1p(level))
    return pred


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


def learn_adjustments(points: pd.DataFrame, quantiles: Sequence[float], blend: bool = True,
                      calibrate: bool = True) -> dict:
    """Blend weight and conformal band factors from backtest points (see module doc).

    `points`: one row per backtest forecast: `y, is_open, baseline` and the model's quantile columns. Only open
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
    factors, n = {}, len(y)
    qcols = [quantile_column(q) for q in sorted(quantiles) if q != 0.5]
    if calibrate and n:
        scale = np.maximum(p50, 1.0)
        for q in (q for q in sorted(quantiles) if q != 0.5):
            col = quantile_column(q)
            shifted = pts[col].to_numpy(dtype=float) - m50 + p50
            score = (shifted - y) / scale if q < 0.5 else (y - shifted) / scale
            factors[col] = round(float(np.quantile(score, 1 - q if q < 0.5 else q)), 6)
    adjusted = _apply(pts, m50, p50, factors, qcols) if n else {}
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


def _apply(raw: pd.DataFrame, m50: np.ndarray, p50: np.ndarray, factors: dict, qcols: Sequence[str]) -> dict:
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
        self._models: dict[tuple[pd.Timestamp, str], QuantileForecaster] = {}
        self.hits = 0
        self.misses = 0
        self.models_reused = 0

    def keep_model(self, origin: pd.Timestamp, settings: str, model: QuantileForecaster) -> None:
        """Remember an unadjusted model trained on every row before `origin`."""
        self._models[(pd.Timestamp(origin), settings)] = model

    def model(self, origin: pd.Timestamp, settings: str) -> QuantileForecaster | None:
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


class QuantileForecaster:
    """One global LightGBM per quantile across series (series id categorical), forecasting recursively."""

    def __init__(self, quantiles: Sequence[float] = (0.1, 0.5, 0.9), params: dict | None = None, seed: int = 42,
                 num_threads: int = 1, target: str = "ratio", lags: Sequence[int] = FEATURE_LAGS,
                 windows: Sequence[int] = ROLLING_WINDOWS, calibrate: bool = True, blend: bool = False,
                 calibration_origins: int = 8, calibration_horizon: int = 14, calibration_step_days: int = 7,
                 level: str = "seasonal", level_half_life: float = SEASONAL_LEVEL_HALF_LIFE) -> None:
        self.quantiles = quantiles
        self.level = level
        self.level_half_life = level_half_life
        self.params = params
        self.seed = seed
        self.num_threads = num_threads
        self.target = target
        self.lags = lags
        self.windows = windows
        self.calibrate = calibrate
        self.blend = blend
        self.calibration_origins = calibration_origins
        self.calibration_horizon = calibration_horizon
        self.calibration_step_days = calibration_step_days

    # ---- training -------------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, holidays: pd.DataFrame, *, exogenous: pd.DataFrame | None = None,
            calibration_cache: CalibrationCache | None = None) -> QuantileForecaster:
        """Train one model per quantile on the open days of `history` after the feature warm-up.

        `calibration_cache`: share inner-backtest forecasts with other fits on the same history (see the class).
        """
        quantiles = self._checked_quantiles()
        lgb_params, rounds = self._lightgbm_params()
        trained = None
        if calibration_cache is not None and len(history):
            trained = calibration_cache.model(pd.Timestamp(history["date"].max()) + pd.Timedelta(days=1),
                                              self._raw_settings())
        if trained is not None:  # the same rows and settings were trained on already: same boosters
            for name in _TRAINED_STATE:
                setattr(self, name, getattr(trained, name))
        else:
            self._train(history, holidays, exogenous, quantiles, lgb_params, rounds)
        self.adjustments_ = _NO_ADJUSTMENT
        if self.calibrate or self.blend:
            self.adjustments_ = self._learn_adjustments(history, holidays, exogenous, calibration_cache)
        return self

    def init_params(self) -> dict:
        """The constructor arguments, JSON-ready: `QuantileForecaster(**m.init_params())` is the same setup, unfitted."""
        return {"quantiles": [float(q) for q in self._checked_quantiles()], "params": self.params, "seed": self.seed,
                "num_threads": self.num_threads, "target": self.target,
                "lags": [int(v) for v in self.lags], "windows": [int(v) for v in self.windows],
                "calibrate": bool(self.calibrate), "blend": bool(self.blend),
                "calibration_origins": int(self.calibration_origins),
                "calibration_horizon": int(self.calibration_horizon),
                "calibration_step_days": int(self.calibration_step_days),
                "level": self.level, "level_half_life": float(self.level_half_life)}

    def _raw_settings(self) -> str:
        """What decides the unadjusted boosters, as text (a CalibrationCache key)."""
        return json.dumps({"quantiles": self._checked_quantiles(), "params": self.params, "seed": self.seed,
                           "num_threads": self.num_threads, "target": self.target, "lags": list(self.lags),
                           "windows": list(self.windows), "level": self.level,
                           "level_half_life": self.level_half_life}, sort_keys=True, default=str)

    def _train(self, history: pd.DataFrame, holidays: pd.DataFrame, exogenous: pd.DataFrame | None,
               quantiles: tuple[float, ...], lgb_params: dict, rounds: int) -> None:
        shape = fit_shape(history) if self.level == "seasonal" else None
        if shape is not None and not shape.yearly:
            # Without a yearly cycle there is no season for a long level to trail: the 28-day window is kept
            # (on the US bank's 7 months a weekday-adjusted long level cost 0.9 points of wMAPE, docs/accuracy.md).
            log.info("seasonal level: history shorter than %d days, no yearly cycle fitted; 28-day level used",
                     MIN_YEARLY_DAYS)
            shape = None
        feats = build_features(history, holidays, self.lags, self.windows, exogenous, shape=shape,
                               level_half_life=self.level_half_life)
        names = feature_columns(feats)
        warm = warmup_days(self.lags, self.windows)
        position = feats.groupby("series", observed=True).cumcount().to_numpy()
        level = feats["level"].to_numpy()
        y = feats["y"].to_numpy()
        rows = (feats["is_open"].to_numpy() == 1) & np.isfinite(y) & (position >= warm)
        if self.target != "raw":
            rows &= np.isfinite(level) & (level > 0)
        n_rows, min_rows = int(rows.sum()), int(lgb_params["min_data_in_leaf"])
        if n_rows < max(min_rows, 1):
            longest = int(position.max()) + 1 if len(position) else 0
            raise DataError(
                f"history too short to train: {n_rows} training rows, need >= {max(min_rows, 1)} "
                f"(min_data_in_leaf); the longest series has {longest} days and the first {warm} days of each "
                f"series are warm-up for lags {list(self.lags)} / rolling windows {list(self.windows)}; "
                "only open days with a known y after that are used"
            )
        train = feats.loc[rows]
        X = self._matrix(train, names)
        label = _to_label(y[rows], level[rows], self.target)
        models = {}
        for q in quantiles:
            params = {**lgb_params, "objective": "quantile", "alpha": q}
            data = lgb.Dataset(X, label=label, feature_name=names, categorical_feature=["series"],
                               params=params, free_raw_data=True)
            models[q] = lgb.train(params, data, num_boost_round=rounds)
        self.models_ = models
        self.quantiles_ = quantiles
        self.feature_names_ = names
        self.categories_ = [str(c) for c in feats["series"].cat.categories]
        self.shape_ = shape
        self.lookback_ = lookback_days(names, seasonal_level=shape is not None)
        self.lightgbm_params_ = {**lgb_params, "num_boost_round": rounds}
        self.n_train_rows_ = n_rows
        self.train_end_ = str(pd.Timestamp(train["date"].max()).date())
        log.info("fit: %d quantile models on %d rows, %d series, %d features, target=%s, level=%s",
                 len(models), n_rows, len(self.categories_), len(names), self.target,
                 "window" if shape is None else f"seasonal (half-life {self.level_half_life:g} days)")

    # ---- forecasting ----------------------------------------------------------------------------
    def forecast(self, history: pd.DataFrame, future: pd.DataFrame, holidays: pd.DataFrame, *,
                 exogenous: pd.DataFrame | None = None) -> pd.DataFrame:
        """Recursive forecast of `future` (calendar rows right after `history`): one row per series per date."""
        self._check_fitted()
        unknown = sorted(set(future["series"].astype("str")) - set(self.categories_))
        if unknown:
            raise DataError(f"forecast: series {unknown} were not in the training data (known: {self.categories_}); "
                            "retrain or forecast them with seasonal naive")

        def make_features(frame: pd.DataFrame) -> pd.DataFrame:
            return build_features(frame, holidays, self.lags, self.windows, exogenous,
                                  feature_names=self.feature_names_, categories=self.categories_,
                                  shape=self.shape_, level_half_life=self.level_half_life)

        raw = recursive_forecast(history, future, make_features, self.predict_features,
                                 self.quantiles_, lookback=self.lookback_)
        return self._adjusted(raw, history, future)

    def predict_features(self, features: pd.DataFrame) -> np.ndarray:
        """Raw predictions in units of y, one column per quantile, for rows of `build_features`."""
        self._check_fitted()
        X = self._matrix(features, self.feature_names_)
        preds = np.column_stack([self.models_[q].predict(X, num_threads=self.num_threads) for q in self.quantiles_])
        if self.target != "raw":
            level = features["level"].to_numpy()
            ok = np.isfinite(level) & (level > 0)
            # no open day with data for 91 days (or all zero): nothing to scale by, forecast 0
            preds = np.where(ok[:, None], _from_label(preds, np.where(ok, level, 0.0)[:, None], self.target), 0.0)
        return preds

    def feature_importance(self) -> pd.DataFrame:
        """One row per quantile per feature: `quantile, feature, gain, splits`."""
        self._check_fitted()
        return pd.DataFrame([
            {"quantile": q, "feature": f, "gain": float(g), "splits": int(s)}
            for q, model in self.models_.items()
            for f, g, s in zip(model.feature_name(), model.feature_importance("gain"),
                               model.feature_importance("split"))
        ])

    # ---- adjustments: blend weight and conformal band factors ----------------------------------
    def _learn_adjustments(self, history: pd.DataFrame, holidays: pd.DataFrame, exogenous: pd.DataFrame | None,
                           cache: CalibrationCache | None = None) -> dict:
        """Inner rolling-origin backtest on `history` (each origin retrained, no adjustment) -> learn_adjustments."""
        hist = history.astype({"series": "str"})
        horizon, step = int(self.calibration_horizon), int(self.calibration_step_days)
        if horizon < 1 or step < 1 or int(self.calibration_origins) < 0:
            raise ConfigError(f"calibration_horizon == {horizon}, calibration_step_days == {step} must be >= 1 and "
                              f"calibration_origins == {self.calibration_origins} >= 0")
        first, last = hist["date"].min(), hist["date"].max()
        need = warmup_days(self.lags, self.windows) + 28
        origins = sorted(o for o in (last - pd.Timedelta(days=horizon - 1 + k * step)
                                     for k in range(int(self.calibration_origins))) if (o - first).days >= need)
        inner = {**self.init_params(), "calibrate": False, "blend": False}
        settings = json.dumps({**inner, "horizon": horizon}, sort_keys=True, default=str)

        def inner_points(origin: pd.Timestamp) -> pd.DataFrame | None:
            train = hist.loc[hist["date"] < origin]
            actual = hist.loc[(hist["date"] >= origin) & (hist["date"] < origin + pd.Timedelta(days=horizon))]
            try:
                model = QuantileForecaster(**inner).fit(train, holidays, exogenous=exogenous)
            except DataError as exc:  # too few rows before this origin: later origins may still work
                log.info("calibration origin %s skipped: %s", origin.date(), exc)
                return None
            if cache is not None:
                cache.keep_model(origin, model._raw_settings(), model)
            known = set(model.categories_)
            actual = actual.loc[actual["series"].isin(known)]
            fc = model.forecast(train.loc[train["series"].isin(known)], actual.drop(columns="y"), holidays,
                                exogenous=exogenous)
            fc = fc.assign(baseline=same_weekday_mean(train, fc))
            return fc.merge(actual.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"])

        parts, used = [], []
        for origin in origins:
            part = (inner_points(origin) if cache is None
                    else cache.points(origin, settings, lambda o=origin: inner_points(o)))
            if part is not None:
                parts.append(part)
                used.append(str(origin.date()))
        if len(parts) < 2:
            log.info("calibration: %d usable inner origins (need 2): no blend, no band calibration", len(parts))
            return {**_NO_ADJUSTMENT, "origins": used}
        learnt = learn_adjustments(pd.concat(parts, ignore_index=True), self.quantiles_, self.blend, self.calibrate)
        log.info("calibration on %d inner origins, %d points: blend weight %.2f, band factors %s, p-band coverage "
                 "%s -> %s", len(used), learnt["points"], learnt["blend_weight"], learnt["band_factors"],
                 learnt["coverage_raw"], learnt["coverage_adjusted"])
        return {**learnt, "origins": used, "note": ""}

    def _adjusted(self, raw: pd.DataFrame, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """The raw recursive forecast with the stored blend and band factors applied (same grain)."""
        weight = float(self.adjustments_.get("blend_weight", 1.0))
        factors = dict(self.adjustments_.get("band_factors") or {})
        if weight == 1.0 and not factors:
            return raw
        m50 = raw["p50"].to_numpy(dtype=float)
        base = same_weekday_mean(history, raw) if weight != 1.0 else m50
        p50 = np.where(np.isfinite(base), weight * m50 + (1 - weight) * base, m50)
        qcols = [quantile_column(q) for q in self.quantiles_]
        outer = _apply(raw, m50, p50, factors, [c for c in qcols if c != "p50"])
        values = np.column_stack([p50 if c == "p50" else outer[c] for c in qcols])
        is_open = raw.loc[:, ["series", "date"]].merge(
            future.loc[:, ["series", "date", "is_open"]].astype({"series": "str"}), on=["series", "date"],
            how="left")["is_open"].fillna(False).to_numpy(dtype=bool)
        return raw.assign(**{c: v for c, v in zip(qcols, postprocess_quantiles(values, is_open).T)})

    # ---- artifacts ------------------------------------------------------------------------------
    def to_files(self, directory: Path) -> list[Path]:
        """Write one LightGBM text model per quantile (`model_p10.txt`, ...) and `meta.json`; return the paths."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for q, model in self.models_.items():
            path = directory / f"model_{quantile_column(q)}.txt"
            path.write_bytes(model.model_to_string().encode("utf-8"))
            paths.append(path)
        meta = {
            "format_version": _FORMAT_VERSION,
            "init": self.init_params(),
            "seasonal_shape": None if self.shape_ is None else self.shape_.to_dict(),
            "adjustments": self.adjustments_,
            "feature_names": self.feature_names_, "categories": self.categories_,
            "lightgbm_params": self.lightgbm_params_, "lookback_days": self.lookback_,
            "n_train_rows": self.n_train_rows_, "train_end": self.train_end_,
            "model_files": {quantile_column(q): p.name for q, p in zip(self.models_, paths)},
        }
        meta_path = directory / _META_FILE
        meta_path.write_bytes((json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        return [*paths, meta_path]

    @classmethod
    def from_files(cls, directory: Path) -> QuantileForecaster:
        """Load a forecaster written by `to_files`; ModelError if a file is missing or unreadable."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / _META_FILE).read_text(encoding="utf-8"))
            model = cls(**{"level": "window", **meta["init"]})  # models from before the seasonal level
            model.quantiles_ = tuple(float(q) for q in meta["init"]["quantiles"])
            model.models_ = {
                q: lgb.Booster(model_str=(directory / meta["model_files"][quantile_column(q)]).read_text("utf-8"))
                for q in model.quantiles_
            }
            shape = meta.get("seasonal_shape")  # format 2 models before the seasonal level had none
            model.shape_ = None if shape is None else SeasonalShape.from_dict(shape)
        except (OSError, KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ModelError(f"cannot load model from {directory}: {exc}") from exc
        model.feature_names_ = list(meta["feature_names"])
        model.categories_ = list(meta["categories"])
        model.lookback_ = int(meta["lookback_days"])
        model.lightgbm_params_ = meta["lightgbm_params"]
        model.n_train_rows_ = int(meta["n_train_rows"])
        model.train_end_ = meta["train_end"]
        model.adjustments_ = meta.get("adjustments") or _NO_ADJUSTMENT  # format 1 models had none
        if any(m.feature_name() != model.feature_names_ for m in model.models_.values()):
            raise ModelError(f"cannot load model from {directory}: model files and meta.json disagree on features")
        return model

    # ---- helpers --------------------------------------------------------------------------------
    def _checked_quantiles(self) -> tuple[float, ...]:
        qs = tuple(sorted(float(q) for q in self.quantiles))
        if not qs or any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs) or 0.5 not in qs:
            raise ConfigError(f"forecast.quantiles == {list(self.quantiles)}, must be distinct values in (0, 1) "
                              "including 0.5 (the recursion feeds the median forward)")
        if self.level not in LEVELS:
            raise ConfigError(f"forecaster level == {self.level!r}, must be one of {', '.join(LEVELS)}")
        if self.target not in TARGETS:
            raise ConfigError(f"forecaster target == {self.target!r}, must be one of {', '.join(TARGETS)}")
        return qs

    def _lightgbm_params(self) -> tuple[dict, int]:
        params = {**DEFAULT_PARAMS, **(self.params or {})}
        rounds = int(DEFAULT_PARAMS["n_estimators"])
        for alias in _ROUNDS_ALIASES:
            if alias in params:
                rounds = int(params.pop(alias))
        if rounds < 1:
            raise ConfigError(f"model params n_estimators == {rounds}, must be >= 1")
        # determinism: same data + params -> byte-identical model text
        params.update(seed=self.seed, deterministic=True, num_threads=self.num_threads,
                      force_row_wise=True, verbosity=-1)
        return params, rounds

    def _matrix(self, feats: pd.DataFrame, names: list[str]) -> np.ndarray:
        codes = feats["series"].cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
        X = np.column_stack([codes if n == "series" else feats[n].to_numpy(dtype=float) for n in names])
        if self.target != "raw":
            scaled = [names.index(n) for n in y_unit_features(names)]
            level = feats["level"].to_numpy(dtype=float)
            ok = np.isfinite(level) & (level > 0)
            X[:, scaled] = np.divide(X[:, scaled], level[:, None], out=np.full((len(X), len(scaled)), np.nan),
                                     where=ok[:, None])
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise ModelError("QuantileForecaster is not fitted: call fit() or from_files() first")


def recursive_forecast(
    history: pd.DataFrame,
    future: pd.DataFrame,
    make_features: Callable[[pd.DataFrame], pd.DataFrame],
    predict: Callable[[pd.DataFrame], np.ndarray],
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    lookback: int | None = None,
) -> pd.DataFrame:
    """Forecast `future` day by day; each day's post-processed median becomes y for the next days' features.

    `make_features(frame) -> build_features result`; `predict(feature rows) -> (n, len(quantiles))` raw values.
    `lookback=None` rebuilds features on the whole history every day (the plain oracle); an int rebuilds
    only the last `lookback` days before the day being forecast, which gives the same numbers when
    `lookback` covers the longest lag/window. Grain: one row per series per future date.
    """
    quantiles = tuple(sorted(quantiles))
    median = quantiles.index(0.5)
    last = _check_future(history, future)
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
        out.append(pd.DataFrame({"series": names, "date": rows["date"].to_numpy(),
                                 **{quantile_column(q): values[:, i] for i, q in enumerate(quantiles)}}))
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        {"series": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
         **{quantile_column(q): pd.Series(dtype=float) for q in quantiles}})
    return _with_horizon(result, last)


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
    last = _check_future(history, future)
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
    return _with_horizon(result, last)


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


def _check_future(history: pd.DataFrame, future: pd.DataFrame) -> dict[str, pd.Timestamp]:
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


def _with_horizon(forecast: pd.DataFrame, last: dict[str, pd.Timestamp]) -> pd.DataFrame:
    origin_end = forecast["series"].map(last)
    horizon = ((forecast["date"] - origin_end) // pd.Timedelta(days=1)).astype(int)
    cols = [c for c in forecast.columns if c not in ("series", "date")]
    out = forecast.assign(horizon_day=horizon).loc[:, ["series", "date", "horizon_day", *cols]]
    return out.sort_values(["series", "date"], kind="stable").reset_index(drop=True)

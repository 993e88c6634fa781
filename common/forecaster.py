"""Quantile LightGBM forecaster: one global model per quantile across series, forecasting recursively.

`QuantileForecaster` follows scikit-learn's contract: `__init__` stores parameters only, `fit` sets the learned state
(`models_`, `feature_names_`, `adjustments_`, ...), and `to_files` / `from_files` store it. Its forecast is the frame
of `forecast_frame` (one row per series per future date), filled by `forecast_frame.recursive_forecast`. After
fitting it runs an inner rolling-origin backtest on its own history and learns conformal band factors (and,
optionally, a blend weight) from it: the arithmetic and the cache of inner fits are `calibration`; the same-weekday
mean it blends with is in `baselines`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from common import ensemble
from common.baselines import same_weekday_mean
from common.calibration import NO_ADJUSTMENT, CalibrationCache, apply_band_factors, learn_adjustments
from common.errors import ConfigError, DataError, ModelError
from common.features import (
    FEATURE_LAGS, ROLLING_WINDOWS, SEASONAL_LEVEL_HALF_LIFE, build_features, feature_columns, lookback_days,
    warmup_days, y_unit_features,
)
from common.forecast_frame import postprocess_quantiles, quantile_column, recursive_forecast
from common.seasonality import MIN_YEARLY_DAYS, fit_shape

log = logging.getLogger(__name__)

DEFAULT_PARAMS = {
    "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 10,
    "feature_fraction": 0.9, "lambda_l2": 1.0, "max_bin": 255,
}
_ROUNDS_ALIASES = ("n_estimators", "num_iterations", "num_iteration", "num_boost_round", "num_trees",
                   "num_rounds", "num_round", "n_iter", "nrounds", "max_iter")
# What `_train` sets: a model adopted from a CalibrationCache takes exactly these from the one trained before.
_TRAINED_STATE = ("models_", "quantiles_", "feature_names_", "categories_", "lookback_", "lightgbm_params_",
                  "n_train_rows_", "train_end_", "shape_", "linear_")
LEVELS = ("window", "seasonal")
TARGETS = ("ratio", "log", "raw")


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


class QuantileForecaster:
    """One global LightGBM per quantile across series (series id categorical), forecasting recursively."""

    def __init__(self, quantiles: Sequence[float] = (0.1, 0.5, 0.9), params: dict | None = None, seed: int = 42,
                 num_threads: int = 1, target: str = "ratio", lags: Sequence[int] = FEATURE_LAGS,
                 windows: Sequence[int] = ROLLING_WINDOWS, calibrate: bool = True, blend: bool = False,
                 calibration_origins: int = 8, calibration_horizon: int = 14, calibration_step_days: int = 7,
                 level: str = "seasonal", level_half_life: float = SEASONAL_LEVEL_HALF_LIFE,
                 ensemble: bool = False, ensemble_shrink_origins: float = ensemble.SHRINK_ORIGINS,
                 ensemble_half_life_origins: float = ensemble.HALF_LIFE_ORIGINS,
                 ensemble_members: Sequence[str] = ensemble.MEMBERS, ensemble_prior: str = ensemble.PRIOR,
                 ensemble_min_gain: float = ensemble.MIN_GAIN) -> None:
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
        self.ensemble = ensemble
        self.ensemble_shrink_origins = ensemble_shrink_origins
        self.ensemble_half_life_origins = ensemble_half_life_origins
        self.ensemble_members = ensemble_members
        self.ensemble_prior = ensemble_prior
        self.ensemble_min_gain = ensemble_min_gain

    # ---- training -------------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, holidays: pd.DataFrame, *, exogenous: pd.DataFrame | None = None,
            calibration_cache: CalibrationCache | None = None, vendor: pd.DataFrame | None = None,
            adjust: bool = True) -> QuantileForecaster:
        """Train one model per quantile on the open days of `history` after the feature warm-up.

        `calibration_cache`: share inner-backtest forecasts with other fits on the same history (see the class).
        `vendor`: the WFM tool's forecasts (series, date, forecast, issued_at), an ensemble member as issued before
        each inner origin. `adjust=False`: the raw models only (no inner backtest: the inner fits themselves).
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
        self.adjustments_ = NO_ADJUSTMENT
        if adjust and (self.calibrate or self.blend or self.ensemble):
            self.adjustments_ = self._learn_adjustments(history, holidays, exogenous, calibration_cache, vendor)
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
                "level": self.level, "level_half_life": float(self.level_half_life),
                "ensemble": bool(self.ensemble), "ensemble_shrink_origins": float(self.ensemble_shrink_origins),
                "ensemble_half_life_origins": float(self.ensemble_half_life_origins),
                "ensemble_members": list(self.ensemble_members), "ensemble_prior": self.ensemble_prior,
                "ensemble_min_gain": float(self.ensemble_min_gain)}

    def _raw_settings(self) -> str:
        """What decides the unadjusted boosters, as text (a CalibrationCache key)."""
        return json.dumps({"quantiles": self._checked_quantiles(), "params": self.params, "seed": self.seed,
                           "num_threads": self.num_threads, "target": self.target, "lags": list(self.lags),
                           "windows": list(self.windows), "level": self.level,
                           "level_half_life": self.level_half_life, "linear": self._fits_linear()},
                          sort_keys=True, default=str)

    def _train(self, history: pd.DataFrame, holidays: pd.DataFrame, exogenous: pd.DataFrame | None,
               quantiles: tuple[float, ...], lgb_params: dict, rounds: int) -> None:
        import lightgbm as lgb  # on use: a step's --help must not wait for LightGBM to load
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
        self.linear_ = None
        if self._fits_linear():
            self.linear_ = ensemble.LinearMember().fit(
                X, train["series"].cat.codes.to_numpy(), train["date"].dt.day_of_week.to_numpy(), label,
                len(feats["series"].cat.categories))
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
                 exogenous: pd.DataFrame | None = None, vendor: pd.DataFrame | None = None) -> pd.DataFrame:
        """Recursive forecast of `future` (calendar rows right after `history`): one row per series per date.

        With the ensemble the frame also has `member_<name>` columns (each member's p50) and p50 is their weighted
        mean; `vendor` (series, date, forecast, issued_at) is read as issued before the first future date."""
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
                                 self.quantiles_, lookback=self.lookback_,
                                 members=self._linear_member if getattr(self, "linear_", None) else None)
        if self.ensemble:
            raw = ensemble.add_members(raw.assign(**{ensemble.member_column("lightgbm"): raw["p50"]}), history,
                                       future, vendor)
        return self._adjusted(raw, history, future)

    def _linear_member(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        X = self._matrix(features, self.feature_names_)
        pred = self.linear_.predict(X, features["series"].cat.codes.to_numpy(),
                                    features["date"].dt.day_of_week.to_numpy())
        if self.target != "raw":
            level = features["level"].to_numpy()
            ok = np.isfinite(level) & (level > 0)
            pred = np.where(ok, _from_label(pred, np.where(ok, level, 0.0), self.target), 0.0)
        return {ensemble.member_column("linear"): pred}

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
                           cache: CalibrationCache | None = None, vendor: pd.DataFrame | None = None) -> dict:
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
        # The vendor member is added per call (as issued before each origin), so cached points never hold it.
        settings = json.dumps({**inner, "horizon": horizon}, sort_keys=True, default=str)

        def inner_points(origin: pd.Timestamp) -> pd.DataFrame | None:
            train = hist.loc[hist["date"] < origin]
            actual = hist.loc[(hist["date"] >= origin) & (hist["date"] < origin + pd.Timedelta(days=horizon))]
            try:
                model = QuantileForecaster(**inner).fit(train, holidays, exogenous=exogenous, adjust=False)
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
                if self.ensemble and vendor is not None:
                    part = ensemble.with_vendor(part, vendor, origin)
                parts.append(part.assign(origin=origin))
                used.append(str(origin.date()))
        if len(parts) < 2:
            log.info("calibration: %d usable inner origins (need 2): no blend, no band calibration", len(parts))
            return {**NO_ADJUSTMENT, "origins": used}
        points = pd.concat(parts, ignore_index=True)
        weights = None
        if self.ensemble:
            unused = [ensemble.member_column(m) for m in ensemble.MEMBERS if m not in self._members()]
            weights = ensemble.learn_weights(points.drop(columns=unused, errors="ignore"), self.ensemble_shrink_origins,
                                             self.ensemble_half_life_origins, prior=self.ensemble_prior,
                                             min_gain=self.ensemble_min_gain)
            points = points.assign(combined=ensemble.combine(points, weights))
            log.info("ensemble weights on %d inner origins:\n%s", len(parts), ensemble.format_weights(weights))
        learnt = learn_adjustments(points, self.quantiles_, self.blend and not self.ensemble, self.calibrate)
        if weights is not None:
            learnt["ensemble"] = weights
        log.info("calibration on %d inner origins, %d points: blend weight %.2f, band factors %s, p-band coverage "
                 "%s -> %s", len(used), learnt["points"], learnt["blend_weight"], learnt["band_factors"],
                 learnt["coverage_raw"], learnt["coverage_adjusted"])
        return {**learnt, "origins": used, "note": ""}

    def _adjusted(self, raw: pd.DataFrame, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """The raw recursive forecast with the stored blend and band factors applied (same grain)."""
        weight = float(self.adjustments_.get("blend_weight", 1.0))
        factors = dict(self.adjustments_.get("band_factors") or {})
        weights = self.adjustments_.get("ensemble")
        if weight == 1.0 and not factors and not weights:
            return raw
        m50 = raw["p50"].to_numpy(dtype=float)
        if weights:
            p50 = ensemble.combine(raw, weights)
        else:
            base = same_weekday_mean(history, raw) if weight != 1.0 else m50
            p50 = np.where(np.isfinite(base), weight * m50 + (1 - weight) * base, m50)
        qcols = [quantile_column(q) for q in self.quantiles_]
        outer = apply_band_factors(raw, m50, p50, factors, [c for c in qcols if c != "p50"])
        values = np.column_stack([p50 if c == "p50" else outer[c] for c in qcols])
        is_open = raw.loc[:, ["series", "date"]].merge(
            future.loc[:, ["series", "date", "is_open"]].astype({"series": "str"}), on=["series", "date"],
            how="left")["is_open"].fillna(False).to_numpy(dtype=bool)
        return raw.assign(**{c: v for c, v in zip(qcols, postprocess_quantiles(values, is_open).T)})

    # ---- artifacts ------------------------------------------------------------------------------
    def to_files(self, directory: Path) -> list[Path]:
        """Write one LightGBM text model per quantile (`model_p10.txt`, ...) and `meta.json`; return the paths."""
        from common.forecaster_files import write_model

        self._check_fitted()
        return write_model(self, Path(directory))

    @classmethod
    def from_files(cls, directory: Path) -> QuantileForecaster:
        """Load a forecaster written by `to_files`; ModelError if a file is missing or unreadable."""
        from common.forecaster_files import read_model

        return read_model(cls, Path(directory))

    # ---- helpers --------------------------------------------------------------------------------
    def _members(self) -> tuple[str, ...]:
        unknown = sorted(set(self.ensemble_members) - set(ensemble.MEMBERS))
        if unknown:
            raise ConfigError(f"training.ensemble_members has unknown member(s) {unknown}; choose from "
                              f"{', '.join(ensemble.MEMBERS)}")
        return tuple(m for m in ensemble.MEMBERS if m in self.ensemble_members or m == "lightgbm")

    def _fits_linear(self) -> bool:
        return bool(self.ensemble) and "linear" in self._members()

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

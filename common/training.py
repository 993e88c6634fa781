"""Step 2's logic: training history from silver, the rolling-origin backtest, its metrics, the version.

The backtest replays the real nightly forecast: at each origin O (a week apart,
the latest one's horizon ending on the last known day) a model trained on
dates < O forecasts O .. O+H-1 recursively. Three methods are scored on the
same points: the candidate (`candidate`), weekly seasonal naive
(`seasonal_naive`) and the production model's *setup* (`production`): its
constructor arguments and drivers, retrained at every origin exactly like the
candidate. The fitted production model itself is never scored: it was usually
trained after the origins, so it has seen those days and its score would be
in-sample. Identical setups give identical models, so production's rows are
then the candidate's (not fitted twice).
Every metric is on open days (y > 0), as in `common.metrics`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import metadata

import numpy as np
import pandas as pd
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from common import db, tables
from common.baselines import seasonal_naive_forecast
from common.calibration import CalibrationCache
from common.config import safe_identifier
from common.config_schema import TrainingConfig
from common.errors import ConfigError, DataError, PipelineError
from common.features import exogenous_features
from common.forecast_frame import quantile_column
from common.forecaster import QuantileForecaster
from common.metrics import accuracy_table, open_mask, pinball_loss

log = logging.getLogger(__name__)

SILVER_COLUMNS = ("queue", "date", "offered", "is_open", "is_holiday")
CANDIDATE, NAIVE, PRODUCTION = "candidate", "seasonal_naive", "production"
METRIC_COLUMNS = ("n_points", "wmape", "mae", "rmse", "bias", "total_volume_error", "pinball", "coverage", "mape", "mase")


# --- inputs ----------------------------------------------------------------------------------------------

def read_daily_history(conn: Connection, as_of: date) -> pd.DataFrame:
    """Daily history known on `as_of`: one row per queue per date < as_of: series, date, y, is_open, is_holiday."""
    t = tables.silver_daily
    raw = db.read_table(conn, t, where=t.c.date < as_of, columns=SILVER_COLUMNS)
    frame = pd.DataFrame({
        "series": raw["queue"].astype("str"), "date": raw["date"].astype("datetime64[ns]"),
        "y": raw["offered"].astype(float), "is_open": raw["is_open"].astype(bool),
        "is_holiday": raw["is_holiday"].astype(bool),
    })
    return frame.sort_values(["series", "date"], kind="stable").reset_index(drop=True)


def read_exogenous(conn: Connection, table_name: str, before: date) -> pd.DataFrame:
    """Daily drivers from `training.exogenous_table`, dates < `before`: one row per date [per series].

    The table is found by reflection (it is the user's, not declared in
    `tables.py`); a `queue` column is the series key. Columns: date[, series], numeric drivers.
    """
    name = safe_identifier(table_name, "training.exogenous_table")
    try:
        table = Table(name, MetaData(), autoload_with=conn)
    except NoSuchTableError:
        raise ConfigError(f"training.exogenous_table: table {name!r} does not exist in the database") from None
    if "date" not in table.c:
        raise DataError(f"training.exogenous_table {name!r} has no 'date' column; it needs date[, queue], "
                        f"numeric columns (has: {', '.join(table.c.keys())})")
    frame = db.read_table(conn, table, where=table.c.date < before)
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.normalize().astype("datetime64[ns]"))
    if "queue" in frame.columns:
        if "series" in frame.columns:
            raise DataError(f"training.exogenous_table {name!r} has both 'queue' and 'series'; keep one as the key")
        frame = frame.rename(columns={"queue": "series"})
    keys = ["series", "date"] if "series" in frame.columns else ["date"]
    if "series" in keys:
        frame = frame.astype({"series": "str"})
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def split_by_history(history: pd.DataFrame, min_open_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history of series with >= `min_open_days` open days, one row per left-out series: series, open_days)."""
    open_days = history.groupby("series")["is_open"].sum().astype(int)
    short = open_days[open_days < min_open_days]
    kept = history.loc[~history["series"].isin(short.index)].reset_index(drop=True)
    return kept, short.rename("open_days").rename_axis("series").reset_index()


def make_forecaster(training: TrainingConfig, quantiles: Sequence[float], horizon: int = 14) -> QuantileForecaster:
    """An unfitted forecaster with the configured quantiles, LightGBM params over the defaults, seed and threads,
    target, and band calibration on `training.calibration_origins` inner origins of `horizon` days."""
    return QuantileForecaster(quantiles=tuple(quantiles), params=dict(training.params), seed=training.seed,
                              num_threads=training.num_threads, target=training.target,
                              level=training.level, level_half_life=training.level_half_life_days,
                              calibrate=training.calibration_origins > 0,
                              calibration_origins=training.calibration_origins, calibration_horizon=horizon,
                              calibration_step_days=training.backtest_step_days,
                              ensemble=training.ensemble, ensemble_shrink_origins=training.ensemble_shrink_origins,
                              ensemble_half_life_origins=training.ensemble_half_life_origins,
                              ensemble_members=tuple(training.ensemble_members),
                              ensemble_prior=training.ensemble_prior, ensemble_min_gain=training.ensemble_min_gain)


# --- identity: data hash and version ---------------------------------------------------------------------

def data_hash(*frames: pd.DataFrame | None) -> str:
    """sha256 over the frames' column names and values, in row order (the caller sorts them); None is skipped."""
    digest = hashlib.sha256()
    for i, frame in enumerate(frames):
        if frame is None:
            continue
        digest.update(f"frame {i}: {len(frame)} rows\n".encode())
        for col in frame.columns:
            s = frame[col]
            digest.update(f"column {col}\n".encode())
            if pd.api.types.is_datetime64_any_dtype(s):
                digest.update(s.to_numpy().astype("datetime64[s]").astype(np.int64).tobytes())
            elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                digest.update(s.to_numpy(dtype=float, na_value=np.nan).tobytes())
            else:
                digest.update("\x1f".join(s.astype("str").fillna("\x00").tolist()).encode())
    return digest.hexdigest()


def model_params(model: QuantileForecaster) -> dict:
    """Everything besides the data that decides a fitted model's bytes (LightGBM version included)."""
    return {
        "lightgbm": dict(sorted(model.lightgbm_params_.items())), "quantiles": [float(q) for q in model.quantiles_],
        "target": model.target, "lags": [int(v) for v in model.lags], "windows": [int(v) for v in model.windows],
        "level": model.level, "level_half_life": float(model.level_half_life),
        "adjustments": {"calibrate": bool(model.calibrate), "blend": bool(model.blend),
                        "origins": int(model.calibration_origins), "horizon": int(model.calibration_horizon),
                        "step_days": int(model.calibration_step_days), "ensemble": bool(model.ensemble),
                        "ensemble_shrink_origins": float(model.ensemble_shrink_origins),
                        "ensemble_half_life_origins": float(model.ensemble_half_life_origins),
                        "ensemble_members": list(model.ensemble_members), "ensemble_prior": model.ensemble_prior,
                        "ensemble_min_gain": float(model.ensemble_min_gain)},
        "lightgbm_version": metadata.version("lightgbm"),
    }


def model_version(as_of: date, data_hash_hex: str, params: dict) -> str:
    """`v<as-of yyyymmdd>-<8 hex of sha256(data hash + params)>`: the same data and config give the same version."""
    text = data_hash_hex + json.dumps(params, sort_keys=True, default=str)
    return f"v{as_of:%Y%m%d}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def library_versions() -> dict[str, str]:
    """Versions that produced an artifact, for the record."""
    return {"python": platform.python_version(), "lightgbm": metadata.version("lightgbm"), "numpy": np.__version__,
            "pandas": pd.__version__}


# --- backtest --------------------------------------------------------------------------------------------

class NotEnoughHistory(DataError):
    """Too little history to train and backtest yet: step 2 skips, step 3 uses seasonal naive."""


def backtest_origins(first: pd.Timestamp, last: pd.Timestamp, count: int, horizon: int, step_days: int,
                     min_train_days: int = 1) -> list[pd.Timestamp]:
    """Origins, oldest first: the latest one's horizon ends on `last`, earlier ones step back `step_days`.

    NotEnoughHistory when the earliest origin has fewer than `min_train_days` days of history before it.
    """
    origins = [last - pd.Timedelta(days=horizon - 1 + k * step_days) for k in range(count - 1, -1, -1)]
    have = (origins[0] - first).days
    if have < min_train_days:
        raise NotEnoughHistory(
            f"training.backtest_origins == {count} (step {step_days} days, horizon {horizon}): the earliest origin "
            f"{origins[0].date()} has {max(have, 0)} days of history since {first.date()}, needs >= {min_train_days} "
            "(feature warm-up + 4 weeks); lower training.backtest_origins or wait for more history")
    return origins


def driver_columns(exogenous: pd.DataFrame | None) -> list[str]:
    """The driver columns of an exogenous frame (every column but the `series` / `date` keys), in frame order."""
    return [] if exogenous is None else [c for c in exogenous.columns if c not in ("series", "date")]


@dataclass(frozen=True)
class ProductionSetup:
    """The production model's setup, to retrain at every backtest origin like the candidate (see module doc)."""

    version: str
    init_params: dict                   # QuantileForecaster(**init_params) is the setup, unfitted
    exogenous_columns: tuple[str, ...]  # the drivers it was trained with
    changes: dict                       # {name: [production's, candidate's]} where the setups differ; {} = identical

    @property
    def same_as_candidate(self) -> bool:
        return not self.changes

    def make_model(self) -> QuantileForecaster:
        return QuantileForecaster(**self.init_params)


def production_setup(version: str, production: QuantileForecaster, candidate: QuantileForecaster,
                     exogenous: pd.DataFrame | None) -> ProductionSetup:
    """The setup `production` was trained with, compared with the candidate's (`candidate` may be unfitted).

    Its constructor arguments, with the candidate's `num_threads` (threads are speed, not setup), and the drivers
    among its features. DataError when one of those drivers is not in `exogenous`: the setup cannot be rebuilt.
    """
    init = {**production.init_params(), "num_threads": candidate.num_threads}
    drivers = exogenous_features(production.feature_names_)
    missing = [c for c in drivers if c not in driver_columns(exogenous)]
    if missing:
        raise DataError(f"production {version} was trained with the drivers {missing}, which the exogenous table "
                        "(training.exogenous_table) no longer has: its setup cannot be retrained on the backtest "
                        "origins")
    ours = candidate.init_params()
    changes = {k: [init.get(k), ours.get(k)] for k in sorted(set(init) | set(ours)) if init.get(k) != ours.get(k)}
    if drivers != driver_columns(exogenous):
        changes["exogenous_columns"] = [drivers, driver_columns(exogenous)]
    return ProductionSetup(version, init, tuple(drivers), changes)


@dataclass(frozen=True)
class BacktestResult:
    """The backtest's forecasts, why production's setup stopped (if it did), and which model forecast each origin.

    `frame`: one row per method per origin per series per date (see `rolling_backtest`).
    `models`: one row per model-based method per origin: `method, origin, train_end` (the last day its model was
    trained on, always before the origin).
    """

    frame: pd.DataFrame
    production_error: str | None = None
    models: pd.DataFrame | None = None


def rolling_backtest(history: pd.DataFrame, holidays: pd.DataFrame, make_model: Callable[[], QuantileForecaster],
                     origins: Sequence[pd.Timestamp], horizon: int, retrain: bool = True,
                     exogenous: pd.DataFrame | None = None, production: ProductionSetup | None = None,
                     calibration_cache: CalibrationCache | None = None,
                     vendor: pd.DataFrame | None = None) -> BacktestResult:
    """Backtest the recursive forecast at each origin for the candidate, seasonal naive and production's setup.

    Grain of `frame`: one row per method per origin per series per date:
    `method, origin, series, date, horizon_day, y, is_open, p10, p50, p90`.
    The candidate and production's setup are each trained on dates < origin
    (once, on the dates before the earliest origin, when `retrain` is False)
    and forecast the same points. A PipelineError from production's setup
    stops its scoring with the reason, the rest goes on. `calibration_cache`
    is handed to every candidate fit, and to production's when it sees the same drivers. `vendor`: the vendor's
    forecasts, each origin reading only the issues before it.
    """
    quantiles = tuple(sorted(make_model().quantiles))
    hist = history.astype({"series": "str"})
    setups = {CANDIDATE: (make_model, exogenous, calibration_cache)}
    if production is not None and not production.same_as_candidate:
        drivers = _drivers(exogenous, production.exogenous_columns)
        # The cache knows the settings, not the data: other drivers make other models, so they get their own cache.
        shared = calibration_cache if calibration_cache is not None and drivers is exogenous else CalibrationCache()
        setups[PRODUCTION] = (production.make_model, drivers, shared)
    fitted: dict[str, tuple[pd.Timestamp, QuantileForecaster]] = {}
    prod_error, parts, models = None, [], []
    # Latest origin first: a model's inner calibration origins are the earlier backtest origins, so production's
    # setup (which has no final fit to borrow from) adopts those models from its cache instead of fitting them again.
    for origin in sorted(origins, reverse=True):
        train_until = origin if retrain else min(origins)
        train = hist.loc[hist["date"] < origin]
        actual = hist.loc[(hist["date"] >= origin) & (hist["date"] < origin + pd.Timedelta(days=horizon))]
        actual = actual.loc[actual["series"].isin(set(train["series"]))]
        future = actual.drop(columns="y")
        forecasts = {NAIVE: seasonal_naive_forecast(train, future, quantiles)}
        for method, (make, drivers, cache) in setups.items():
            if method == PRODUCTION and prod_error is not None:
                continue
            try:
                done = fitted.get(method)
                if done is None or done[0] != train_until:
                    done = fitted[method] = (train_until, make().fit(hist.loc[hist["date"] < train_until], holidays,
                                                                     exogenous=drivers, calibration_cache=cache,
                                                                     vendor=vendor))
                model = done[1]
                forecasts[method] = model.forecast(train, future, holidays, exogenous=drivers, vendor=vendor)
            except PipelineError as exc:
                if method == CANDIDATE:
                    raise
                prod_error = f"production {production.version}'s setup could not be backtested: {exc}"
                log.warning("backtest: %s", prod_error)
                continue
            models.append({"method": method, "origin": origin, "train_end": model.train_end_})
        if production is not None and production.same_as_candidate:
            forecasts[PRODUCTION] = forecasts[CANDIDATE]  # the same setup: the same models, the same forecasts
            models.append({**models[-1], "method": PRODUCTION})  # models[-1]: the candidate's, just fitted
        for method, fc in forecasts.items():
            fc = fc.merge(actual.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"], how="left")
            parts.append(fc.assign(origin=origin, method=method))
        log.info("backtest origin %s: %d series x %d days, methods %s", origin.date(), actual["series"].nunique(),
                 horizon, ", ".join(forecasts))
    cols = ["method", "origin", "series", "date", "horizon_day", "y", "is_open", *map(quantile_column, quantiles)]
    frame = pd.concat(parts, ignore_index=True).loc[:, cols]
    trained = pd.DataFrame(models, columns=["method", "origin", "train_end"])
    if prod_error is not None:
        frame = frame.loc[frame["method"] != PRODUCTION]
        trained = trained.loc[trained["method"] != PRODUCTION]
    frame = frame.sort_values(["method", "origin", "series", "date"], kind="stable").reset_index(drop=True)
    trained = trained.sort_values(["method", "origin"], kind="stable").reset_index(drop=True)
    return BacktestResult(frame, prod_error, trained)


def _drivers(exogenous: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame | None:
    """`exogenous` with only the driver `columns` (the same frame when that is all of them; None for none)."""
    if not columns:
        return None
    if list(columns) == driver_columns(exogenous):
        return exogenous
    return exogenous.loc[:, [*(k for k in ("series", "date") if k in exogenous.columns), *columns]]


# --- metrics ---------------------------------------------------------------------------------------------

def accuracy_summary(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per group of `by`: `accuracy_table`'s metrics plus `pinball_p10`, `pinball_p50`, ... per quantile."""
    table = accuracy_table(frame, by)
    qcols = sorted((c for c in frame.columns if c.startswith("p") and c[1:].replace(".", "").isdigit()),
                   key=lambda c: float(c[1:]))
    groups = frame.groupby(by, sort=True, observed=True, dropna=False) if by else [((), frame)]
    extra = []
    for _, group in groups:
        m = open_mask(group)
        y = group["y"].to_numpy(dtype=float)[m]
        extra.append({f"pinball_{c}": pinball_loss(y, group[c].to_numpy(dtype=float)[m], float(c[1:]) / 100)
                      for c in qcols})
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(extra, index=table.index)], axis=1)


def _records(summary: pd.DataFrame, keys: list[str]) -> dict:
    """Nested dict {key1: {key2: {metric: value}}} of an `accuracy_summary` frame (6 decimals, NaN -> None)."""
    out: dict = {}
    metrics = [c for c in summary.columns if c not in keys]
    for row in summary.itertuples(index=False):
        values = row._asdict()
        node = out
        for k in keys[:-1]:
            node = node.setdefault(str(values[k]), {})
        node[str(values[keys[-1]])] = {m: _clean(values[m]) for m in metrics}
    return out


def _clean(value: object) -> object:
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


def backtest_metrics(frame: pd.DataFrame) -> dict:
    """{"overall": {method: metrics}, "per_series": {method: {series: metrics}}, "per_horizon_day": {...}}."""
    return {
        "overall": _records(accuracy_summary(frame, ["method"]), ["method"]),
        "per_series": _records(accuracy_summary(frame, ["method", "series"]), ["method", "series"]),
        "per_horizon_day": _records(accuracy_summary(frame, ["method", "horizon_day"]), ["method", "horizon_day"]),
    }


def format_accuracy(overall: dict[str, dict]) -> str:
    """The overall accuracy table for the log: one line per method (label: metrics dict)."""
    width = max(len("method"), *(len(label) for label in overall))
    head = f"{'method':<{width}} {'points':>7} {'wMAPE':>7} {'MAE':>9} {'RMSE':>9} {'bias':>7} {'total':>7} " \
           f"{'pinball':>9} {'p10-p90':>7}"
    lines = [head]
    for label, m in overall.items():
        def pct(key: str) -> str:
            return "-" if m.get(key) is None else f"{100 * m[key]:.1f}%"

        def num(key: str) -> str:
            return "-" if m.get(key) is None else f"{m[key]:.1f}"

        lines.append(f"{label:<{width}} {m.get('n_points', 0):>7} {pct('wmape'):>7} {num('mae'):>9} {num('rmse'):>9} "
                     f"{pct('bias'):>7} {pct('total_volume_error'):>7} {num('pinball'):>9} {pct('coverage'):>7}")
    return "\n".join(lines)

"""Step 2's orchestration: the night's daily history in; the fitted candidate, its backtest, its registry entry,
the promotion decision and the track record to publish out.

2_train.py loads (silver_daily, the drivers, the production row and model), calls `train_candidate` and saves
(the artifacts, then the `model_registry` row and the track record). Nothing here writes to the database or the model
folder.

The track record is the rolling backtest of the model that forecasts after tonight (the candidate when it is promoted,
else production's setup retrained at the same origins), published as gold_forecast_accuracy rows with methods
`backtest_lightgbm` / `backtest_naive` and their summary for the as-of: a new installation shows its accuracy on
night 1, labelled as a backtest. Every backtest model is trained only on the days before its origin
(`training.rolling_backtest`), so each point is what that night's forecast would have been.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from common import db, evaluation, promotion, registry, silver, tables, training
from common.cli import describe_db_error, setup_logging
from common.config import load_config
from common.calibration import CalibrationCache
from common.config_schema import Config
from common.errors import ConfigError, ModelError, PipelineError
from common.features import warmup_days
from common.forecast_frame import quantile_column
from common.forecaster import QuantileForecaster
from common.opening_hours import WEEKDAYS

log = logging.getLogger(__name__)


def check_night(cfg: Config, as_of: date, force: bool) -> str | None:
    """Why tonight is not a training night (`training.retrain_weekdays`), or None; ConfigError for an untrainable
    config."""
    t = cfg.training
    if cfg.series.by != "queue":
        raise ConfigError(f"series.by == {cfg.series.by!r} is not supported yet by 2_train.py; use series.by: queue")
    weekday = WEEKDAYS[as_of.weekday()]
    if t.retrain_weekdays is not None and weekday not in t.retrain_weekdays and not force:
        return (f"training skipped: as-of {as_of} is a {weekday}, training.retrain_weekdays is "
                f"[{', '.join(t.retrain_weekdays)}] (use --force to train anyway)")
    return None


@dataclass(frozen=True)
class Production:
    """The production model to compare with: its version, and the loaded model or why it cannot be used."""

    version: str
    model: QuantileForecaster | None
    note: str = ""


def usable_production(cfg: Config, row: dict | None) -> Production | None:
    """Production of a `model_registry` row (None without one), its model loaded when its files verify."""
    if row is None:
        return None
    try:
        return Production(row["version"], registry.load_version(cfg, row))
    except ModelError as exc:
        log.warning("train: production model not usable for the comparison: %s", exc)
        return Production(row["version"], None, f"production {row['version']} is not usable: {exc}")


@dataclass(frozen=True)
class TrainOutcome:
    """A trained candidate: what 2_train.py saves and reports."""

    version: str
    model: QuantileForecaster
    training_meta: dict         # training.json: only what the data and config decide (a re-run writes the same bytes)
    entry: dict                 # the model_registry row without status and artifact_sha256
    decision: promotion.Decision
    summary: str                # queues, training rows and backtest, for the step's message
    track_record: TrackRecord | None = None  # None: a what-if run, or no backtested model forecasts after tonight


@dataclass(frozen=True)
class TrackRecord:
    """The backtest to publish: gold_forecast_accuracy rows and their gold_forecast_accuracy_summary rows."""

    accuracy: pd.DataFrame      # methods backtest_lightgbm / backtest_naive, one row per origin per queue per date
    summary: pd.DataFrame       # scopes overall / queue / horizon_day / weekday, as_of = the night's as-of
    setup: str                  # whose setup was backtested, for the log and the step's message


def track_record(frame: pd.DataFrame, as_of: date, status: str, version: str, production: str | None,
                 what_if: bool) -> TrackRecord | None:
    """The backtest of the model that forecasts after tonight, as accuracy rows (None when nothing is published).

    `frame`: `training.rolling_backtest` rows; `status`: the candidate's registry status after tonight.
    The candidate's rows when it is production, else production's setup's rows (retrained at the same origins)
    when they are there; a what-if run (--set without --publish) publishes nothing.
    """
    if what_if:
        return None
    if status == "production":
        method, setup = training.CANDIDATE, f"{version} (promoted tonight)"
    elif production is not None and (frame["method"] == training.PRODUCTION).any():
        method, setup = training.PRODUCTION, f"production {production}'s setup"
    else:
        return None
    accuracy = evaluation.backtest_accuracy(frame, method, training.NAIVE)
    if accuracy.empty:
        return None
    return TrackRecord(accuracy, evaluation.backtest_summary(accuracy, as_of), setup)


def train_candidate(cfg: Config, as_of: date, daily: pd.DataFrame, exogenous: pd.DataFrame | None,
                    production: Production | None, what_if: str | None = None,
                    vendor: pd.DataFrame | None = None) -> TrainOutcome:
    """Fit the candidate on `daily` (one row per queue per date < as_of), backtest it with production's setup,
    decide its promotion. `what_if` (the run's --set overrides, when not published) keeps it staging whatever the
    rule says.

    NotEnoughHistory when no queue has enough history or the earliest backtest origin would have too little.
    """
    t = cfg.training
    history, left_out = training.split_by_history(daily, t.min_history_days)
    for row in left_out.itertuples(index=False):
        log.info("train: queue %s left out: %d open days < training.min_history_days %d (step 3 gives it "
                 "seasonal naive)", row.series, row.open_days, t.min_history_days)
    make_model = partial(training.make_forecaster, t, cfg.forecast.quantiles)
    horizon = cfg.forecast.horizon_days
    if history.empty:
        raise training.NotEnoughHistory(
            f"no queue has >= training.min_history_days == {t.min_history_days} open days before {as_of} "
            f"(most: {int(left_out['open_days'].max())})")
    first, last = history["date"].min(), history["date"].max()
    blank = make_model()
    origins = training.backtest_origins(first, last, t.backtest_origins, horizon, t.backtest_step_days,
                                        min_train_days=warmup_days(blank.lags, blank.windows) + 28)
    holidays = silver.closed_dates_for(cfg, first.date(), as_of + timedelta(days=366))
    fit_started = time.perf_counter()
    # The final model's inner calibration backtest and the rolling backtest's models forecast from mostly the same
    # weekly origins on this same history: each is computed once.
    cache = CalibrationCache()
    model = make_model().fit(history, holidays, exogenous=exogenous, calibration_cache=cache, vendor=vendor)
    params = training.model_params(model)
    data_hash = training.data_hash(history, holidays, exogenous, vendor)
    version = training.model_version(as_of, data_hash, params)
    log.info("train: %s fitted on %d rows (%d open training rows), %d queues, window %s..%s, %d features (%.1fs)",
             version, len(history), model.n_train_rows_, history["series"].nunique(), first.date(), last.date(),
             len(model.feature_names_), time.perf_counter() - fit_started)

    setup, not_compared = _production_setup(production, blank, exogenous)
    bt_started = time.perf_counter()
    result = training.rolling_backtest(history, holidays, make_model, origins, horizon, t.retrain_per_origin,
                                       exogenous, setup, calibration_cache=cache, vendor=vendor)
    bt_seconds = time.perf_counter() - bt_started
    log.info("train: calibration cache: inner forecasts computed %d times, reused %d times; %d backtest models "
             "adopted from the calibration", cache.misses, cache.hits, cache.models_reused)
    frame = result.frame
    metrics = training.backtest_metrics(frame.loc[frame["method"] != training.PRODUCTION])
    prod_model = production.model if production else None
    newer = prod_model is None or str(model.train_end_) >= str(prod_model.train_end_)
    section, scores = promotion.compare_with_production(result, metrics, production.version if production else None,
                                                        setup, not_compared, newer, t.retrain_per_origin)
    if production is not None and production.version == version:
        decision = promotion.Decision("production", f"re-run of production {version}: same data and config, same model")
    else:
        decision = promotion.decide_promotion(scores, t.promotion_margin)
        if what_if:  # a run with --set overrides never replaces the nightly's model unless published
            decision = promotion.Decision("staging", f"what-if run with overrides {what_if}: not promoted; use "
                                                     f"--publish (the promotion rule said {decision.status}: "
                                                     f"{decision.reason})")
    if section is not None:
        section = {**section, "margin": t.promotion_margin,
                   "decision": {"status": decision.status, "reason": decision.reason}}
    log.info("train: backtest %d origins %s..%s x %d days in %.1fs", len(origins), origins[0].date(),
             origins[-1].date(), horizon, bt_seconds)
    for line in training.format_accuracy(promotion.accuracy_rows(metrics, section)).splitlines():
        log.info("train:   %s", line)  # one record per table line: the log's formatter keeps each record one line

    backtest = {"origins": [str(o.date()) for o in origins], "horizon_days": horizon,
                "step_days": t.backtest_step_days, "retrain_per_origin": t.retrain_per_origin}
    importance = _importance(model)
    training_meta = {
        "version": version, "as_of": str(as_of), "data_hash": data_hash, "params": params,
        "features": model.feature_names_, "queues": model.categories_,
        "left_out_queues": {r.series: int(r.open_days) for r in left_out.itertuples(index=False)},
        "train_window": {"first": str(first.date()), "last": str(last.date())}, "rows": len(history),
        "train_rows": model.n_train_rows_, "exogenous_columns": training.driver_columns(exogenous),
        "backtest": backtest, "metrics": metrics, "feature_importance": importance,
        "library_versions": training.library_versions(),
    }
    entry = {
        "version": version, "created_at": db.utc_now(), "data_hash": data_hash,
        "params": {**params, "min_history_days": t.min_history_days, "exogenous_table": t.exogenous_table,
                   "backtest": backtest},
        "metrics": {**metrics, "backtest": {**backtest, "seconds": round(bt_seconds, 1)}, "production": section,
                    "decision": {"status": decision.status, "reason": decision.reason},
                    "ensemble": model.adjustments_.get("ensemble")},
        "feature_importance": importance, "artifact_path": str(Path(t.model_dir) / version),
    }
    summary = (f"{history['series'].nunique()} queues, {model.n_train_rows_} training rows, "
               f"backtest {len(origins)} origins in {bt_seconds:.1f}s")
    record = track_record(frame, as_of, decision.status, version, production.version if production else None,
                          bool(what_if))
    return TrainOutcome(version, model, training_meta, entry, decision, summary, record)


def _production_setup(production: Production | None, candidate: QuantileForecaster,
                      exogenous: pd.DataFrame | None) -> tuple[training.ProductionSetup | None, str]:
    """(production's setup to retrain in the backtest, None and why it cannot be compared)."""
    if production is None or production.model is None:
        return None, production.note if production else ""
    try:
        setup = training.production_setup(production.version, production.model, candidate, exogenous)
    except PipelineError as exc:
        log.warning("train: production %s not compared: %s", production.version, exc)
        return None, str(exc)
    log.info("train: production %s's setup %s", production.version,
             "is the candidate's: its backtest is the candidate's" if setup.same_as_candidate
             else f"differs in {', '.join(setup.changes)}: retrained at every backtest origin too")
    return setup, ""


def _importance(model: QuantileForecaster) -> dict[str, list[dict]]:
    """Per quantile column, features by gain (highest first)."""
    imp = model.feature_importance().sort_values(["quantile", "gain", "feature"], ascending=[True, False, True])
    return {quantile_column(q): [{"feature": r.feature, "gain": round(float(r.gain), 3), "splits": int(r.splits)}
                                 for r in rows.itertuples(index=False)]
            for q, rows in imp.groupby("quantile", sort=True)}


ACC, SUMMARY = tables.gold_forecast_accuracy, tables.gold_forecast_accuracy_summary


def publish_track_record(conn: Connection, record: TrackRecord | None, as_of: date, run_id: str) -> tuple[int, str]:
    """Write the night's backtest as the track record (rows written, what was done), inside the caller's
    transaction. The latest backtest replaces the previous one, as `4_evaluate.py --backtest` does; a backfill
    (an as-of older than the record already published) keeps the newer record."""
    if record is None:
        return 0, "no track record published"
    newer = conn.execute(select(func.max(SUMMARY.c.as_of)).where(
        SUMMARY.c.method.in_(evaluation.BACKTEST_METHODS))).scalar()
    if newer is not None and newer > as_of:
        return 0, f"no track record published: the one of as-of {newer} is newer"
    conn.execute(delete(ACC).where(ACC.c.method.in_(evaluation.BACKTEST_METHODS)))
    written = db.insert_frame(conn, ACC, record.accuracy.assign(run_id=run_id))
    conn.execute(delete(SUMMARY).where((SUMMARY.c.as_of == as_of) & SUMMARY.c.method.in_(evaluation.BACKTEST_METHODS)))
    written += db.insert_frame(conn, SUMMARY, record.summary.assign(run_id=run_id))
    return written, (f"track record: backtest of {record.setup}, {record.accuracy['forecast_origin'].nunique()} "
                     "origins published")


def list_versions(args: argparse.Namespace) -> int:
    """`2_train.py --list`: print the registry (read-only, so not recorded in pipeline_runs); the exit code."""
    setup_logging(args.log_level)
    url = None
    try:
        cfg = load_config(args.config, args.overrides)
        url = cfg.database_url
        engine = db.make_engine(url)
        db.ensure_schema(engine)
        with engine.connect() as conn:
            print(registry.format_versions(registry.read_registry(conn)))
    except PipelineError as exc:
        print(f"2_train: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except DBAPIError as exc:
        print(f"2_train: error: cannot use the database {db.safe_url(url)}: {describe_db_error(exc, url)}",
              file=sys.stderr)
        return 1
    return 0

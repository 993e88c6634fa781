"""Step 2's orchestration: the night's daily history in; the fitted candidate, its backtest, its registry entry and
the promotion decision out.

2_train.py loads (silver_daily, the drivers, the production row and model), calls `train_candidate` and saves
(the artifacts, then the `model_registry` row). Nothing here writes to the database or the model folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import pandas as pd

from common import db, promotion, registry, silver, training
from common.calendar import WEEKDAYS
from common.config import Config
from common.errors import ConfigError, ModelError
from common.features import warmup_days
from common.forecaster import CalibrationCache, QuantileForecaster, quantile_column

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


def usable_production(cfg: Config, row: dict | None) -> tuple[tuple[str, QuantileForecaster] | None, str]:
    """(version, model) of production when its files verify and load, else None and why."""
    if row is None:
        return None, ""
    try:
        return (row["version"], registry.load_version(cfg, row)), ""
    except ModelError as exc:
        log.warning("train: production model not usable for the comparison: %s", exc)
        return None, f"production {row['version']} is not usable: {exc}"


@dataclass(frozen=True)
class TrainOutcome:
    """A trained candidate: what 2_train.py saves and reports."""

    version: str
    model: QuantileForecaster
    training_meta: dict         # training.json: only what the data and config decide (a re-run writes the same bytes)
    entry: dict                 # the model_registry row without status and artifact_sha256
    decision: promotion.Decision
    summary: str                # queues, training rows and backtest, for the step's message


def train_candidate(cfg: Config, as_of: date, daily: pd.DataFrame, exogenous: pd.DataFrame | None,
                    prod_row: dict | None, production: tuple[str, QuantileForecaster] | None,
                    prod_note: str = "") -> TrainOutcome:
    """Fit the candidate on `daily` (one row per queue per date < as_of), backtest it, decide its promotion.

    `production` is the loaded production model (None when there is none or it is unusable: `prod_note` says why).
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
    model = make_model().fit(history, holidays, exogenous=exogenous, calibration_cache=cache)
    params = training.model_params(model)
    data_hash = training.data_hash(history, holidays, exogenous)
    version = training.model_version(as_of, data_hash, params)
    log.info("train: %s fitted on %d rows (%d open training rows), %d queues, window %s..%s, %d features (%.1fs)",
             version, len(history), model.n_train_rows_, history["series"].nunique(), first.date(), last.date(),
             len(model.feature_names_), time.perf_counter() - fit_started)

    same_as_production = production is not None and production[0] == version
    prod_spec, in_sample = None, False
    if production is not None and not same_as_production:
        prod_origins, in_sample = training.production_origins(origins, production[1].train_end_)
        prod_spec = training.ProductionModel(production[0], production[1], tuple(prod_origins))
    bt_started = time.perf_counter()
    result = training.rolling_backtest(history, holidays, make_model, origins, horizon, t.retrain_per_origin,
                                       exogenous, prod_spec, calibration_cache=cache)
    bt_seconds = time.perf_counter() - bt_started
    log.info("train: calibration cache: inner forecasts computed %d times, reused %d times; %d backtest models "
             "adopted from the calibration", cache.misses, cache.hits, cache.models_reused)
    frame = result.frame
    metrics = training.backtest_metrics(frame.loc[frame["method"] != training.PRODUCTION])
    problem = prod_note or result.production_error or (
        f"the candidate is production {version} itself: not compared" if same_as_production else None)
    section, scores = _production_section(frame, metrics, prod_row, prod_spec, in_sample, problem, model)
    if same_as_production:
        decision = promotion.Decision("production", f"re-run of production {version}: same data and config, same model")
    else:
        decision = promotion.decide_promotion(scores, t.promotion_margin)
    log.info("train: backtest %d origins %s..%s x %d days in %.1fs\n%s", len(origins), origins[0].date(),
             origins[-1].date(), horizon, bt_seconds, training.format_accuracy(_overall_rows(metrics, section)))

    backtest = {"origins": [str(o.date()) for o in origins], "horizon_days": horizon,
                "step_days": t.backtest_step_days, "retrain_per_origin": t.retrain_per_origin}
    importance = _importance(model)
    training_meta = {
        "version": version, "as_of": str(as_of), "data_hash": data_hash, "params": params,
        "features": model.feature_names_, "queues": model.categories_,
        "left_out_queues": {r.series: int(r.open_days) for r in left_out.itertuples(index=False)},
        "train_window": {"first": str(first.date()), "last": str(last.date())}, "rows": len(history),
        "train_rows": model.n_train_rows_, "exogenous_columns": _exogenous_columns(exogenous),
        "backtest": backtest, "metrics": metrics, "feature_importance": importance,
        "library_versions": training.library_versions(),
    }
    entry = {
        "version": version, "created_at": db.utc_now(), "data_hash": data_hash,
        "params": {**params, "min_history_days": t.min_history_days, "exogenous_table": t.exogenous_table,
                   "backtest": backtest},
        "metrics": {**metrics, "backtest": {**backtest, "seconds": round(bt_seconds, 1)}, "production": section,
                    "decision": {"status": decision.status, "reason": decision.reason}},
        "feature_importance": importance, "artifact_path": str(Path(t.model_dir) / version),
    }
    summary = (f"{history['series'].nunique()} queues, {model.n_train_rows_} training rows, "
               f"backtest {len(origins)} origins in {bt_seconds:.1f}s")
    return TrainOutcome(version, model, training_meta, entry, decision, summary)


def _production_section(frame: pd.DataFrame, metrics: dict, prod_row: dict | None,
                        prod_spec: training.ProductionModel | None, in_sample: bool,
                        problem: str | None, candidate: QuantileForecaster) -> tuple[dict | None, promotion.Scores]:
    """The metrics.production entry and the scores the promotion rule reads."""
    overall = metrics["overall"]
    cand, naive = overall[training.CANDIDATE]["wmape"], overall[training.NAIVE]["wmape"]
    base = promotion.Scores(candidate=_num(cand), naive=_num(naive))
    if prod_row is None:
        return None, base
    section = {"version": prod_row["version"], "scored": False, "note": problem or ""}
    if prod_spec is None:  # not usable, or the candidate is that very version
        return section, promotion.Scores(base.candidate, base.naive, production_note=section["note"])
    points = training.production_points(frame)
    if not (points["method"].eq(training.PRODUCTION) & (points["y"] > 0)).any():
        note = problem or f"production {prod_spec.version} knows none of the backtest queues"
        return {**section, "note": note}, promotion.Scores(base.candidate, base.naive, production_note=note)
    compared = training.backtest_metrics(points)
    note = (f"production {prod_spec.version} was trained on data up to {prod_spec.model.train_end_}, after the "
            "backtest origins: it has seen those days, so its wMAPE is optimistic") if in_sample else ""
    section = {**section, "scored": True, "note": note, "in_sample": in_sample,
               "train_end": prod_spec.model.train_end_, "origins": [str(o.date()) for o in prod_spec.origins],
               **compared}
    prod_overall = compared["overall"]
    return section, promotion.Scores(
        candidate=base.candidate, naive=base.naive, production=_num(prod_overall[training.PRODUCTION]["wmape"]),
        candidate_on_production=_num(prod_overall[training.CANDIDATE]["wmape"]),
        production_version=prod_spec.version, production_note=note, production_in_sample=in_sample,
        is_refresh=training.model_params(prod_spec.model) == training.model_params(candidate)
        and prod_spec.model.feature_names_ == candidate.feature_names_
        and str(candidate.train_end_) > str(prod_spec.model.train_end_))


def _overall_rows(metrics: dict, section: dict | None) -> dict[str, dict]:
    rows = {"candidate": metrics["overall"][training.CANDIDATE], "seasonal_naive": metrics["overall"][training.NAIVE]}
    if section and section.get("scored"):
        tag = f"{len(section['origins'])} origins{', in-sample' if section['in_sample'] else ''}"
        rows[f"production {section['version']} ({tag})"] = section["overall"][training.PRODUCTION]
        rows["candidate on production's points"] = section["overall"][training.CANDIDATE]
    return rows


def _importance(model: QuantileForecaster) -> dict[str, list[dict]]:
    """Per quantile column, features by gain (highest first)."""
    imp = model.feature_importance().sort_values(["quantile", "gain", "feature"], ascending=[True, False, True])
    return {quantile_column(q): [{"feature": r.feature, "gain": round(float(r.gain), 3), "splits": int(r.splits)}
                                 for r in rows.itertuples(index=False)]
            for q, rows in imp.groupby("quantile", sort=True)}


def _exogenous_columns(exogenous: pd.DataFrame | None) -> list[str]:
    return [] if exogenous is None else [c for c in exogenous.columns if c not in ("series", "date")]


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)

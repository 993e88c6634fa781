#!/usr/bin/env python3
"""Step 2: train the quantile LightGBM forecaster, backtest it, register it, promote it when it is better.

One global LightGBM per quantile across queues (queue id categorical) on the
open days of silver_daily before the as-of; queues with fewer than
training.min_history_days open days are left out (step 3 gives them seasonal
naive). A rolling-origin backtest of the real recursive forecast
(training.backtest_origins origins, training.backtest_step_days apart) scores it
against weekly seasonal naive and against the current production model, loaded
from its files and not retrained. The model is saved as LightGBM text files +
JSON under training.model_dir/<version>/ and registered in model_registry; it
becomes production when it beats seasonal naive and beats production's wMAPE by
training.promotion_margin, else it stays staging with the reason. The same data
and config give the same version and bytes: a re-run replaces, never
duplicates. Nights whose weekday is not in training.retrain_weekdays are
skipped (--force trains anyway). A run with --set overrides (other than
database.*, source.*, report.*, training.model_dir: where things are) is a
what-if unless --publish is given: its model is registered as staging, never
promoted.

Examples:
  python 2_train.py --as-of 2025-03-10
  python 2_train.py --list
  python 2_train.py --promote v20250310-1a2b3c4d
  python 2_train.py --rollback
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import pandas as pd
from sqlalchemy.exc import DBAPIError

from common import cli, db, registry, silver, training
from common.calendar import WEEKDAYS
from common.cli import StepContext, StepResult, describe_db_error, run_step, setup_logging, step_parser
from common.config import Config, load_config
from common.errors import ConfigError, DataError, ModelError, PipelineError
from common.features import warmup_days
from common.forecaster import CalibrationCache, QuantileForecaster, quantile_column

log = logging.getLogger(__name__)


def body(ctx: StepContext) -> StepResult:
    if ctx.args.promote:
        return _promote(ctx)
    if ctx.args.rollback:
        return _rollback(ctx)
    return _train(ctx)


def _train(ctx: StepContext) -> StepResult:
    cfg, as_of, t = ctx.cfg, ctx.as_of, ctx.cfg.training
    if cfg.series.by != "queue":
        raise ConfigError(f"series.by == {cfg.series.by!r} is not supported yet by 2_train.py; use series.by: queue")
    weekday = WEEKDAYS[as_of.weekday()]
    if t.retrain_weekdays is not None and weekday not in t.retrain_weekdays and not ctx.args.force:
        message = (f"training skipped: as-of {as_of} is a {weekday}, training.retrain_weekdays is "
                   f"[{', '.join(t.retrain_weekdays)}] (use --force to train anyway)")
        log.info(message)
        return StepResult(0, message, "skipped")
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = training.read_daily_history(conn, as_of)
        exogenous = training.read_exogenous(conn, t.exogenous_table, as_of) if t.exogenous_table else None
        prod_row = registry.production_row(conn)
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    production, prod_note = _usable_production(cfg, prod_row)
    log.info("train: read %d silver_daily rows (%d queues)%s, production %s (%.1fs)", len(daily),
             daily["series"].nunique(), "" if exogenous is None else f", {len(exogenous)} exogenous rows",
             prod_row["version"] if prod_row else "none", time.perf_counter() - started)

    # Process data
    history, left_out = training.split_by_history(daily, t.min_history_days)
    for row in left_out.itertuples(index=False):
        log.info("train: queue %s left out: %d open days < training.min_history_days %d (step 3 gives it seasonal naive)",
                 row.series, row.open_days, t.min_history_days)
    make_model = partial(training.make_forecaster, t, cfg.forecast.quantiles)
    horizon = cfg.forecast.horizon_days
    try:
        if history.empty:
            raise training.NotEnoughHistory(
                f"no queue has >= training.min_history_days == {t.min_history_days} open days before {as_of} "
                f"(most: {int(left_out['open_days'].max())})")
        first, last = history["date"].min(), history["date"].max()
        blank = make_model()
        origins = training.backtest_origins(first, last, t.backtest_origins, horizon, t.backtest_step_days,
                                            min_train_days=warmup_days(blank.lags, blank.windows) + 28)
    except training.NotEnoughHistory as exc:
        # A young installation must not break the nightly chain: step 3 forecasts every queue with seasonal naive.
        message = f"training skipped: not enough history yet: {exc}; step 3 uses seasonal naive"
        log.warning(message)
        return StepResult(0, message, "skipped")
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
        decision = training.Decision("production", f"re-run of production {version}: same data and config, same model")
    else:
        decision = training.decide_promotion(scores, t.promotion_margin)
        if cli.what_if_overrides(ctx.args.overrides) and not ctx.args.publish:  # never replaces the nightly's model
            overrides = cli.recorded_overrides(cli.what_if_overrides(ctx.args.overrides), cfg.database_url)
            decision = training.Decision("staging", f"what-if run with overrides {' '.join(overrides)}: not promoted; "
                                                    f"use --publish (the promotion rule said {decision.status}: "
                                                    f"{decision.reason})")
    log.info("train: backtest %d origins %s..%s x %d days in %.1fs\n%s", len(origins), origins[0].date(),
             origins[-1].date(), horizon, bt_seconds, training.format_accuracy(_overall_rows(metrics, section)))

    backtest = {"origins": [str(o.date()) for o in origins], "horizon_days": horizon,
                "step_days": t.backtest_step_days, "retrain_per_origin": t.retrain_per_origin}
    importance = _importance(model)
    # training.json holds only what the data and config decide, so a re-run writes the same bytes.
    training_meta = {
        "version": version, "as_of": str(as_of), "data_hash": data_hash, "params": params,
        "features": model.feature_names_, "queues": model.categories_,
        "left_out_queues": {r.series: int(r.open_days) for r in left_out.itertuples(index=False)},
        "train_window": {"first": str(first.date()), "last": str(last.date())}, "rows": len(history),
        "train_rows": model.n_train_rows_, "exogenous_columns": _exogenous_columns(exogenous),
        "backtest": backtest, "metrics": metrics, "feature_importance": importance,
        "library_versions": training.library_versions(),
    }

    # Save outputs: files first (a crash before the commit leaves an unregistered folder, never a row without files)
    shas = registry.write_artifacts(cfg.path(t.model_dir) / version, model, training_meta)
    entry = {
        "version": version, "created_at": db.utc_now(), "data_hash": data_hash,
        "params": {**params, "min_history_days": t.min_history_days, "exogenous_table": t.exogenous_table,
                   "backtest": backtest},
        "metrics": {**metrics, "backtest": {**backtest, "seconds": round(bt_seconds, 1)}, "production": section,
                    "decision": {"status": decision.status, "reason": decision.reason}},
        "feature_importance": importance, "artifact_path": str(Path(t.model_dir) / version), "artifact_sha256": shas,
    }
    with ctx.engine.begin() as conn:
        status = registry.save_version(conn, entry, decision.status, decision.reason)
    log.info("train: %s registered as %s: %s", version, status, decision.reason)
    message = (f"{version} {status}: {decision.reason}; {history['series'].nunique()} queues, "
               f"{model.n_train_rows_} training rows, backtest {len(origins)} origins in {bt_seconds:.1f}s")
    return StepResult(1, message)


def _usable_production(cfg: Config, row: dict | None) -> tuple[tuple[str, QuantileForecaster] | None, str]:
    """(version, model) of production when its files verify and load, else None and why."""
    if row is None:
        return None, ""
    try:
        return (row["version"], registry.load_version(cfg, row)), ""
    except ModelError as exc:
        log.warning("train: production model not usable for the comparison: %s", exc)
        return None, f"production {row['version']} is not usable: {exc}"


def _production_section(frame: pd.DataFrame, metrics: dict, prod_row: dict | None,
                        prod_spec: training.ProductionModel | None, in_sample: bool,
                        problem: str | None, candidate: QuantileForecaster) -> tuple[dict | None, training.Scores]:
    """The metrics.production entry and the scores the promotion rule reads."""
    overall = metrics["overall"]
    cand, naive = overall[training.CANDIDATE]["wmape"], overall[training.NAIVE]["wmape"]
    base = training.Scores(candidate=_num(cand), naive=_num(naive))
    if prod_row is None:
        return None, base
    section = {"version": prod_row["version"], "scored": False, "note": problem or ""}
    if prod_spec is None:  # not usable, or the candidate is that very version
        return section, training.Scores(base.candidate, base.naive, production_note=section["note"])
    points = training.production_points(frame)
    if not (points["method"].eq(training.PRODUCTION) & (points["y"] > 0)).any():
        note = problem or f"production {prod_spec.version} knows none of the backtest queues"
        return {**section, "note": note}, training.Scores(base.candidate, base.naive, production_note=note)
    compared = training.backtest_metrics(points)
    note = (f"production {prod_spec.version} was trained on data up to {prod_spec.model.train_end_}, after the "
            "backtest origins: it has seen those days, so its wMAPE is optimistic") if in_sample else ""
    section = {**section, "scored": True, "note": note, "in_sample": in_sample,
               "train_end": prod_spec.model.train_end_, "origins": [str(o.date()) for o in prod_spec.origins],
               **compared}
    prod_overall = compared["overall"]
    return section, training.Scores(
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


def _promote(ctx: StepContext) -> StepResult:
    version = ctx.args.promote
    with ctx.engine.begin() as conn:
        previous = registry.promote(conn, ctx.cfg, version, reason=f"manual promotion (--promote, run {ctx.run_id})")
    message = f"{version} is production" + (f"; {previous} archived" if previous else "")
    return StepResult(1, message)


def _rollback(ctx: StepContext) -> StepResult:
    with ctx.engine.begin() as conn:
        rolled_back, restored = registry.rollback(conn, ctx.cfg)
    return StepResult(2, f"rolled back: {restored} is production again, {rolled_back} archived")


def _list_versions(args) -> int:
    """--list: print the registry (read-only, so not recorded in pipeline_runs)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("2_train.py", __doc__)
    parser.add_argument("--force", action="store_true",
                        help="train even when training.retrain_weekdays excludes the as-of's weekday")
    parser.add_argument("--publish", action="store_true",
                        help="with --set: let the model be promoted (without it, a run with --set is a what-if: "
                             "its model is registered as staging, never promoted)")
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("--list", action="store_true", help="print the model versions and exit (no training)")
    admin.add_argument("--promote", metavar="VERSION", default=None,
                       help="make VERSION production (its files are verified first); the current one is archived")
    admin.add_argument("--rollback", action="store_true",
                       help="put the previous production model back; the current one is archived")
    args = parser.parse_args(argv)
    if args.list:
        return _list_versions(args)
    return run_step("2_train", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

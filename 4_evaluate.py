#!/usr/bin/env python3
"""Step 4: score stored forecasts against the actuals that arrived, compare with seasonal naive, raise alerts.

For --as-of D every forecast origin in gold_forecast_daily with dates before D
that silver_daily now has actuals for is scored into gold_forecast_accuracy
(one row per origin per queue per date per method): the published forecast
(lightgbm, or seasonal_naive where step 3 fell back) and the weekly seasonal
naive forecast recomputed as it would have been at that origin from silver
before it (naive_benchmark), so "does the model still beat naive?" is
answered on the same points every night. Origins of the last few weeks are
re-scored every night (their actuals keep arriving), older ones once; --full
re-scores every origin (e.g. after silver was rebuilt).

gold_forecast_accuracy_summary: wMAPE, MAPE, MAE, RMSE, bias, total-volume
error, pinball loss (p10/p50/p90) and p10-p90 coverage over the origins of
the trailing evaluation.window_days, overall and by queue, horizon day,
weekday and method, next to the naive benchmark on the same points. Open days
only. gold_alerts: daily MAPE, weekly bias, data freshness, feature drift
(PSI), model vs naive, fallback used (thresholds: alerts.*). All three
tables are replaced for this as-of / these origins, never duplicated.

A forecast whose model was trained on data up to or after its origin had seen
the days it forecast (a backfill made with a later model, e.g. by an older
version of 3_forecast.py): it is never scored, summarised or alerted on, its
old accuracy rows are removed, and the run's message says how many were skipped.

--backtest: a rolling-origin backtest of the production setup (the
production model's parameters, else training.*), retrained at each origin on
silver before it, scored the same way. Its rows carry methods
backtest_lightgbm / backtest_naive (gold_forecast_accuracy keeps only the
latest backtest; the summary keeps one per as-of), so they never mix with
real forecasts. Both modes print the accuracy table.

Examples:
  python 4_evaluate.py --as-of 2025-03-10
  python 4_evaluate.py --as-of 2025-03-10 --backtest --origins 8
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import delete, false, func, select
from sqlalchemy.engine import Connection, Engine

from common import alerts, db, evaluation, model_choice, registry, silver, tables, training
from common.cli import StepContext, StepResult, run_step, step_parser
from common.config_schema import Config
from common.errors import ConfigError, DataError, ModelError
from common.features import warmup_days
from common.forecaster import QuantileForecaster

log = logging.getLogger(__name__)

STEP = "4_evaluate"
ACC = tables.gold_forecast_accuracy
SUMMARY = tables.gold_forecast_accuracy_summary


def body(ctx: StepContext) -> StepResult:
    return _backtest(ctx) if ctx.args.backtest else _evaluate(ctx)


def _evaluate(ctx: StepContext) -> StepResult:
    cfg, as_of, a = ctx.cfg, ctx.as_of, ctx.cfg.alerts
    horizon = cfg.forecast.horizon_days
    if a.horizon_day > horizon:
        raise ConfigError(f"alerts.horizon_day == {a.horizon_day}, must be <= forecast.horizon_days ({horizon})")
    # Every origin the summary and the alert rules read is re-scored, so they never see half-old rows.
    rescore_days = max(horizon, cfg.evaluation.window_days, a.naive_window_days,
                       7 * (a.bias_warning_weeks + 1) + a.horizon_day,
                       a.mape_warning_days + alerts.RECENT_DAYS + a.horizon_day)
    drift_start = as_of - timedelta(days=a.drift_recent_days + a.drift_reference_days)
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        stored = _origins(conn, tables.gold_forecast_daily, as_of)
        scored = _origins(conn, ACC, as_of, evaluation.NIGHTLY_METHODS)
        origins = evaluation.origins_to_score(stored, scored, as_of - timedelta(days=rescore_days), ctx.args.full)
        leaks, purge = _leaking_forecasts(conn, cfg, as_of)
        origins = sorted(set(origins) | set(purge))  # leaking rows scored by an older version go with the re-score
        forecasts, skipped = evaluation.split_leaking(_read_forecasts(conn, origins, as_of), leaks)
        # silver_daily also says which days of the bias rule's weeks were open (a week is judged when complete).
        daily_from = min(drift_start, as_of - timedelta(days=7 * (a.bias_warning_weeks + 1)),
                         *([origins[0] - timedelta(days=evaluation.NAIVE_HISTORY_DAYS)] if origins else []))
        daily = _read_daily(conn, daily_from, as_of)
        intervals = _read_open_intervals(conn, drift_start, as_of)
        latest = _latest_forecast(conn, as_of)
        newest = silver.newest_contact(conn, cfg, as_of)
    log.info("evaluate: %d of %d stored origins to score (%d forecast rows), %d silver_daily rows, %d open intervals, "
             "latest forecast origin %s (%.1fs)", len(origins), len(stored), len(forecasts), len(daily), len(intervals),
             latest["forecast_origin"].iloc[0].date() if len(latest) else "none", time.perf_counter() - started)

    leak_note = ""
    if len(skipped):
        leak_note = (f"{len(skipped)} forecast rows of {skipped['forecast_origin'].nunique()} origins skipped, their "
                     f"model had seen the days they forecast: {evaluation.describe_leaks(skipped, leaks)}")
        log.warning("evaluate: %s; they are not scored, summarised or alerted on (a backfill made with a later model; "
                    "re-run 3_forecast.py --as-of ORIGIN to replace them)", leak_note)

    # Process data
    t0 = time.perf_counter()
    scored_rows = evaluation.accuracy_rows(forecasts, daily)
    naive = evaluation.naive_benchmark(daily, scored_rows)
    missing = len(scored_rows) - len(naive)
    if missing:
        log.info("evaluate: %d points have no naive benchmark (their queue's silver does not reach the day before "
                 "the origin)", missing)
    accuracy = pd.concat([scored_rows, evaluation.accuracy_rows(naive, daily)], ignore_index=True)
    summary = evaluation.nightly_summary(accuracy, as_of, cfg.evaluation.window_days)
    log.info("evaluate: %d accuracy rows (%d points with actuals), %d summary rows (%.1fs)", len(accuracy),
             len(scored_rows), len(summary), time.perf_counter() - t0)

    closed = silver.closed_dates_for(cfg, as_of - timedelta(days=15), as_of)
    queues = sorted(daily["queue"].unique()) if len(daily) else []
    last_end = silver.last_open_end(cfg, queues, as_of, closed)
    found = [
        *alerts.daily_mape_alerts(accuracy, as_of, horizon_day=a.horizon_day, warning=a.mape_warning,
                                  warning_days=a.mape_warning_days, critical=a.mape_critical,
                                  min_actual=a.mape_min_actual),
        *alerts.weekly_bias_alerts(accuracy, daily, as_of, horizon_day=a.horizon_day, warning=a.bias_warning,
                                   warning_weeks=a.bias_warning_weeks, critical=a.bias_critical,
                                   min_days=a.bias_min_days),
        *alerts.freshness_alerts(newest, last_end, warning_hours=a.freshness_warning_hours,
                                 critical_hours=a.freshness_critical_hours),
        *alerts.drift_alerts(intervals, daily, as_of, recent_days=a.drift_recent_days,
                             reference_days=a.drift_reference_days, bins=a.drift_bins, warning=a.drift_warning_psi,
                             critical=a.drift_critical_psi),
        *alerts.beats_naive_alerts(accuracy, as_of, window_days=a.naive_window_days, min_days=a.naive_min_days),
        *alerts.fallback_alerts(latest),
    ]
    alert_rows = alerts.alerts_frame(found)
    for row in alert_rows.itertuples(index=False):
        log.warning("alert %s %s%s: %s", row.severity, row.alert_rule, f" [{row.queue}]" if row.queue else "", row.message)

    # Save outputs: one transaction; the scored origins' rows and this as-of's summary and alerts are replaced
    with ctx.engine.begin() as conn:
        for chunk in _chunks(origins):
            conn.execute(delete(ACC).where(ACC.c.forecast_origin.in_(chunk)
                                           & ACC.c.method.in_(evaluation.NIGHTLY_METHODS)))
        written = db.insert_frame(conn, ACC, accuracy.assign(run_id=ctx.run_id))
        conn.execute(delete(SUMMARY).where((SUMMARY.c.as_of == as_of)
                                           & SUMMARY.c.method.in_([evaluation.FORECAST, evaluation.NAIVE_BENCHMARK])))
        written += db.insert_frame(conn, SUMMARY, summary.assign(run_id=ctx.run_id))
        conn.execute(delete(tables.gold_alerts).where(tables.gold_alerts.c.as_of == as_of))
        written += db.insert_frame(conn, tables.gold_alerts, alert_rows.assign(
            run_id=ctx.run_id, as_of=pd.Timestamp(as_of), created_at=db.utc_now()))

    print(f"Forecast accuracy as of {as_of}, origins {as_of - timedelta(days=cfg.evaluation.window_days)}.."
          f"{as_of - timedelta(days=1)} (open days):")
    print(evaluation.format_summary(summary, ("overall", "queue", "method")))
    print(_format_alerts(alert_rows))
    overall = summary.loc[(summary["scope"] == "overall") & (summary["method"] == evaluation.FORECAST)]
    headline = ("no forecast points with actuals in the window" if overall.empty else
                f"wMAPE {100 * overall['wmape'].iloc[0]:.1f}% vs naive {100 * overall['wmape_naive'].iloc[0]:.1f}% "
                f"over {int(overall['n_days'].iloc[0])} open days")
    n_critical = int((alert_rows["severity"] == alerts.CRITICAL).sum())
    message = (f"{len(origins)} origins scored ({len(scored_rows)} points with actuals); {headline}; "
               f"{len(alert_rows)} alerts ({n_critical} critical)" + (f"; {leak_note}" if leak_note else ""))
    return StepResult(written, message)


def _backtest(ctx: StepContext) -> StepResult:
    cfg, as_of, t = ctx.cfg, ctx.as_of, ctx.cfg.training
    horizon = cfg.forecast.horizon_days
    n_origins = ctx.args.origins or t.backtest_origins
    step_days = ctx.args.step_days or t.backtest_step_days
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = training.read_daily_history(conn, as_of)
        exogenous = training.read_exogenous(conn, t.exogenous_table, as_of) if t.exogenous_table else None
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    make_model, setup = _backtest_setup(ctx.engine, cfg)
    log.info("backtest: %d silver_daily rows (%d queues), setup: %s (%.1fs)", len(daily), daily["series"].nunique(),
             setup, time.perf_counter() - started)

    # Process data
    history, left_out = training.split_by_history(daily, t.min_history_days)
    for row in left_out.itertuples(index=False):
        log.info("backtest: queue %s left out: %d open days < training.min_history_days %d", row.series, row.open_days,
                 t.min_history_days)
    if history.empty:
        raise DataError(f"backtest: no queue has >= training.min_history_days == {t.min_history_days} open days "
                        f"before {as_of}")
    blank = make_model()
    try:
        origins = training.backtest_origins(history["date"].min(), history["date"].max(), n_origins, horizon,
                                            step_days, min_train_days=warmup_days(blank.lags, blank.windows) + 28)
    except training.NotEnoughHistory as exc:
        raise DataError(f"--origins {n_origins} --step-days {step_days}: not enough history: {exc}") from None
    holidays = silver.closed_dates_for(cfg, history["date"].min().date(), as_of + timedelta(days=366))
    t0 = time.perf_counter()
    result = training.rolling_backtest(history, holidays, make_model, origins, horizon, retrain=True,
                                       exogenous=exogenous)
    accuracy = evaluation.backtest_accuracy(result.frame, training.CANDIDATE, training.NAIVE)
    summary = evaluation.backtest_summary(accuracy, as_of)
    log.info("backtest: %d origins %s..%s x %d days: %d accuracy rows (%.1fs)", len(origins), origins[0].date(),
             origins[-1].date(), horizon, len(accuracy), time.perf_counter() - t0)

    # Save outputs: the previous backtest's rows and this as-of's backtest summary are replaced
    with ctx.engine.begin() as conn:
        conn.execute(delete(ACC).where(ACC.c.method.in_(evaluation.BACKTEST_METHODS)))
        written = db.insert_frame(conn, ACC, accuracy.assign(run_id=ctx.run_id))
        conn.execute(delete(SUMMARY).where((SUMMARY.c.as_of == as_of)
                                           & SUMMARY.c.method.in_(evaluation.BACKTEST_METHODS)))
        written += db.insert_frame(conn, SUMMARY, summary.assign(run_id=ctx.run_id))

    print(f"Backtest of {setup}: {len(origins)} origins {origins[0].date()}..{origins[-1].date()} "
          f"({step_days} days apart) x {horizon} days, retrained at each origin (open days):")
    print(evaluation.format_summary(summary, ("overall", "queue", "horizon_day")))
    overall = summary.loc[(summary["scope"] == "overall") & (summary["method"] == evaluation.BACKTEST_MODEL)]
    headline = ("no backtest points with actuals" if overall.empty else
                f"wMAPE {100 * overall['wmape'].iloc[0]:.1f}% vs naive {100 * overall['wmape_naive'].iloc[0]:.1f}%")
    return StepResult(written, f"backtest of {setup}, {len(origins)} origins: {headline}")


def _backtest_setup(engine: Engine, cfg: Config) -> tuple[Callable[[], QuantileForecaster], str]:
    """(make_model, description): the production model's parameters, else the configured training setup."""
    try:
        version, model = registry.load_production(engine, cfg)
    except ModelError as exc:
        log.info("backtest: no usable production model (%s); backtesting the configured training setup", exc)
        return (lambda: training.make_forecaster(cfg.training, cfg.forecast.quantiles)), "the configured training setup"

    def make_model() -> QuantileForecaster:
        return QuantileForecaster(**{**model.init_params(), "num_threads": cfg.training.num_threads})

    return make_model, f"production {version}'s setup"


def _origins(conn: Connection, table, as_of: date, methods: tuple[str, ...] | None = None) -> list[date]:
    """Distinct forecast origins before `as_of` in `table` (optionally only rows of `methods`)."""
    stmt = select(table.c.forecast_origin).where(table.c.forecast_origin < as_of).distinct()
    if methods is not None:
        stmt = stmt.where(table.c.method.in_(methods))
    frame = db.read_frame(conn, stmt, table)
    return sorted(frame["forecast_origin"].dt.date) if len(frame) else []


def _leaking_forecasts(conn: Connection, cfg: Config, as_of: date) -> tuple[pd.DataFrame, list[date]]:
    """Stored (origin, model version) pairs whose model saw the origin's target days (evaluation.leaking_forecasts),
    and the origins whose gold_forecast_accuracy rows still hold one (scored by an older version: re-scored now)."""
    used = _model_origins(conn, tables.gold_forecast_daily, as_of)
    versions = pd.DataFrame({"version": used["model_version"].unique()}).merge(
        registry.read_registry(conn).loc[:, ["version", "artifact_path"]], on="version", how="left")
    leaks = evaluation.leaking_forecasts(used, model_choice.training_windows(cfg, versions))
    in_accuracy = _model_origins(conn, ACC, as_of, evaluation.STORED_METHODS).merge(
        leaks, on=["forecast_origin", "model_version"])
    return leaks, sorted(in_accuracy["forecast_origin"].dt.date.unique())


def _model_origins(conn: Connection, table, as_of: date, methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Distinct forecast_origin, model_version before `as_of` in `table` (rows with a model version)."""
    stmt = (select(table.c.forecast_origin, table.c.model_version).distinct()
            .where((table.c.forecast_origin < as_of) & table.c.model_version.is_not(None)))
    if methods is not None:
        stmt = stmt.where(table.c.method.in_(methods))
    return db.read_frame(conn, stmt, table)


def _read_forecasts(conn: Connection, origins: list[date], as_of: date) -> pd.DataFrame:
    """gold_forecast_daily rows of `origins` dated before `as_of`: one row per origin per queue per date."""
    t = tables.gold_forecast_daily
    if not origins:
        return db.read_table(conn, t, where=false())
    frame = db.read_table(conn, t, where=(t.c.forecast_origin >= origins[0]) & (t.c.forecast_origin < as_of)
                          & (t.c.date < as_of))
    return frame.loc[frame["forecast_origin"].isin(pd.to_datetime(origins))].reset_index(drop=True)


def _read_daily(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    t = tables.silver_daily
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of),
                         columns=["queue", "date", "offered", "is_open"])


def _read_open_intervals(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    t = tables.silver_interval
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of) & t.c.is_open.is_(True),
                         columns=["queue", "date", "offered", "is_open"])


def _latest_forecast(conn: Connection, as_of: date) -> pd.DataFrame:
    """gold_forecast_daily rows of the newest origin on or before `as_of` (empty when there is none)."""
    t = tables.gold_forecast_daily
    newest = conn.execute(select(func.max(t.c.forecast_origin)).where(t.c.forecast_origin <= as_of)).scalar()
    return db.read_table(conn, t, where=false() if newest is None else t.c.forecast_origin == newest)


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _format_alerts(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "Alerts: none"
    lines = [f"Alerts ({len(frame)}):"]
    lines += [f"  {r.severity.upper():8} {r.alert_rule:17} {r.queue or '-':12} {r.message}"
              for r in frame.itertuples(index=False)]
    return "\n".join(lines)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be a whole number >= 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("4_evaluate.py", __doc__)
    parser.add_argument("--full", action="store_true", help="re-score every stored origin, not only recent/new ones")
    parser.add_argument("--backtest", action="store_true",
                        help="backtest the production setup over history instead of scoring stored forecasts")
    parser.add_argument("--origins", type=_positive_int, default=None,
                        help="--backtest: number of origins (default: training.backtest_origins)")
    parser.add_argument("--step-days", type=_positive_int, default=None, dest="step_days",
                        help="--backtest: days between origins (default: training.backtest_step_days)")
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

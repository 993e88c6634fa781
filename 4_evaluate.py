#!/usr/bin/env python3
"""Step 4: score stored forecasts against the actuals that arrived, compare with seasonal naive, raise alerts.

For --as-of D every forecast origin in gold_forecast_daily with dates before D that silver_daily now has actuals for
is scored into gold_forecast_accuracy (one row per origin per queue per date per method): the published forecast
(ensemble or lightgbm, or seasonal_naive where step 3 fell back) and weekly seasonal naive recomputed as it would
have been at that origin (naive_benchmark), so "does the model still beat naive?" is answered on the same points
every night. Recent origins are re-scored every night (their actuals keep arriving), older ones once; --full
re-scores every origin. gold_forecast_accuracy_summary: wMAPE, MAPE, MAE, RMSE, bias, total-volume error, pinball
loss and p10-p90 coverage over the trailing evaluation.window_days, overall and by queue, horizon day, weekday and
method, beside the naive benchmark (open days only). gold_alerts: daily MAPE, weekly bias, data freshness, feature
drift (PSI), model vs naive, fallback used (alerts.*), also posted to the chat webhooks of alerts.webhooks (one that
is down costs a warning line, never the night). gold_service_delivered: per queue and interval of the window,
the service delivered (service level against staffing.* targets, ASA, abandon rate) from silver_calls. Each table
is replaced for this as-of / these origins, never duplicated. A forecast whose model had seen the days it forecast
is never scored (its old rows are removed; the message says how many).

--backtest: a rolling-origin backtest of the production setup, retrained at each origin on silver before it, scored
the same way under methods backtest_lightgbm / backtest_naive (only the latest backtest is kept), so they never mix
with real forecasts. Both modes print the accuracy table.

Examples:
  python 4_evaluate.py --as-of 2025-03-10
  python 4_evaluate.py --as-of 2025-03-10 --backtest --origins 8
"""

from __future__ import annotations

import logging
import sys
import time

from common import accuracy_store, chat, evaluate_step, service_delivered, training
from common.cli import StepContext, StepResult, run_step, step_parser, whole_number
from common.errors import DataError

log = logging.getLogger(__name__)

STEP = "4_evaluate"


def body(ctx: StepContext) -> StepResult:
    return _backtest(ctx) if ctx.args.backtest else _evaluate(ctx)


def _evaluate(ctx: StepContext) -> StepResult:
    cfg, as_of = ctx.cfg, ctx.as_of
    window = evaluate_step.night_window(cfg, as_of)
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        inputs = accuracy_store.read_night(conn, cfg, as_of, rescore_from=window.rescore_from,
                                           daily_from=window.daily_from, drift_from=window.drift_from,
                                           full=ctx.args.full)
        delivered_from = service_delivered.window_start(as_of, cfg.evaluation.window_days)
        calls = service_delivered.read_calls(conn, delivered_from, as_of)
    latest = inputs.latest
    log.info("evaluate: %d of %d stored origins to score (%d forecast rows), %d silver_daily rows, %d open intervals, "
             "latest forecast origin %s (%.1fs)", len(inputs.origins), len(inputs.stored), len(inputs.forecasts),
             len(inputs.daily), len(inputs.intervals),
             latest["forecast_origin"].iloc[0].date() if len(latest) else "none", time.perf_counter() - started)

    # Process data
    night = evaluate_step.score_night(cfg, as_of, inputs)
    delivered = service_delivered.service_delivered(calls, *service_delivered.staffing_targets(cfg))

    # Save outputs: one transaction; the scored origins' rows and this as-of's summary and alerts are replaced
    with ctx.engine.begin() as conn:
        written = accuracy_store.replace_night(conn, as_of, inputs.origins, night.accuracy, night.summary,
                                               night.alert_rows, ctx.run_id)
        written += service_delivered.replace_delivered(conn, delivered_from, as_of, delivered, ctx.run_id)
    print(evaluate_step.format_night(night, as_of, cfg.evaluation.window_days))
    chat.post_alerts(cfg.alerts.webhooks, night.alert_rows.to_dict("records"), as_of, ctx.run_id)  # never raises
    return StepResult(written, night.message)


def _backtest(ctx: StepContext) -> StepResult:
    cfg, as_of, t = ctx.cfg, ctx.as_of, ctx.cfg.training
    n_origins = ctx.args.origins or t.backtest_origins
    step_days = ctx.args.step_days or t.backtest_step_days
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = training.read_daily_history(conn, as_of)
        exogenous = training.read_exogenous(conn, t.exogenous_table, as_of) if t.exogenous_table else None
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    make_model, setup = evaluate_step.backtest_setup(ctx.engine, cfg)
    log.info("backtest: %d silver_daily rows (%d queues), setup: %s (%.1fs)", len(daily), daily["series"].nunique(),
             setup, time.perf_counter() - started)

    # Process data
    run = evaluate_step.backtest(cfg, as_of, daily, exogenous, make_model, n_origins, step_days)

    # Save outputs: the previous backtest's rows and this as-of's backtest summary are replaced
    with ctx.engine.begin() as conn:
        written = accuracy_store.replace_backtest(conn, as_of, run.accuracy, run.summary, ctx.run_id)
    print(evaluate_step.format_backtest(run, setup, step_days, cfg.forecast.horizon_days))
    return StepResult(written, evaluate_step.backtest_message(run, setup))


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("4_evaluate.py", __doc__)
    parser.add_argument("--full", action="store_true", help="re-score every stored origin, not only recent/new ones")
    parser.add_argument("--backtest", action="store_true",
                        help="backtest the production setup over history instead of scoring stored forecasts")
    parser.add_argument("--origins", type=whole_number(1), default=None,
                        help="--backtest: number of origins (default: training.backtest_origins)")
    parser.add_argument("--step-days", type=whole_number(1), default=None, dest="step_days",
                        help="--backtest: days between origins (default: training.backtest_step_days)")
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

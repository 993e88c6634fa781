#!/usr/bin/env python3
"""Step 3: forecast each queue forecast.horizon_days ahead, split it into intervals, staff it -> gold.

For --as-of D a model trained only on data before D (model_registry, artifacts verified by sha256) forecasts
every queue for D .. D+horizon-1 recursively from silver_daily before D (the ensemble's weighted p50, the vendor's
forecast as issued before D); closed days and holidays are 0. That is the production model for the nightly run; a
backfill uses the version that was production on D, else the newest one trained before D, never a model that has
seen the days it forecasts. A queue gets seasonal naive instead (reason in fallback_reason) only when the daily
model cannot be used: no such model, a new or short queue, or daily values failing forecast.guards (a negative
value, an open day +-40% off the same weekday's recent mean beyond noise); the run still succeeds. Days are split
into intervals by the same-weekday profile of recent weeks, or a robust one where it fails its checks
(gold_forecast_daily.intraday_profile says which and why), or intraday.default_shape, or not at all (days only);
AHT comes from recent history; staffing.* gives agents and staff for p10/p50/p90: Erlang A with each queue's
patience from its silver_calls (gold_queue_patience), else Erlang C, with per-queue targets (staffing.queues).

Writes gold_forecast_daily, gold_forecast_members, gold_forecast_interval, gold_staffing_interval,
gold_staffing_daily and gold_queue_patience in one transaction (re-running an as-of replaces that origin's rows; other origins stay),
rebuilds gold_dim_date, gold_dim_queue_date and gold_dim_queue in it, and writes
one data_quality_checks row per queue per check. A run with --set overrides is a what-if unless --publish
(overrides of database.*, source.*, report.*, training.model_dir do not count): its outputs go to
<report.output_dir>/<as-of>/whatif-<run_id>/ as CSV files with checks.csv and overrides.json, and nothing to the
database but its pipeline_runs row, so what Power BI shows never changes by accident.

Examples:
  python 3_forecast.py --as-of 2025-03-10
  python 3_forecast.py --as-of 2025-03-10 --set staffing.service_level=0.9             (what-if: files only)
  python 3_forecast.py --as-of 2025-03-10 --set staffing.service_level=0.9 --publish   (replaces the origin)
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta


from common import dims, forecast_run, patience, scenarios, silver, tables, training, validation
from common.cli import StepContext, StepResult, run_step, step_parser, what_if_overrides
from common.errors import DataError
from common.vendor import read_vendor
from common.whatif import save_whatif

log = logging.getLogger(__name__)

STEP = "3_forecast"
GOLD_TABLES = (tables.gold_forecast_daily, tables.gold_forecast_interval, tables.gold_staffing_interval,
               tables.gold_staffing_daily, tables.gold_forecast_members, tables.gold_queue_patience)


def body(ctx: StepContext) -> StepResult:
    cfg, as_of, f = ctx.cfg, ctx.as_of, ctx.cfg.forecast
    forecast_run.check_config(cfg)
    scenario = scenarios.check_name(ctx.args.scenario, ctx.args.publish)
    end = as_of + timedelta(days=f.horizon_days - 1)
    weeks = forecast_run.history_weeks(cfg)
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = forecast_run.read_daily(conn, as_of)
        history_int = forecast_run.read_intervals(conn, as_of - timedelta(days=7 * weeks), as_of)
        # future rows of the drivers too: a model trained with them reads them for the forecast days
        exogenous = (training.read_exogenous(conn, cfg.training.exogenous_table, end + timedelta(days=1))
                     if cfg.training.exogenous_table else None)
        vendor = read_vendor(conn, f.vendor_table, as_of) if f.vendor_table else None
        waits = patience.read_waits(conn, as_of, cfg.staffing.patience_days)
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    version, model, problem = forecast_run.choose_model(ctx.engine, cfg, as_of)
    log.info("forecast: read %d silver_daily rows (%d queues), %d silver_interval rows (last %d weeks); "
             "model %s (%.1fs)", len(daily), daily["queue"].nunique(), len(history_int), weeks,
             version or f"none: {problem}", time.perf_counter() - started)

    # Process data
    s = cfg.staffing
    queue_patience = patience.estimate_patience(waits, daily["queue"].unique(), s.patience_days, s.min_abandons,
                                                s.default_patience_seconds)
    run = forecast_run.build_forecast(cfg, as_of, daily, history_int, exogenous, model, version, problem, vendor,
                                      queue_patience)
    forecast_run.log_planner_lines(run.staffing, run.staff_daily)

    # Save outputs: one transaction; this origin's rows are replaced, other origins stay. A what-if (--set without
    # --publish) is written to files instead, so it never changes what Power BI shows.
    frames = forecast_run.gold_frames(run, queue_patience, ctx.run_id, as_of)
    message = forecast_run.run_message(run, as_of, version, f.horizon_days)
    if scenario:
        with ctx.engine.begin() as conn:
            written = scenarios.write_forecast(conn, ctx, scenario, STEP, frames)
        return StepResult(written, f"scenario '{scenario}': {message}")
    if what_if_overrides(ctx.args.overrides) and not ctx.args.publish:
        return save_whatif(ctx, "3_forecast.py", frames, validation.results_frame(run.checks), message)
    with ctx.engine.begin() as conn:
        written = forecast_run.replace_origin(conn, as_of, frames)
        dims.replace_dims(conn, cfg)  # the date and queue dimensions, to the last date of this forecast
        silver.save_checks(conn, validation.results_frame(run.checks), ctx.run_id, STEP, as_of)
    return StepResult(written, message)


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("3_forecast.py", __doc__)
    parser.add_argument("--publish", action="store_true",
                        help="with --set: write the forecast to gold, replacing the published origin (without it, a "
                             "run with --set is a what-if written to <report.output_dir>/<as-of>/whatif-<run_id>/)")
    scenarios.add_arguments(parser)
    if "--list-scenarios" in (sys.argv[1:] if argv is None else argv):
        return scenarios.list_main(parser, argv)
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

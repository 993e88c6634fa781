#!/usr/bin/env python3
"""Step 3: forecast each queue forecast.horizon_days ahead, split it into intervals, staff it -> gold.

For --as-of D the production model (model_registry, artifacts verified by sha256) forecasts every
queue for D .. D+horizon-1 recursively from silver_daily before D; closed days and holidays are 0.
A queue gets the weekly seasonal naive forecast instead (reason in fallback_reason) when there is
no usable model, the queue is new or has < training.min_history_days open days, or its forecast
fails a check of forecast.guards (negative values, total off the recent same-weekday level, an
interval spike, an intraday shape unlike history); the run still succeeds. Days are split into
intervals by the same-weekday profile of the last forecast.profile_weeks weeks, AHT comes from
recent history (forecast.aht_weeks), and Erlang C (staffing.*) gives agents and staff for p10/p50/p90.

Writes gold_forecast_daily, gold_forecast_interval, gold_staffing_interval and gold_staffing_daily
in one transaction (re-running an as-of replaces that origin's rows; other origins stay) and one
data_quality_checks row per queue per check.

Example:  python 3_forecast.py --as-of 2025-03-10
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import date, timedelta

import lightgbm as lgb
import pandas as pd
from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine

from common import db, guards, intraday, registry, silver, tables, training, validation
from common.calendar import interval_grid, parse_opening_hours
from common.cli import StepContext, StepResult, run_step, step_parser
from common.config import Config
from common.errors import ConfigError, DataError, ModelError, PipelineError
from common.forecaster import QuantileForecaster
from common.staffing import daily_staffing_summary, staffing_table

log = logging.getLogger(__name__)

STEP = "3_forecast"
QUANTILES = [0.1, 0.5, 0.9]
QCOLS = ["p10", "p50", "p90"]
GOLD_TABLES = (tables.gold_forecast_daily, tables.gold_forecast_interval, tables.gold_staffing_interval,
               tables.gold_staffing_daily)


def body(ctx: StepContext) -> StepResult:
    cfg, as_of, f = ctx.cfg, ctx.as_of, ctx.cfg.forecast
    if sorted(f.quantiles) != QUANTILES:
        raise ConfigError(f"forecast.quantiles == {f.quantiles}: step 3 writes p10/p50/p90 columns, so it must be "
                          f"{QUANTILES}")
    if cfg.series.by != "queue":
        raise ConfigError(f"series.by == {cfg.series.by!r} is not supported yet by 3_forecast.py; use series.by: queue")
    end = as_of + timedelta(days=f.horizon_days - 1)
    weeks = max(f.profile_weeks, f.aht_weeks, f.guards.shape_weeks)
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = _read_daily(conn, as_of)
        history_int = _read_intervals(conn, as_of - timedelta(days=7 * weeks), as_of)
        # future rows of the drivers too: a model trained with them reads them for the forecast days
        exogenous = (training.read_exogenous(conn, cfg.training.exogenous_table, end + timedelta(days=1))
                     if cfg.training.exogenous_table else None)
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    version, model, problem = _production_model(ctx.engine, cfg)
    log.info("forecast: read %d silver_daily rows (%d queues), %d silver_interval rows (last %d weeks); "
             "model %s (%.1fs)", len(daily), daily["queue"].nunique(), len(history_int), weeks,
             version or f"none: {problem}", time.perf_counter() - started)

    # Process data
    t0 = time.perf_counter()
    queues = sorted(daily["queue"].unique())
    first = daily["date"].min().date()
    closed = silver.closed_dates_for(cfg, first, as_of + timedelta(days=366))
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    calendar = guards.day_calendar(queues, first, end, hours, closed)
    origin = pd.Timestamp(as_of)
    history = guards.complete_history(daily, calendar.loc[calendar["date"] < origin])
    future = calendar.loc[calendar["date"] >= origin].reset_index(drop=True)
    checks = guards.check_history_recency(daily, as_of)
    reasons, model_checks = guards.model_eligibility(history, model.categories_ if model else None,
                                                     cfg.training.min_history_days, problem)
    eligible = [q for q in queues if q not in reasons]
    model_daily = _empty_daily()
    if eligible:
        try:
            model_daily = _model_forecast(model, history, future, closed, exogenous, eligible)
        except (PipelineError, lgb.basic.LightGBMError) as exc:
            log.warning("forecast: model %s failed, every queue falls back: %s", version, exc)
            reasons, model_checks = guards.model_eligibility(history, None, cfg.training.min_history_days,
                                                             f"model forecast failed ({version}): {exc}")
            eligible = []
    checks += model_checks
    fallback, notes = guards.fallback_forecast(history, future, QUANTILES)
    log.info("forecast: %d queues x %d days: %d by model, %d need the fallback before any check (%.1fs)",
             len(queues), f.horizon_days, len(eligible), len(queues) - len(eligible), time.perf_counter() - t0)

    t0 = time.perf_counter()
    minutes = cfg.rules.interval_minutes
    grid = interval_grid(queues, as_of, end, minutes, cfg.timezone, hours, closed)
    profile = intraday.intraday_profile(history_int, as_of, f.profile_weeks, closed)
    reference = profile if f.guards.shape_weeks == f.profile_weeks else intraday.intraday_profile(
        history_int, as_of, f.guards.shape_weeks, closed)
    limits = guards.GuardLimits(f.guards.max_total_deviation, f.guards.total_weeks, f.guards.max_interval_ratio,
                                f.guards.min_shape_correlation)
    day_open = future.loc[:, ["queue", "date", "is_open"]]
    model_int = intraday.split_daily(model_daily, profile, grid)
    guard_checks = guards.check_forecast(model_daily.merge(day_open, on=["queue", "date"]), model_int, history,
                                         reference, as_of, limits, guards.LIGHTGBM)
    reasons |= guards.failed_reasons(guard_checks)
    for queue, note in notes.items():
        reasons[queue] = f"{reasons.get(queue, 'no model forecast')}; {note}"
    fallback = fallback.loc[fallback["queue"].isin(list(reasons))]
    fallback_int = intraday.split_daily(fallback, profile, grid)
    unchecked = [q for q in reasons if q not in eligible]  # their fallback is what gets published: check it too
    guard_checks += guards.check_forecast(
        fallback.loc[fallback["queue"].isin(unchecked)].merge(day_open, on=["queue", "date"]),
        fallback_int.loc[fallback_int["queue"].isin(unchecked)], history, reference, as_of, limits,
        guards.SEASONAL_NAIVE)
    checks += guard_checks
    forecast = guards.apply_fallback(model_daily, fallback, reasons, version)
    interval_fc = pd.concat([model_int.loc[~model_int["queue"].isin(list(reasons))], fallback_int], ignore_index=True)
    _log_checks(checks)
    log.info("forecast: %d daily rows (%d queues lightgbm, %d seasonal naive), %d interval rows (%.1fs)",
             len(forecast), forecast.loc[forecast["method"] == guards.LIGHTGBM, "queue"].nunique(),
             forecast.loc[forecast["method"] == guards.SEASONAL_NAIVE, "queue"].nunique(), len(interval_fc),
             time.perf_counter() - t0)

    t0 = time.perf_counter()
    aht = intraday.aht_forecast(history_int, grid, as_of, f.aht_weeks, f.default_aht_seconds)
    interval_fc = interval_fc.merge(aht.loc[:, ["queue", "interval_start_utc", "aht_seconds"]],
                                    on=["queue", "interval_start_utc"], how="left")
    staffing_in = interval_fc.rename(columns={q: f"volume_{q}" for q in QCOLS})
    s = cfg.staffing
    staffing = staffing_table(staffing_in, minutes, s.service_level, s.answer_seconds, s.max_occupancy, s.shrinkage,
                              s.asa_target_seconds)
    staff_daily = daily_staffing_summary(staffing, minutes)
    log.info("forecast: staffing for %d intervals, %d queue-days (%.1fs)", len(staffing), len(staff_daily),
             time.perf_counter() - t0)
    _log_planner_lines(staffing, staff_daily)

    # Save outputs: one transaction; this origin's rows are replaced, other origins stay
    stamp = {"run_id": ctx.run_id, "forecast_origin": origin}
    frames = {
        tables.gold_forecast_daily: forecast.assign(**stamp),
        tables.gold_forecast_interval: interval_fc.assign(**stamp),
        tables.gold_staffing_interval: staffing.assign(**stamp),
        tables.gold_staffing_daily: staff_daily.assign(**stamp),
    }
    with ctx.engine.begin() as conn:
        written = _replace_origin(conn, as_of, frames)
        silver.save_checks(conn, validation.results_frame(checks), ctx.run_id, STEP, as_of)
    n_fallback = forecast.loc[forecast["method"] == guards.SEASONAL_NAIVE, "queue"].nunique()
    message = (f"origin {as_of}: {len(queues)} queues x {f.horizon_days} days, {len(queues) - n_fallback} lightgbm "
               f"({version or 'no model'}), {n_fallback} seasonal naive; {len(interval_fc)} intervals staffed, "
               f"{staff_daily['staff_hours_p50'].sum():.0f} staff-hours (p50); "
               f"{sum(not c.passed for c in checks)} of {len(checks)} checks failed")
    return StepResult(written, message)


def _read_daily(conn: Connection, as_of: date) -> pd.DataFrame:
    """silver_daily before `as_of`, only what forecasting needs: one row per queue per date."""
    t = tables.silver_daily
    frame = db.read_table(conn, t, where=t.c.date < as_of,
                          columns=["queue", "date", "offered", "is_open", "is_holiday"])
    return frame.sort_values(["queue", "date"], kind="stable").reset_index(drop=True)


def _read_intervals(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    """silver_interval of dates start .. as_of-1 (profile, AHT and shape history): one row per queue per interval."""
    t = tables.silver_interval
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of),
                         columns=["queue", "date", "interval_start", "interval_start_utc", "offered", "handled",
                                  "aht_seconds", "is_open"])


def _production_model(engine: Engine, cfg: Config) -> tuple[str | None, QuantileForecaster | None, str | None]:
    """(version, model, None), or (None, None, why) when there is no usable production model."""
    try:
        version, model = registry.load_production(engine, cfg)
    except ModelError as exc:
        log.warning("forecast: no usable production model, every queue gets seasonal naive: %s", exc)
        return None, None, f"production model not usable: {exc}"
    return version, model, None


def _model_forecast(model: QuantileForecaster, history: pd.DataFrame, future: pd.DataFrame, closed: pd.DataFrame,
                    exogenous: pd.DataFrame | None, queues: list[str]) -> pd.DataFrame:
    """The model's recursive forecast of `queues`: one row per queue per future date."""
    def as_series(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["queue"].isin(queues)].rename(columns={"queue": "series", "offered": "y"})

    fc = model.forecast(as_series(history), as_series(future), closed, exogenous=exogenous)
    return fc.rename(columns={"series": "queue"}).loc[:, ["queue", "date", "horizon_day", *QCOLS]]


def _empty_daily() -> pd.DataFrame:
    return pd.DataFrame({"queue": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                         "horizon_day": pd.Series(dtype="int64"), **{q: pd.Series(dtype=float) for q in QCOLS}})


def _replace_origin(conn: Connection, as_of: date, frames: dict) -> int:
    written = 0
    for table, frame in frames.items():
        conn.execute(delete(table).where(table.c.forecast_origin == as_of))
        written += db.insert_frame(conn, table, frame)
    return written


def _log_checks(checks: list[validation.CheckResult]) -> None:
    """One line per queue with every check's verdict, and a warning with the detail of each failure."""
    by_queue: dict[str, list[str]] = {}
    for c in checks:
        value = "" if c.value is None else f" {c.value:.3g}"
        by_queue.setdefault(c.queue or "-", []).append(f"{c.check_name} {'ok' if c.passed else 'FAILED'}{value}")
        if not c.passed:
            log.warning("check %s [%s]: %s", c.check_name, c.queue, c.detail)
    for queue, parts in sorted(by_queue.items()):
        log.info("checks %s: %s", queue, ", ".join(parts))


def _log_planner_lines(staffing: pd.DataFrame, staff_daily: pd.DataFrame) -> None:
    """Per queue, its first forecast day with volume: the staffing range at the peak and the day's staff-hours."""
    busy = staff_daily.loc[staff_daily["volume_p50"] > 0].sort_values(["queue", "date"]).groupby("queue").head(1)
    for row in busy.itertuples(index=False):
        day = staffing.loc[(staffing["queue"] == row.queue) & (staffing["interval_start"].dt.normalize() == row.date)]
        peak = day.loc[day["staff_p50"].idxmax()]
        log.info("%s %s: %d-%d staff at %s peak (p10-p90), %.0f staff-hours (p50), %.0f contacts (p50)",
                 row.queue, f"{row.date:%Y-%m-%d}", peak["staff_p10"], peak["staff_p90"],
                 f"{peak['interval_start']:%H:%M}", row.staff_hours_p50, row.volume_p50)


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("3_forecast.py", __doc__)
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

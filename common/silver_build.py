"""Step 1's orchestration: plan the rebuild, build silver chunk by chunk, check it, write it in one transaction.

`1_build_silver.py` only parses its flags and calls `build_silver`. The pieces live below this module:
`silver` (planning, reading bronze, writing silver), `cdr` (contacts and aggregates) and `validation`
(the data checks). Data checks run on all rebuilt days before anything is committed; a failed critical
check raises `DataError` and leaves silver as it was.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta

import pandas as pd

from sqlalchemy import delete, func, select

from common import completeness, daily_history, db, report_checks, silver, tables, validation
from common.aggregate import aggregate_daily, aggregate_intervals, clip_aht, intervals_from_report
from common.cli import StepContext, StepResult
from common.errors import DataError
from common.opening_hours import parse_opening_hours

log = logging.getLogger(__name__)

STEP = "1_build_silver"


class _CriticalCheck(Exception):
    """Raised inside the write transaction to roll it back when a critical check failed."""

    def __init__(self, critical: list[validation.CheckResult]) -> None:
        super().__init__("critical data check failed")
        self.critical = critical


def build_silver(ctx: StepContext, full: bool, chunk_days: int, chunk_rows: int, workers: int) -> StepResult:
    """Rebuild the changed days (every day with `full`) before the as-of; return the step's outcome.

    The intervals or CDRs of `source:` first; then the daily totals (source.kind daily, or daily_history) for the
    queue-days those do not cover (`common.daily_history`).
    """
    cfg = ctx.cfg
    daily_spec = cfg.source if cfg.source.kind == "daily" else cfg.daily_history
    detailed = None if cfg.source.kind == "daily" else _build_detailed(ctx, full, chunk_days, chunk_rows, workers)
    if daily_spec is None:
        assert detailed is not None
        return detailed
    written, message = _build_from_daily(ctx)
    if detailed is None:
        return StepResult(written, message)
    status = "skipped" if detailed.status == "skipped" and not written else "success"
    return StepResult(detailed.rows_written + written, f"{detailed.message}; {message}", status)


def _build_from_daily(ctx: StepContext) -> tuple[int, str]:
    """Replace every silver_daily row built from daily totals (a few thousand rows: rebuilt whole each night)."""
    cfg, as_of = ctx.cfg, ctx.as_of
    # Load inputs
    with ctx.engine.connect() as conn:
        rows = db.read_table(conn, tables.bronze_daily, where=tables.bronze_daily.c.date < as_of)
        d = tables.silver_daily
        firsts = conn.execute(select(d.c.queue, func.min(d.c.date)).where(d.c.source_kind.is_(None))
                              .group_by(d.c.queue)).all()
    detailed_from = {q: pd.Timestamp(day).date() for q, day in firsts}
    # Process data
    rows = daily_history.newest_daily_rows(rows, cfg.rules.queue_aliases)
    daily, missing = pd.DataFrame(), pd.DataFrame()
    if len(rows):
        last_day = as_of - timedelta(days=1)
        closed = silver.closed_dates_for(cfg, rows["date"].min().date(),
                                         as_of + timedelta(days=cfg.validation.holiday_horizon_days))
        hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
        daily, missing = daily_history.daily_from_history(rows, hours, closed, detailed_from, last_day)
        daily, _ = clip_aht(daily, cfg.validation.aht_min_seconds, cfg.validation.aht_max_seconds)
    checks = daily_history.check_daily_completeness(daily, missing, cfg.validation.ignore_dates) if len(daily) else []
    for r in checks:
        if not r.passed:
            log.warning("check %s (%s) [%s]: %s", r.check_name, r.severity, r.queue, r.detail)
    # Save outputs
    with ctx.engine.begin() as conn:
        conn.execute(delete(tables.silver_daily).where(tables.silver_daily.c.source_kind == daily_history.SOURCE_KIND))
        written = db.insert_frame(conn, tables.silver_daily, daily) if len(daily) else 0
        if checks:  # appended: the detailed build's checks of this run stay
            db.insert_frame(conn, tables.data_quality_checks, validation.results_frame(checks).assign(
                run_id=ctx.run_id, step=STEP, as_of=pd.Timestamp(as_of), checked_at=db.utc_now()))
    span = f" ({daily['date'].min():%Y-%m-%d}..{daily['date'].max():%Y-%m-%d})" if len(daily) else ""
    message = (f"{written} queue-days from daily totals{span}, {daily['queue'].nunique() if len(daily) else 0} "
               f"queues, {len(missing)} open days missing from the export")
    log.info("silver: %s", message)
    return written, message


def _build_detailed(ctx: StepContext, full: bool, chunk_days: int, chunk_rows: int, workers: int) -> StepResult:
    """silver from the intervals or CDRs of `source:`.

    Days are built in chunks of at most `chunk_days` contiguous days and `chunk_rows` bronze rows; with
    several chunks, `workers` processes read bronze and build contacts ahead while this one writes.
    """
    cfg, as_of, v = ctx.cfg, ctx.as_of, ctx.cfg.validation
    started = time.perf_counter()

    # Load inputs (what planning needs; bronze itself is read chunk by chunk below)
    with ctx.engine.connect() as conn:
        plan = silver.plan_build(conn, cfg, as_of, full=full)
        if not plan.dates:
            return StepResult(0, f"nothing to rebuild before {as_of}: bronze unchanged since the last build", "skipped")
        history_max = silver.history_daily_max(conn, plan.dates)
        newest = silver.newest_contact(conn, cfg, as_of)
        comparable = silver.open_intervals_near(conn, plan.dates, completeness.HISTORY_DAYS)
        last_built = silver.last_built_date(conn)
    # Days new since the last successful build can stop the night; older ones (a first load's history,
    # a re-loaded old export) are listed as warnings. A first load's "new" days are its last week.
    halt_from = (last_built + timedelta(days=1) if last_built
                 else as_of - timedelta(days=completeness.FIRST_LOAD_HALT_DAYS))
    chunks = silver.chunk_dates(plan.dates, chunk_days, silver.bronze_rows_per_day(plan), chunk_rows)
    workers = workers if len(chunks) > 1 else 0
    log.info("silver: rebuilding %d days %s..%s in %d chunks, %d worker processes (%.1fs)", len(plan.dates),
             plan.dates[0], plan.dates[-1], len(chunks), workers, time.perf_counter() - started)
    closed = silver.closed_dates_for(cfg, plan.read_from, as_of + timedelta(days=v.holiday_horizon_days))

    # Process data + Save outputs, chunk by chunk in one transaction: a failed critical check rolls all back.
    known = plan.first_date_per_queue
    all_intervals, all_daily, counts = [], [], Counter()
    reconciled: list[validation.CheckResult] = []
    restated, misaligned = [], []  # interval reports: restated intervals, rows that span two grid intervals
    written = contacts = clipped = 0
    results = silver.iter_chunk_results(cfg, plan, chunks, closed, workers, ctx.args.log_level, ctx.run_id)
    try:
        with ctx.engine.begin() as conn:
            for dates, chunk in zip(chunks, results):
                chunk_started = time.perf_counter()
                known = silver.queue_first_dates_merged(known, chunk.first_dates)
                part = silver.chunk_plan(plan, dates, known, cfg)
                grid = silver.calendar_grid(cfg, part, closed)
                if chunk.calls is not None:
                    counts.update(chunk.counts)
                    contacts += len(chunk.calls)
                    intervals = aggregate_intervals(chunk.calls, grid)
                else:
                    intervals = intervals_from_report(chunk.report, grid, cfg.rules.interval_minutes,
                                                      with_source_rows=True)
                    intervals, fixed = validation.reconcile_offered(intervals)
                    reconciled += fixed
                    restated.append(report_checks.restated_intervals(chunk.report))
                    misaligned.append(report_checks.misaligned_rows(chunk.report, cfg.rules.interval_minutes))
                all_intervals.append(intervals)
                intervals, n_clipped = clip_aht(intervals, v.aht_min_seconds, v.aht_max_seconds)
                clipped += n_clipped
                daily = aggregate_daily(intervals, closed)
                all_daily.append(daily)
                written += silver.replace_silver(conn, part, chunk.calls, intervals, daily, ctx.run_id)
                log.info("silver: %s..%s: %d bronze rows -> %s%d intervals, %d queue-days (%.1fs writing)",
                         dates[0], dates[-1], chunk.bronze_rows,
                         "" if chunk.calls is None else f"{len(chunk.calls)} contacts, ", len(intervals), len(daily),
                         time.perf_counter() - chunk_started)
                del chunk

            # The checks see all rebuilt days at once, exactly as if they had been built in one go.
            intervals = pd.concat(all_intervals).sort_values(["queue", "interval_start_utc"], kind="stable")
            daily = pd.concat(all_daily).sort_values(["queue", "date"], kind="stable").reset_index(drop=True)
            checks = [
                *validation.check_aht(intervals, v.aht_min_seconds, v.aht_max_seconds),
                validation.check_recency(newest, silver.last_open_end(cfg, sorted(known), as_of, closed),
                                         v.max_data_age_hours),
                *completeness.check_completeness(intervals, v.completeness_min_share, v.min_calls_per_open_interval,
                                                 v.ignore_dates, history=comparable, halt_from=halt_from,
                                                 closed_dates=closed),
                validation.check_holiday_horizon(closed, cfg.rules.holidays.country, as_of, v.holiday_horizon_days),
            ]
            intervals, _ = clip_aht(intervals.reset_index(drop=True), v.aht_min_seconds, v.aht_max_seconds)
            checks += validation.check_volume_range(daily, history_max, v.volume_max_ratio)
            checks += reconciled
            if restated:
                checks += report_checks.check_restated(pd.concat(restated, ignore_index=True))
                checks += report_checks.check_alignment(pd.concat(misaligned, ignore_index=True),
                                                        cfg.rules.interval_minutes)
            checks += validation.check_silver_schema(intervals, daily)
            checks_frame = validation.results_frame(checks)
            for r in checks:
                if not r.passed:
                    log.warning("check %s (%s)%s: %s", r.check_name, r.severity, f" [{r.queue}]" if r.queue else "",
                                r.detail)
            critical = validation.failed_critical(checks)
            if critical:
                raise _CriticalCheck(critical)
            silver.save_checks(conn, checks_frame, ctx.run_id, STEP, as_of)
    except _CriticalCheck as failed:
        # Checks always (so a failed night shows why), in their own transaction; silver stays as it was.
        with ctx.engine.begin() as conn:
            silver.save_checks(conn, checks_frame, ctx.run_id, STEP, as_of)
        raise DataError("critical data check failed, silver not written: "
                        + " | ".join(f"{c.check_name}: {c.detail}" for c in failed.critical)) from None
    finally:
        results.close()  # stops the worker processes if a chunk failed
    if counts:
        log.info("silver: %s", ", ".join(f"{k}={counts[k]}" for k in counts))
    open_days = daily[daily["is_open"]]
    message = (f"{len(plan.dates)} days rebuilt ({plan.dates[0]}..{plan.dates[-1]}): "
               f"{contacts} contacts, {len(intervals)} intervals, {len(daily)} queue-days, "
               f"{int(open_days['offered'].sum())} offered on open days; {len(checks)} checks, "
               f"{int((~checks_frame['passed']).sum())} warnings; {clipped} AHT values clipped")
    return StepResult(written, message)

#!/usr/bin/env python3
"""Step 1: build the silver tables from bronze: contacts, intervals and days, validated.

CDR sources: dedup re-exported legs, collapse transfer legs into their first
touch, collapse true redials, drop short abandons from demand, flag contacts
outside opening hours and on holidays, then aggregate onto the complete
interval calendar (silver_interval) and per day (silver_daily). Interval-report
sources go straight to the aggregates. Data checks run before anything is
written; a failed critical check stops the step with exit code 2 and leaves
silver as it was. Incremental: only days whose bronze rows changed are rebuilt
(use --full to rebuild everything).

Example:  python 1_build_silver.py --as-of 2025-03-10
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

import pandas as pd

from common import silver, validation
from common.cdr import aggregate_daily, aggregate_intervals, clip_aht, contacts_from_legs, intervals_from_report
from common.cli import StepContext, StepResult, run_step, step_parser
from common.errors import DataError

log = logging.getLogger(__name__)


def body(ctx: StepContext) -> StepResult:
    cfg, as_of = ctx.cfg, ctx.as_of
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        plan = silver.plan_build(conn, cfg, as_of, full=ctx.args.full)
        if not plan.dates:
            return StepResult(0, f"nothing to rebuild before {as_of}: bronze unchanged since the last build", "skipped")
        bronze = silver.read_bronze(conn, cfg, plan)
        history_max = silver.history_daily_max(conn, plan.dates)
        newest = silver.newest_contact(conn, cfg, as_of)
    log.info("silver: rebuilding %d days %s..%s from %d bronze rows (%.1fs)", len(plan.dates), plan.dates[0],
             plan.dates[-1], len(bronze), time.perf_counter() - started)

    # Process data
    closed = silver.closed_dates_for(cfg, plan.read_from, as_of + timedelta(days=cfg.validation.holiday_horizon_days))
    grid = silver.calendar_grid(cfg, plan, closed)
    calls = None
    if cfg.source.kind == "cdr":
        calls, counts = contacts_from_legs(bronze, silver.contact_rules(cfg, closed))
        calls = calls[calls["date"].isin(pd.to_datetime(plan.dates))].reset_index(drop=True)
        log.info("silver: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
        intervals = aggregate_intervals(calls, grid)
    else:
        intervals = intervals_from_report(bronze, grid, cfg.rules.interval_minutes)
    v = cfg.validation
    checks = [
        *validation.check_aht(intervals, v.aht_min_seconds, v.aht_max_seconds),
        validation.check_recency(newest, silver.last_open_end(cfg, sorted(plan.first_date_per_queue), as_of, closed),
                                 v.max_data_age_hours),
        *validation.check_completeness(intervals, v.completeness_min_share, v.min_calls_per_open_interval,
                                       v.ignore_dates),
        validation.check_holiday_horizon(closed, cfg.rules.holidays.country, as_of, v.holiday_horizon_days),
    ]
    intervals, clipped = clip_aht(intervals, v.aht_min_seconds, v.aht_max_seconds)
    daily = aggregate_daily(intervals, closed)
    checks += validation.check_volume_range(daily, history_max, v.volume_max_ratio)
    checks += validation.check_silver_schema(intervals, daily)
    results = validation.results_frame(checks)
    for r in checks:
        if not r.passed:
            log.warning("check %s (%s)%s: %s", r.check_name, r.severity, f" [{r.queue}]" if r.queue else "", r.detail)

    # Save outputs: checks always (so a failed night shows why), silver only when no critical check failed.
    critical = validation.failed_critical(checks)
    if critical:
        with ctx.engine.begin() as conn:
            silver.save_checks(conn, results, ctx.run_id, "1_build_silver", as_of)
        raise DataError("critical data check failed, silver not written: "
                        + " | ".join(f"{c.check_name}: {c.detail}" for c in critical))
    with ctx.engine.begin() as conn:
        silver.save_checks(conn, results, ctx.run_id, "1_build_silver", as_of)
        written = silver.replace_silver(conn, plan, calls, intervals, daily, ctx.run_id)
    open_days = daily[daily["is_open"]]
    message = (f"{len(plan.dates)} days rebuilt ({plan.dates[0]}..{plan.dates[-1]}): "
               f"{0 if calls is None else len(calls)} contacts, {len(intervals)} intervals, {len(daily)} queue-days, "
               f"{int(open_days['offered'].sum())} offered on open days; {len(checks)} checks, "
               f"{int((~results['passed']).sum())} warnings; {clipped} AHT values clipped")
    return StepResult(written, message)


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("1_build_silver.py", __doc__)
    parser.add_argument("--full", action="store_true", help="rebuild every day, not only days whose bronze changed")
    return run_step("1_build_silver", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

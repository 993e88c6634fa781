#!/usr/bin/env python3
"""Step 6: the capacity plan -> gold_capacity_plan and gold_capacity_drivers, weekly FTE ranges 4-26 weeks ahead.

For --as-of D, from silver before D only: weekly volume per queue by the method its own rolling backtest (weekly
origins over capacity.backtest_weeks) forecast best 4..capacity.horizon_weeks weeks ahead (the seasonal shape and
level, the same without trend, or recent weekday means), AHT by its recent level (or damped trend), and a Monte
Carlo of capacity.simulations runs (seeded: the same inputs give the same plan) drawing volume and AHT from the
backtest's errors at each horizon, shrinkage (staffing.*, per queue and month, +- capacity.shrinkage_sd) and the
monthly attrition rate. Need = agent-hours the staffing model (Erlang A/C on the queue's typical week, targets
staffing.*) asks for / (1 - shrinkage) / paid hours a week; supply = capacity.queues.<q>.headcount after attrition
and planned hires (capacity.queues.<q>.hires, capacity.hires_file) with their ramp-up. Rows per queue and the
centre ('(centre)') per ISO week from capacity.first_week; drivers: which input drives the spread, per block.

Runs on capacity.run_weekdays (Monday by default; the first plan whatever the day; --force plans anyway).
--scenario NAME --set KEY=VALUE writes under that scenario (gold_scenarios keeps its overrides), never over the
published plan; --set alone is a what-if written to files (as step 3's), --set --publish replaces the published
plan. One transaction.

Examples:
  python 6_capacity_plan.py --as-of 2025-03-10
  python 6_capacity_plan.py --as-of 2025-03-10 --scenario hire20 --set 'capacity.queues.Support.hires=[{week: 2025-04-07, count: 20}]'
  python 6_capacity_plan.py --list-scenarios
"""

from __future__ import annotations

import logging
import sys
import time

import pandas as pd

from common import capacity_step, scenarios, tables
from common.capacity_plan import make_plan
from common.cli import StepContext, StepResult, recorded_overrides, run_step, step_parser, what_if_overrides
from common.errors import DataError
from common.progress import progress
from common.tables_capacity import CENTRE, PUBLISHED
from common.whatif import save_whatif

log = logging.getLogger(__name__)

STEP = "6_capacity_plan"


def body(ctx: StepContext) -> StepResult:
    cfg, as_of, args = ctx.cfg, ctx.as_of, ctx.args
    scenario = scenarios.check_name(args.scenario, args.publish)
    skipped = capacity_step.skip_reason(cfg, as_of, args.force, scenario, ctx.engine)
    if skipped:
        return StepResult(0, skipped, "skipped")
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily, intervals, waits = capacity_step.read_inputs(conn, cfg, as_of)
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    hires = capacity_step.hires(cfg)
    log.info("capacity: read %d silver_daily rows (%d queues), %d silver_interval rows (%.1fs)", len(daily),
             daily["queue"].nunique(), len(intervals), time.perf_counter() - started)

    # Process data
    calendar = capacity_step.planned_calendar(cfg, sorted(daily["queue"].astype("str").unique()), as_of)
    plan = make_plan(cfg, as_of, daily, intervals, calendar, capacity_step.staffing_args(cfg, daily, waits), hires,
                     lambda items: progress(items, desc="capacity: backtest", unit="origin"))
    for line in plan.drivers["sentence"]:
        log.info("capacity: %s", line)
    if plan.default_band:
        log.warning("capacity: %s: too little history for the plan's backtest; their volume range is assumed "
                    "(10%% at 4 weeks, growing with the square root of the weeks)", ", ".join(plan.default_band))

    # Save outputs: (scenario, as-of) replaced in one transaction; a what-if (--set alone) to files only
    name = scenario or PUBLISHED
    if what_if_overrides(args.overrides) and not (scenario or args.publish):
        return save_whatif(ctx, "6_capacity_plan.py", {tables.gold_capacity_plan: plan.rows,
                                                       tables.gold_capacity_drivers: plan.drivers},
                           pd.DataFrame(), f"capacity plan of {as_of}")
    with ctx.engine.begin() as conn:
        written = capacity_step.write(conn, name, as_of, ctx.run_id, plan.rows, plan.drivers)
        if scenario:
            scenarios.record(conn, scenario, STEP, as_of, ctx.run_id,
                             recorded_overrides(args.overrides, cfg.database_url), args.scenario_note)
    centre = plan.rows.loc[plan.rows["queue"] == CENTRE]
    weeks = f"weeks {centre['iso_week'].iloc[0]}..{centre['iso_week'].iloc[-1]}" if len(centre) else "no weeks"
    return StepResult(written, f"capacity plan '{name}' of {as_of}: {plan.rows['queue'].nunique() - 1} queues, "
                               f"{weeks}, {cfg.capacity.simulations} simulations, backtest on "
                               f"{plan.backtest_origins} origins ({time.perf_counter() - started:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("6_capacity_plan.py", __doc__)
    parser.add_argument("--force", action="store_true", help="plan even when capacity.run_weekdays excludes today")
    parser.add_argument("--publish", action="store_true",
                        help="with --set: replace the published plan (without it, a run with --set is a what-if "
                             "written to <report.output_dir>/<as-of>/whatif-<run_id>/)")
    scenarios.add_arguments(parser)
    if "--list-scenarios" in (sys.argv[1:] if argv is None else argv):
        return scenarios.list_main(parser, argv)
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

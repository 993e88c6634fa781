#!/usr/bin/env python3
"""Step 3.5: reforecast today's remaining intervals from today's calls so far (run every 30 minutes by day).

At --at (a local wall-clock time; default now in the configured timezone) it loads the new export rows into bronze
(step 0's path: the CSV drop or the SQL watermark; --no-load to skip), builds today's intervals so far in memory as
silver does (never writing silver or training data: the night never sees a partial day), and for every queue
projects the day from the intervals that have ended against the share of the day normally in by then, shrunk toward
the nightly forecast by how much of the day has been seen (common/reforecast.py). The rest is spread over the
remaining intervals (the one in progress: its calls so far plus the forecast of the rest of it), staffed with
Erlang as in step 3, and, from intraday.tomorrow_after on, tomorrow's nightly forecast is adjusted too.

Writes gold_forecast_intraday (every issue kept: re-running the same --at replaces only that issue) and one
`intraday_deviation` warning in gold_alerts per queue whose projected day is more than intraday.alert_deviation
off the nightly forecast, in one transaction. A day the nightly run did not forecast is reforecast from the
same-weekday mean of the last 4 weeks (method reforecast_no_nightly, said in the log).

Examples:
  python 3_5_reforecast_intraday.py                       (now)
  python 3_5_reforecast_intraday.py --at 12:00            (today at noon)
  python 3_5_reforecast_intraday.py --at "2025-03-10 14:30" --no-load
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

from common import reforecast_step as rs
from common.bronze import load_sources
from common.cli import StepContext, StepResult, run_step, step_parser

log = logging.getLogger(__name__)

STEP = "3_5_reforecast_intraday"


def body(ctx: StepContext) -> StepResult:
    cfg = ctx.cfg
    at = rs.parse_at(ctx.args.at, cfg.timezone, ctx.args.as_of)
    day = at.date()
    started = time.perf_counter()
    # the oldest replayed week's own profile reaches profile_weeks behind its Monday
    weeks = max(cfg.forecast.aht_weeks, cfg.intraday.calibration_weeks + max(cfg.forecast.profile_weeks + 1,
                                                                             rs.MEAN_WEEKS))

    # Load inputs (the new export rows first, in their own transaction, as step 0 loads them)
    if not ctx.args.no_load:
        with ctx.engine.begin() as conn:
            loaded = load_sources(conn, cfg, ctx.run_id).rows_loaded
        log.info("reforecast: %d new export rows loaded into bronze", loaded)
    with ctx.engine.connect() as conn:
        origin, nightly = rs.read_nightly(conn, day)
        patience = rs.read_patience(conn, origin)
        history = rs.read_history(conn, day - timedelta(days=7 * weeks), day)
        queues = sorted(set(nightly["queue"].astype("str")) | set(history["queue"].astype("str")))
        observed = rs.observed_today(conn, cfg, day, rs.at_utc(at, cfg.timezone),
                                     lambda seen: rs.today_grid(cfg, day, sorted(set(queues) | set(seen))))
    grid = rs.today_grid(cfg, day, sorted(set(queues) | set(observed["queue"].astype("str"))))
    log.info("reforecast: at %s: nightly forecast of origin %s (%d interval rows), %d history rows, %.0f calls today "
             "so far (%.1fs)", f"{at:%Y-%m-%d %H:%M}", origin, len(nightly), len(history), observed["offered"].sum(),
             time.perf_counter() - started)

    # Process data
    rows, summary, alerts = rs.build(cfg, at, nightly, history, observed, grid, patience)
    for s in summary.itertuples(index=False):
        log.info("reforecast %s: %.0f calls so far (%.0f%% of the day), day projected %.0f (nightly %.0f); "
                 "k %.2f, half-life %.1f h", s.queue, s.observed_so_far, 100 * s.share_so_far, s.projected_day_p50,
                 s.nightly_day_p50, s.trust_k, s.half_life_hours)
    for a in alerts:
        log.warning("alert %s", a.message)

    # Save outputs: one transaction; this rows and today's intraday alerts replaced
    with ctx.engine.begin() as conn:
        written = rs.save(conn, rows, alerts, rs.at_utc(at, cfg.timezone), day, ctx.run_id)
    return StepResult(written, f"at {at:%Y-%m-%d %H:%M}: {summary['queue'].nunique()} queues, {len(rows)} intervals "
                               f"reforecast, {len(alerts)} deviation alerts ({time.perf_counter() - started:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("3_5_reforecast_intraday.py", __doc__)
    parser.add_argument("--at", default=None,
                        help="local wall-clock time of the reforecast: HH:MM (today) or 'YYYY-MM-DD HH:MM' "
                             "(default: now in the configured timezone; with --as-of, HH:MM is on that day)")
    parser.add_argument("--no-load", action="store_true", dest="no_load",
                        help="do not load new export rows first (use bronze as it is)")
    args, _ = parser.parse_known_args(argv)
    if args.at and len(args.at) > 5 and args.as_of is None:  # pipeline_runs.as_of is the day reforecast
        argv = [*(sys.argv[1:] if argv is None else argv), "--as-of", args.at[:10]]
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Step 1: build the silver tables from bronze: contacts, intervals and days, validated.

CDR sources: dedup re-exported legs, collapse transfer legs into their first
touch, collapse true redials, drop short abandons from demand, flag contacts
outside opening hours and on holidays, then aggregate onto the complete
interval calendar (silver_interval) and per day (silver_daily). Interval-report
sources go straight to the aggregates. Data checks run on all rebuilt days
before anything is committed; a failed critical check stops the step with exit
code 2 and leaves silver as it was. Completeness is judged per queue on the
intervals that normally carry its calls; only days new since the last
successful run (a first load: its last 7 days) can stop it. Incremental: only days whose bronze rows
changed are rebuilt (use --full to rebuild everything).

Days are rebuilt in chunks of at most --chunk-days contiguous days and
--chunk-rows bronze rows, so memory stays flat however long the history and
however busy the center; with several chunks, --workers processes read
bronze and build contacts ahead while this one writes. All chunks are written
in one transaction.

Example:  python 1_build_silver.py --as-of 2025-03-10
"""

from __future__ import annotations

import os
import sys

from common.cli import StepContext, StepResult, run_step, step_parser, whole_number
from common.silver_build import STEP, build_silver


def body(ctx: StepContext) -> StepResult:
    a = ctx.args
    return build_silver(ctx, full=a.full, chunk_days=a.chunk_days, chunk_rows=a.chunk_rows, workers=a.workers)


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("1_build_silver.py", __doc__)
    parser.add_argument("--full", action="store_true", help="rebuild every day, not only days whose bronze changed")
    parser.add_argument("--chunk-days", type=whole_number(1), default=31, dest="chunk_days",
                        help="rebuild at most this many contiguous days at a time (default 31); memory grows with it")
    parser.add_argument("--chunk-rows", type=whole_number(1), default=400_000, dest="chunk_rows",
                        help="and at most this many bronze rows at a time (default 400000: about 2.6 GB peak with 2 "
                             "workers; memory grows about 4 KB per row); a busier day is a chunk of its own")
    cpus = os.cpu_count() or 1
    parser.add_argument("--workers", type=whole_number(0), default=min(2, cpus) if cpus > 1 else 0,
                        help="processes that read bronze and build contacts ahead while this one writes "
                             "(default: 2 with 2+ CPUs; each holds about one chunk); 0 = all in this process")
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Step 1.5: customer behaviour segments (K-Means) -> gold_dim_customer_behavior.

Reads silver_calls for the trailing segmentation.window_days before --as-of
(contacts with a customer id only) and describes each customer with at least
segmentation.min_contacts contacts: contacts, contacts per active week, share
in peak hours, mean handle time, abandon and redial rates, queue mix. The
features are standardised (log for counts and durations) and clustered with
K-Means; k is segmentation.k, or chosen by silhouette within
segmentation.k_range. Segments are numbered least-frequent callers first and
named from their centroid ("frequent · long calls"), so numbers and labels stay
put from one night to the next when the data barely changes.

The table is replaced as a whole (one transaction): it always holds the latest
segmentation, with its run_id and as_of.

Skipped (exit 0, status "skipped" in pipeline_runs, one INFO line saying why):
source.kind is interval or daily (no customer ids), segmentation.enabled is false, the
as-of's weekday is not in segmentation.run_weekdays (unless --force, or while
the table is still empty), no contact in the window has a customer id, or
there are fewer than 10 customers
per segment of the smallest k allowed (10 x segmentation.k, or 10 x the low
end of segmentation.k_range).

Example:  python 1_5_segment_customers.py --as-of 2025-03-10
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

from sqlalchemy import delete

from common import db, segment_step, tables
from common.cli import StepContext, StepResult, run_step, step_parser
from common.segments import features_from_tallies

log = logging.getLogger(__name__)

STEP = "1_5_segment_customers"


def body(ctx: StepContext) -> StepResult:
    seg, as_of = ctx.cfg.segmentation, ctx.as_of
    skipped = segment_step.skip_reason(ctx.cfg, as_of, ctx.args.force, ctx.engine)
    if skipped:
        return StepResult(0, skipped, "skipped")
    window_start = as_of - timedelta(days=seg.window_days)
    window = f"{window_start}..{as_of - timedelta(days=1)}"
    started = time.perf_counter()

    # Load inputs: the window as per-customer tallies, read a few weeks at a time
    with ctx.engine.connect() as conn:
        tallies, contacts = segment_step.read_tallies(conn, window_start, as_of, seg.peak_hours)
    log.info("segments: read %d contacts with a customer id, %s (%.1fs)", contacts, window,
             time.perf_counter() - started)
    if not contacts:
        return StepResult(0, f"no contact with a customer id in silver_calls {window}", "skipped")

    # Process data
    features = features_from_tallies(tallies, seg.min_contacts)
    too_few = segment_step.too_few_customers(features, seg)
    if too_few:
        return StepResult(0, too_few, "skipped")
    segmenter, rows = segment_step.segment(features, seg)

    # Save outputs: the table always holds the latest segmentation, replaced in one transaction.
    with ctx.engine.begin() as conn:
        conn.execute(delete(tables.gold_dim_customer_behavior))
        written = db.insert_frame(conn, tables.gold_dim_customer_behavior, rows.assign(run_id=ctx.run_id, as_of=as_of))
    return StepResult(written, f"{written} customers in {segmenter.k_} segments "
                               f"(silhouette {segmenter.silhouette_:.3f}), window {window}")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("1_5_segment_customers.py", __doc__)
    parser.add_argument("--force", action="store_true",
                        help="segment even when segmentation.run_weekdays excludes the as-of's weekday")
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

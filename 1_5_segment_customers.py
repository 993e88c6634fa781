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
source.kind is interval (no customer ids), segmentation.enabled is false, the
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

from sqlalchemy import delete, func, select

from common import db, tables
from common.cli import StepContext, StepResult, run_step, step_parser
from common.opening_hours import WEEKDAYS
from common.progress import progress
from common.segments import (
    CustomerSegmenter, add_tallies, customer_tallies, features_from_tallies, segment_rows, week_blocks,
)

log = logging.getLogger(__name__)

STEP = "1_5_segment_customers"
CUSTOMERS_PER_SEGMENT = 10  # fewer customers than this per segment make segments that describe individuals
READ_WEEKS = 4  # weeks of contacts read at a time (10 M legs a year: ~0.7 M contacts, ~1 GB a block)
_CALL_COLUMNS = ["customer_id", "queue", "start_time", "date", "outcome", "handle_seconds", "attempts"]


def body(ctx: StepContext) -> StepResult:
    seg, as_of = ctx.cfg.segmentation, ctx.as_of
    if ctx.cfg.source.kind == "interval":
        return StepResult(0, "source.kind is interval: no customer ids to segment", "skipped")
    if not seg.enabled:
        return StepResult(0, "segmentation.enabled is false", "skipped")
    weekday = WEEKDAYS[as_of.weekday()]
    if seg.run_weekdays is not None and weekday not in seg.run_weekdays and not ctx.args.force:
        with ctx.engine.connect() as conn:
            segmented = conn.execute(select(func.count()).select_from(tables.gold_dim_customer_behavior)).scalar()
        if segmented:  # the first night segments whatever the weekday: Power BI should not wait a week
            return StepResult(0, f"segmentation skipped: as-of {as_of} is a {weekday}, segmentation.run_weekdays is "
                                 f"[{', '.join(seg.run_weekdays)}] (use --force to segment anyway)", "skipped")
    started = time.perf_counter()

    # Load inputs + Process data: the window is read a few weeks at a time and only per-customer tallies are
    # kept, so memory follows the number of customers, not the number of contacts in the window.
    window_start = as_of - timedelta(days=seg.window_days)
    c = tables.silver_calls.c
    tallies, contacts = None, 0
    with ctx.engine.connect() as conn:
        for lo, hi in progress(week_blocks(window_start, as_of, READ_WEEKS), desc="segments: reading", unit="block"):
            calls = db.read_table(conn, tables.silver_calls, columns=_CALL_COLUMNS,
                                  where=(c.date >= lo) & (c.date < hi) & c.customer_id.is_not(None))
            contacts += len(calls)
            block = customer_tallies(calls, seg.peak_hours)
            tallies = block if tallies is None else add_tallies(tallies, block)
            del calls
    log.info("segments: read %d contacts with a customer id, %s..%s (%.1fs)", contacts, window_start,
             as_of - timedelta(days=1), time.perf_counter() - started)
    if not contacts:
        return StepResult(0, f"no contact with a customer id in silver_calls "
                             f"{window_start}..{as_of - timedelta(days=1)}", "skipped")

    started = time.perf_counter()
    features = features_from_tallies(tallies, seg.min_contacts)
    smallest_k = seg.k if seg.k is not None else seg.k_range[0]
    needed = CUSTOMERS_PER_SEGMENT * smallest_k
    if len(features) < needed:
        return StepResult(0, f"{len(features)} customers with >= {seg.min_contacts} contacts, "
                             f"need at least {needed} ({CUSTOMERS_PER_SEGMENT} per segment x k={smallest_k})",
                          "skipped")
    segmenter = CustomerSegmenter(k=seg.k, k_range=seg.k_range, seed=seg.seed).fit(features)
    rows = segment_rows(features, segmenter).assign(run_id=ctx.run_id, as_of=as_of)
    by_k = ", ".join(f"{k}: {s:.3f}" for k, s in segmenter.silhouette_by_k_.items())
    log.info("segments: %d customers -> k=%d, silhouette %.3f%s (%.1fs)", len(features), segmenter.k_,
             segmenter.silhouette_, f" (by k: {by_k})" if by_k else "", time.perf_counter() - started)
    sizes = rows["segment"].value_counts()
    for segment, label in enumerate(segmenter.segment_labels_):
        log.info("segments: segment %d %-40s %8d customers", segment, label, int(sizes.get(segment, 0)))

    # Save outputs: the table always holds the latest segmentation, replaced in one transaction.
    with ctx.engine.begin() as conn:
        conn.execute(delete(tables.gold_dim_customer_behavior))
        written = db.insert_frame(conn, tables.gold_dim_customer_behavior, rows)
    return StepResult(written, f"{written} customers in {segmenter.k_} segments "
                               f"(silhouette {segmenter.silhouette_:.3f}), window {window_start}..{as_of - timedelta(days=1)}")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("1_5_segment_customers.py", __doc__)
    parser.add_argument("--force", action="store_true",
                        help="segment even when segmentation.run_weekdays excludes the as-of's weekday")
    return run_step(STEP, parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Step 1.5's orchestration: whether tonight segments, the window read as per-customer tallies, the segmentation.

`1_5_segment_customers.py` calls these between opening the database and replacing gold_dim_customer_behavior. The
features and the K-Means itself are `segments`.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from common import db, tables
from common.config_schema import Config, SegmentationConfig
from common.opening_hours import WEEKDAYS
from common.progress import progress
from common.segments import CustomerSegmenter, add_tallies, customer_tallies, segment_rows, week_blocks

log = logging.getLogger(__name__)

CUSTOMERS_PER_SEGMENT = 10  # fewer customers than this per segment make segments that describe individuals
READ_WEEKS = 4  # weeks of contacts read at a time (10 M legs a year: ~0.7 M contacts, ~1 GB a block)
_CALL_COLUMNS = ["customer_id", "queue", "start_time", "date", "outcome", "handle_seconds", "attempts"]


def skip_reason(cfg: Config, as_of: date, force: bool, engine: Engine) -> str | None:
    """Why tonight does not segment, or None when it does."""
    seg = cfg.segmentation
    if cfg.source.kind != "cdr":
        return f"source.kind is {cfg.source.kind}: no customer ids to segment"
    if not seg.enabled:
        return "segmentation.enabled is false"
    weekday = WEEKDAYS[as_of.weekday()]
    if seg.run_weekdays is not None and weekday not in seg.run_weekdays and not force:
        with engine.connect() as conn:
            segmented = conn.execute(select(func.count()).select_from(tables.gold_dim_customer_behavior)).scalar()
        if segmented:  # the first night segments whatever the weekday: Power BI should not wait a week
            return (f"segmentation skipped: as-of {as_of} is a {weekday}, segmentation.run_weekdays is "
                    f"[{', '.join(seg.run_weekdays)}] (use --force to segment anyway)")
    return None


def read_tallies(conn: Connection, start: date, as_of: date,
                 peak_hours: str) -> tuple[tuple[pd.DataFrame, pd.DataFrame] | None, int]:
    """(per-customer tallies, contacts read) of silver_calls with a customer id, `start` .. as_of - 1.

    Read READ_WEEKS at a time and only the tallies kept, so memory follows the number of customers, not the number
    of contacts in the window. No contact: (None, 0).
    """
    c = tables.silver_calls.c
    tallies, contacts = None, 0
    for lo, hi in progress(week_blocks(start, as_of, READ_WEEKS), desc="segments: reading", unit="block"):
        calls = db.read_table(conn, tables.silver_calls, columns=_CALL_COLUMNS,
                              where=(c.date >= lo) & (c.date < hi) & c.customer_id.is_not(None))
        contacts += len(calls)
        block = customer_tallies(calls, peak_hours)
        tallies = block if tallies is None else add_tallies(tallies, block)
        del calls
    return tallies, contacts


def too_few_customers(features: pd.DataFrame, seg: SegmentationConfig) -> str | None:
    """Why `features` (one row per customer) are too few to segment with the smallest k allowed, or None."""
    smallest_k = seg.k if seg.k is not None else seg.k_range[0]
    needed = CUSTOMERS_PER_SEGMENT * smallest_k
    if len(features) < needed:
        return (f"{len(features)} customers with >= {seg.min_contacts} contacts, "
                f"need at least {needed} ({CUSTOMERS_PER_SEGMENT} per segment x k={smallest_k})")
    return None


def segment(features: pd.DataFrame, seg: SegmentationConfig) -> tuple[CustomerSegmenter, pd.DataFrame]:
    """The fitted segmenter and gold_dim_customer_behavior rows (one per customer, without run_id and as_of)."""
    started = time.perf_counter()
    segmenter = CustomerSegmenter(k=seg.k, k_range=seg.k_range, seed=seg.seed).fit(features)
    rows = segment_rows(features, segmenter)
    by_k = ", ".join(f"{k}: {s:.3f}" for k, s in segmenter.silhouette_by_k_.items())
    log.info("segments: %d customers -> k=%d, silhouette %.3f%s (%.1fs)", len(features), segmenter.k_,
             segmenter.silhouette_, f" (by k: {by_k})" if by_k else "", time.perf_counter() - started)
    sizes = rows["segment"].value_counts()
    for number, label in enumerate(segmenter.segment_labels_):
        log.info("segments: segment %d %-40s %8d customers", number, label, int(sizes.get(number, 0)))
    return segmenter, rows

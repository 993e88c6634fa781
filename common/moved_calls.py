"""Calls that a corrected re-export moved to another day: the days they left, and the old exports to ignore.

bronze is append-only: when an ACD re-exports a file with a call's start corrected, bronze holds the call_id twice,
on two start dates, and the newest export (highest load_id, then source_row) is the true one (`cdr.dedup_legs`).
Step 1 rebuilds day by day, reading one padding day on either side, so a move of two or more days reaches past
what one rebuild reads. Two things keep such a call counted once:
- the day a changed day's call_id was placed on before is rebuilt too (`days_left_by_moved_calls`);
- a rebuild never reads an export that a newer export of the same call_id on an unread day supersedes
  (`newest_export_only`), however the days fall into chunks.
Both look calls up through the bronze_cdr call_id index, so they cost a probe per row read, not a scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select
from sqlalchemy.engine import Connection

from common import tables


def days_in(column: ColumnElement, runs: list[list[date]]) -> ColumnElement:
    """`column` falls on one of the days of `runs` (runs of consecutive days, each one range predicate)."""
    return or_(*[column.between(run[0], run[-1]) for run in runs]) if runs else column.is_(None)


def days_left_by_moved_calls(conn: Connection, changed_runs: list[list[date]], first: date, last: date) -> set[date]:
    """The days from `first` to `last`, outside `changed_runs`, holding a bronze leg whose call_id also has a leg
    on a changed day: a re-export moved the call (or one of its legs), so the day it left must be rebuilt too."""
    if not changed_runs:
        return set()
    # The changed days' legs are found through the start_date index, their other exports through call_id: no
    # range predicate on `other`, which would lead a planner to scan the whole history for it instead.
    changed, other = tables.bronze_cdr.alias("changed"), tables.bronze_cdr.alias("other")
    stmt = (select(other.c.start_date).distinct()
            .select_from(changed.join(other, other.c.call_id == changed.c.call_id))
            .where(days_in(changed.c.start_date, changed_runs), not_(days_in(other.c.start_date, changed_runs))))
    days = {_as_date(d) for d in conn.execute(stmt).scalars()}
    return {d for d in days if first <= d <= last}


def newest_export_only(read_days: Callable[[ColumnElement], ColumnElement]) -> ColumnElement:
    """A filter on bronze_cdr for a read of the days `read_days(start_date column)` selects: leave out a leg when a
    newer export of its call_id lies on a day the read leaves out.

    Exports of a call_id that are both read are left to `cdr.dedup_legs`, which keeps the newest.
    """
    t, newer = tables.bronze_cdr, tables.bronze_cdr.alias("newer")
    is_newer = or_(newer.c.load_id > t.c.load_id,
                   and_(newer.c.load_id == t.c.load_id, newer.c.source_row > t.c.source_row))
    return not_(exists().where(newer.c.call_id == t.c.call_id, not_(read_days(newer.c.start_date)), is_newer))


def _as_date(value) -> date:  # noqa: ANN001 - a date, or a string / datetime depending on the driver
    return pd.Timestamp(value).date()

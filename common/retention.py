"""How long rows holding personal data are kept: rejected source rows (`bronze_rejects.raw` is the export's own
line, caller number included) are deleted `source.rejects_retention_days` after the load that kept them.

The age is the load's (`bronze_load_log.loaded_at`, the wall clock), not the call's: a reject is evidence of a
broken export, needed while someone fixes it, not history. `bronze_load_log` keeps its counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from common import db, tables

log = logging.getLogger(__name__)


def expire_rejects(conn: Connection, days: int | None, now_utc: datetime | None = None) -> int:
    """Delete bronze_rejects rows whose load is more than `days` days old (None: keep all), inside the caller's
    transaction; the number deleted."""
    if days is None:
        return 0
    cutoff = (now_utc or db.utc_now()) - timedelta(days=days)
    loads = tables.bronze_load_log
    old_loads = select(loads.c.load_id).where(loads.c.loaded_at < cutoff)
    deleted = conn.execute(delete(tables.bronze_rejects).where(
        tables.bronze_rejects.c.load_id.in_(old_loads))).rowcount or 0
    log.info("bronze: %d rejected row(s) loaded before %s UTC deleted (source.rejects_retention_days: %d)",
             deleted, f"{cutoff:%Y-%m-%d %H:%M}", days)
    return deleted

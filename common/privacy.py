"""Personal data in the database: how long rejects are kept, and whether tonight's ids are of the same kind as
bronze's (clear or pseudonymised).

Rejected source rows (`bronze_rejects.raw` is the export's own line, caller number included) are deleted
`source.rejects_retention_days` after the load that kept them. The age is the load's (`bronze_load_log.loaded_at`,
the wall clock), not the call's: a reject is evidence of a broken export, needed while someone fixes it, not
history. `bronze_load_log` keeps its counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from common import db, tables
from common.config_source import SourceConfig
from common.pseudonym import looks_pseudonymised

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


MIXED_SAMPLE = 200  # bronze's newest rows looked at: read by primary key, no scan


def warn_on_mixed_ids(conn: Connection, spec: SourceConfig) -> bool:
    """Warn (and return True) when bronze's newest CDR rows hold clear ids while source.pseudonymize is on, or
    pseudonyms while it is off: the same caller would then have two ids, and redial chains and customer segments
    would split at tonight's load. Values are never logged."""
    if spec.kind != "cdr":  # interval reports hold no personal ids
        return False
    t = tables.bronze_cdr
    columns = [t.c[name] for name in spec.pseudonymize.columns]
    rows = conn.execute(select(*columns).order_by(t.c.id.desc()).limit(MIXED_SAMPLE)).all()
    values = [v for row in rows for v in row if v]
    if not values:
        return False
    held = [looks_pseudonymised(v) for v in values]
    if spec.pseudonymize.enabled and not all(held):
        log.warning("bronze: source.pseudonymize is on but bronze_cdr holds clear ids from earlier loads: a caller "
                    "loaded before and after tonight has two ids (redial chains and segments split); to pseudonymise "
                    "the history, load it into a new database (README \"Personal data\")")
        return True
    if not spec.pseudonymize.enabled and any(held):
        log.warning("bronze: bronze_cdr holds pseudonymised ids but source.pseudonymize is off: tonight's rows keep "
                    "clear ids; set source.pseudonymize.enabled: true with the same key to go on")
        return True
    return False

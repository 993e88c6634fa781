"""The WFM vendor's own forecast, read from `forecast.vendor_table` as an ensemble member.

The table is the user's (found by reflection, like `training.exogenous_table`): one row per queue per date per
issue: `queue, date, forecast, issued_at`. A vendor tool re-issues its forecast; the ensemble uses, for an origin,
only the latest issue before it (`ensemble.vendor_as_of`), so a later revision never leaks into a backtest or a
backfill. `issued_at` is in the centre's local time (`timezone`), like the dates.
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from common import db
from common.config import safe_identifier
from common.errors import ConfigError, DataError

log = logging.getLogger(__name__)

KEY = "forecast.vendor_table"
COLUMNS = ("queue", "date", "forecast", "issued_at")


def read_vendor(conn: Connection, table_name: str, before: date) -> pd.DataFrame:
    """Every issue of the vendor's forecast made before `before` (local midnight): series, date, forecast, issued_at.

    Rows whose forecast is missing or negative are left out (they are no forecast): counted in a warning and in the
    returned frame's attrs["dropped"]."""
    name = safe_identifier(table_name, KEY)
    try:
        table = Table(name, MetaData(), autoload_with=conn)
    except NoSuchTableError:
        raise ConfigError(f"{KEY}: table {name!r} does not exist in the database; create it with columns "
                          f"{', '.join(COLUMNS)} or remove the key") from None
    missing = [c for c in COLUMNS if c not in table.c]
    if missing:
        raise DataError(f"{KEY} {name!r} lacks column(s) {', '.join(missing)}; it needs {', '.join(COLUMNS)} "
                        f"(has: {', '.join(table.c.keys())})")
    # Filtered in pandas, not SQL: a user's SQLite table may hold its times as text in any ISO form.
    raw = db.read_table(conn, table, columns=COLUMNS)
    frame = pd.DataFrame({
        "series": raw["queue"].astype("str"),
        "date": pd.to_datetime(raw["date"], errors="coerce", format="mixed").dt.normalize().astype("datetime64[ns]"),
        "forecast": pd.to_numeric(raw["forecast"], errors="coerce").astype(float),
        "issued_at": pd.to_datetime(raw["issued_at"], errors="coerce", format="mixed").astype("datetime64[ns]"),
    })
    bad_time = frame["issued_at"].isna() | frame["date"].isna()
    if bad_time.any():
        row = raw.loc[bad_time].iloc[0]
        raise DataError(f"{KEY} {name!r}: {int(bad_time.sum())} row(s) with an unreadable date or issued_at, e.g. "
                        f"queue {row['queue']!r} date {row['date']!r} issued_at {row['issued_at']!r}; fix or delete them")
    frame = frame.loc[frame["issued_at"] < pd.Timestamp(before)]
    usable = frame["forecast"].notna() & (frame["forecast"] >= 0)
    out = frame.loc[usable].sort_values(["series", "date", "issued_at"], kind="stable").reset_index(drop=True)
    out.attrs["dropped"] = int((~usable).sum())
    if out.attrs["dropped"]:
        log.warning("%s %r: %d row(s) issued before %s have no usable forecast (empty or negative) and are left out",
                    KEY, name, out.attrs["dropped"], before)
    log.info("vendor forecast: %d issues of %d queue-days from %s, issued before %s", len(out),
             len(out.drop_duplicates(["series", "date"])), name, before)
    return out

"""Database I/O: engines, schema, fast inserts, typed reads, run bookkeeping.

Everything that touches SQL apart from the table declarations (`tables.py`).
Steps write inside `engine.begin()` so a crash leaves the previous good state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean, Date, DateTime, Engine, Float, Integer, String, Table, create_engine, event, insert, select, type_coerce, update,
)
from sqlalchemy.engine import Connection, make_url

from common import tables

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created, WAL (readers never block the writer) and a busy timeout."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI callback
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if backend == "mssql":
        # pyodbc is only imported for SQL Server URLs; fast_executemany makes bulk inserts usable there.
        return create_engine(url, fast_executemany=True, pool_pre_ping=True)
    return create_engine(url, pool_pre_ping=True)


def ensure_schema(engine: Engine) -> None:
    """Create any table that does not exist yet (never alters an existing one)."""
    tables.metadata.create_all(engine)


def safe_url(engine_or_url: Engine | str) -> str:
    """The URL with its password masked, for logs."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.render_as_string(hide_password=True)


# --- writing --------------------------------------------------------------------------------------------

def _python_value(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def frame_records(df: pd.DataFrame, table: Table) -> list[dict]:
    """Rows of `df` as plain-Python dicts for `table`'s columns (NaN/NaT -> None, dates as date)."""
    cols = [c.name for c in table.columns if c.name in df.columns]
    out = {}
    for name in cols:
        col = table.c[name]
        s = df[name]
        if isinstance(col.type, Date) and not isinstance(col.type, DateTime):
            values = [None if pd.isna(v) else pd.Timestamp(v).date() for v in s.to_numpy()]
        elif isinstance(col.type, DateTime):
            values = [None if pd.isna(v) else v.to_pydatetime() for v in pd.to_datetime(s)]
        elif isinstance(col.type, Boolean):
            values = [None if pd.isna(v) else bool(v) for v in s.to_numpy()]
        elif isinstance(col.type, Integer):
            values = [None if pd.isna(v) else int(v) for v in s.to_numpy()]
        elif isinstance(col.type, Float):
            values = [None if pd.isna(v) else float(v) for v in s.to_numpy()]
        else:
            values = [_python_value(v) if not pd.isna(v) else None for v in s.to_numpy(dtype=object)]
        out[name] = values
    n = len(df)
    return [{name: out[name][i] for name in cols} for i in range(n)]


def insert_frame(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int = 50_000) -> int:
    """Insert all rows of `df` into `table` (executemany in batches, inside the caller's transaction)."""
    if df.empty:
        return 0
    if conn.dialect.name == "sqlite":
        _sqlite_insert(conn, table, df, batch_rows, or_ignore=False)
        return len(df)
    for start in range(0, len(df), batch_rows):
        conn.execute(insert(table), frame_records(df.iloc[start:start + batch_rows], table))
    return len(df)


def insert_ignoring_duplicates(conn: Connection, table: Table, df: pd.DataFrame, key: str = "row_hash",
                               batch_rows: int = 50_000) -> int:
    """Insert rows whose unique `key` is not in `table` yet; return how many were new. Idempotent by construction.

    SQLite takes the fast path (INSERT OR IGNORE through the driver's executemany); other backends check
    which keys exist first, in chunks, then insert the rest.
    """
    if df.empty:
        return 0
    df = df.drop_duplicates(subset=[key])
    if conn.dialect.name == "sqlite":
        return _sqlite_insert(conn, table, df, batch_rows, or_ignore=True)
    new = 0
    for start in range(0, len(df), batch_rows):
        batch = df.iloc[start:start + batch_rows]
        existing = set(existing_keys(conn, table, key, batch[key].tolist()))
        new += insert_frame(conn, table, batch[~batch[key].isin(existing)], batch_rows)
    return new


def _sqlite_column_values(s: pd.Series, col) -> list:
    """One column as a list of values the sqlite3 driver stores the way SQLAlchemy reads them back."""
    if isinstance(col.type, DateTime):
        ts = pd.to_datetime(s).to_numpy(dtype="datetime64[us]")
        text = np.datetime_as_string(ts, unit="us").astype(str)
        return [None if t == "NaT" else t.replace("T", " ") for t in text.tolist()]
    if isinstance(col.type, Date):
        ts = pd.to_datetime(s).to_numpy(dtype="datetime64[D]")
        return [None if t == "NaT" else t for t in np.datetime_as_string(ts, unit="D").tolist()]
    if isinstance(col.type, Boolean | Integer | Float):
        kind = "boolean" if isinstance(col.type, Boolean) else "Int64" if isinstance(col.type, Integer) else "Float64"
        return pd.array(s, dtype=kind).to_numpy(dtype=object, na_value=None).tolist()
    return s.astype(object).where(s.notna(), None).tolist()


def _sqlite_insert(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int, or_ignore: bool) -> int:
    """Bulk insert through the driver's executemany: about 10x faster than row dicts through SQLAlchemy."""
    cols = [c for c in table.columns if c.name in df.columns]
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    sql = (f'{verb} INTO "{table.name}" ({", ".join(chr(34) + c.name + chr(34) for c in cols)}) '
           f'VALUES ({", ".join("?" for _ in cols)})')
    dbapi = conn.connection.driver_connection
    before = dbapi.total_changes
    cur = dbapi.cursor()
    for start in range(0, len(df), batch_rows):
        batch = df.iloc[start:start + batch_rows]
        values = [_sqlite_column_values(batch[c.name], c) for c in cols]
        cur.executemany(sql, zip(*values))
    cur.close()
    return dbapi.total_changes - before


# --- reading --------------------------------------------------------------------------------------------

def read_frame(conn: Connection, stmt, table: Table | None = None) -> pd.DataFrame:
    """Run a SELECT and return a DataFrame with pandas types that match the table's column types."""
    result = conn.execute(stmt)
    df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    cols = table.columns if table is not None else []
    for col in cols:
        if col.name not in df.columns:
            continue
        if isinstance(col.type, DateTime) or isinstance(col.type, Date):
            df[col.name] = pd.to_datetime(df[col.name], format="ISO8601").astype("datetime64[ns]")
        elif isinstance(col.type, Boolean):
            df[col.name] = df[col.name].astype("boolean").astype(bool) if df[col.name].notna().all() else df[col.name].astype("boolean")
        elif isinstance(col.type, Float):
            df[col.name] = pd.to_numeric(df[col.name]).astype("float64")
        elif isinstance(col.type, Integer):
            s = pd.to_numeric(df[col.name])
            df[col.name] = s.astype("int64") if s.notna().all() else s.astype("Int64")
        else:
            df[col.name] = df[col.name].astype("str").where(df[col.name].notna(), None) if len(df) else df[col.name].astype("str")
    return df


def read_table(conn: Connection, table: Table, where=None, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """All rows of `table` (optionally filtered, optionally only some columns), typed."""
    cols = [table.c[c] for c in columns] if columns else list(table.columns)
    if conn.dialect.name == "sqlite":
        # SQLite stores timestamps as text; parsing them all at once in pandas is far faster than row by row.
        cols = [type_coerce(c, String).label(c.name) if isinstance(c.type, Date | DateTime) else c for c in cols]
    stmt = select(*cols)
    if where is not None:
        stmt = stmt.where(where)
    return read_frame(conn, stmt, table)


# --- run bookkeeping ------------------------------------------------------------------------------------

def utc_now() -> datetime:
    """Naive UTC now (every bookkeeping timestamp is naive UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def start_run(engine: Engine, run_id: str, step: str, as_of: date) -> None:
    """Record that a step started (its own transaction, so a crash leaves a visible 'running' row)."""
    with engine.begin() as conn:
        conn.execute(insert(tables.pipeline_runs).values(
            run_id=run_id, step=step, as_of=as_of, started_at=utc_now(), status="running"))


def finish_run(engine: Engine, run_id: str, status: str, rows_written: int | None, message: str | None) -> None:
    """Close a step's pipeline_runs row with its outcome."""
    with engine.begin() as conn:
        conn.execute(update(tables.pipeline_runs).where(tables.pipeline_runs.c.run_id == run_id).values(
            finished_at=utc_now(), status=status, rows_written=rows_written, message=(message or "")[:4000]))

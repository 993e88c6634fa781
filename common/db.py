"""Database I/O: engines, schema, fast inserts, typed reads, run bookkeeping.

Everything that touches SQL apart from the table declarations (`tables.py`): steps call `db.*`. Values are converted
in `db_values`, PostgreSQL's COPY paths are `db_postgres`, table creation is `schema`.
Steps write inside `engine.begin()` so a crash leaves the previous good state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from sqlalchemy import (
    Date, DateTime, Engine, String, Table, create_engine, event, insert, select, type_coerce, update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql import Select

from common import __version__, tables
from common.db_postgres import has_copy, postgres_copy, postgres_read
from common.db_values import frame_records, sqlite_values, typed_column
from common.errors import ConfigError, DataError
from common.redact import mask_url
from common.schema import ensure_schema  # noqa: F401 - steps and tests call db.ensure_schema

log = logging.getLogger(__name__)

SQLITE_CACHE_MB = 512  # per connection, an upper bound; holds bronze's row_hash index of ~10 million rows
SQLITE_PAGE_SIZE = 16384


def make_engine(url: str, sqlite_cache_mb: int = SQLITE_CACHE_MB) -> Engine:
    """An engine for `url`; SQLite files get their folder created, WAL (readers never block the writer), a busy
    timeout and a page cache of up to `sqlite_cache_mb` per connection."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI callback
            cur = dbapi_conn.cursor()
            # Only takes effect when the file is new (before WAL): bigger pages make bulk loads ~15% faster.
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # The default 2 MB page cache thrashes once bronze's row_hash index outgrows it (inserts into a
            # random-order index then read and spill pages all the time); the cache fills only as pages are used.
            cur.execute(f"PRAGMA cache_size=-{sqlite_cache_mb * 1024}")
            # A big load leaves a WAL file as big as the data it wrote; shrink it after the checkpoint.
            cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            cur.close()

        return engine
    if backend == "mssql":
        # pyodbc is only imported for SQL Server URLs; fast_executemany makes bulk inserts usable there.
        return create_engine(url, fast_executemany=True, pool_pre_ping=True)
    return create_engine(url, pool_pre_ping=True)


def make_read_only_engine(url: str) -> Engine:
    """An engine that cannot write, where the backend allows it: a SQLite file opened `mode=ro` (it must exist),
    PostgreSQL sessions with `default_transaction_read_only`. Other backends: grant the login read access only."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:" or not path.is_file():
            raise ConfigError(f"database.url: SQLite file {parsed.database!r} not found; run the pipeline first "
                              "(or ./run_daily.sh --demo)")
        return create_engine(f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true",
                             connect_args={"timeout": 60})
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True,
                             connect_args={"options": "-c default_transaction_read_only=on"})
    return create_engine(url, pool_pre_ping=True)


def safe_url(engine_or_url: Engine | str) -> str:
    """The URL with its password masked, for logs: everything between the user name and the LAST `@` (a raw `@`
    in a password leaves its tail in the parsed host)."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return mask_url(url.render_as_string(hide_password=False))


# --- writing --------------------------------------------------------------------------------------------

def insert_frame(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int = 50_000) -> int:
    """Insert all rows of `df` into `table` inside the caller's transaction: the driver's executemany on SQLite,
    COPY on PostgreSQL (psycopg 3), SQLAlchemy's executemany elsewhere (fast_executemany on SQL Server)."""
    if df.empty:
        return 0
    if conn.dialect.name == "sqlite":
        _sqlite_insert(conn, table, df, batch_rows, or_ignore=False)
        return len(df)
    with _naming_over_long_values(table, df):
        if has_copy(conn):
            return postgres_copy(conn, table, df, batch_rows, conflict_key=None)
        for start in range(0, len(df), batch_rows):
            conn.execute(insert(table), frame_records(df.iloc[start:start + batch_rows], table))
    return len(df)


def insert_ignoring_duplicates(conn: Connection, table: Table, df: pd.DataFrame, key: str = "row_hash",
                               batch_rows: int = 50_000) -> int:
    """Insert rows whose unique `key` is not in `table` yet; return how many were new. Idempotent by construction.

    SQLite: INSERT OR IGNORE through the driver's executemany. PostgreSQL: COPY into a temporary table, then
    INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING. Other backends (SQL Server) check which keys exist
    first, 1000 at a time, then insert the rest.
    """
    if df.empty:
        return 0
    df = df.drop_duplicates(subset=[key])
    if conn.dialect.name == "sqlite":
        return _sqlite_insert(conn, table, df, batch_rows, or_ignore=True)
    if has_copy(conn):
        with _naming_over_long_values(table, df):
            return postgres_copy(conn, table, df, batch_rows, conflict_key=key)
    new = 0
    for start in range(0, len(df), batch_rows):
        batch = df.iloc[start:start + batch_rows]
        existing = set(existing_keys(conn, table, key, batch[key].tolist()))
        new += insert_frame(conn, table, batch[~batch[key].isin(existing)], batch_rows)
    return new


def existing_keys_statement(table: Table, key: str, values: Sequence):
    """SELECT of those `values` (at most 1000: SQL Server binds at most 2100 parameters) already in `table.key`."""
    col = table.c[key]
    return select(col).where(col.in_(list(values)))


def existing_keys(conn: Connection, table: Table, key: str, values: Sequence) -> list:
    """The values of `values` already present in `table.key` (queried 1000 at a time)."""
    found: list = []
    for start in range(0, len(values), 1000):
        found += conn.execute(existing_keys_statement(table, key, values[start:start + 1000])).scalars().all()
    return found


@contextmanager
def _naming_over_long_values(table: Table, df: pd.DataFrame) -> Iterator[None]:
    """A failed insert caused by a value longer than its column becomes a DataError naming it.

    PostgreSQL and SQL Server refuse such values (SQLite stores them); sources reject over-long bronze
    values row by row before this. Checked only after a failure: on millions of rows it costs seconds.
    """
    try:
        yield
    except Exception as exc:
        try:
            check_string_lengths(table, df)
        except DataError as named:
            raise named from exc
        raise


def check_string_lengths(table: Table, df: pd.DataFrame) -> None:
    """DataError naming the first value of `df` longer than its `table` column holds."""
    for col in table.columns:
        limit = getattr(col.type, "length", None)
        if limit is None or col.name not in df.columns or df[col.name].dtype.kind in "biufmM":
            continue
        values = df[col.name].to_numpy(dtype=object)
        lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in values.tolist()), np.int64, len(values))
        if len(lengths) and lengths.max() > limit:
            value = values[int(lengths.argmax())]
            raise DataError(f"{table.name}.{col.name}: {value[:60]!r}{'...' if len(value) > 60 else ''} is "
                            f"{len(value)} characters, longer than the {limit} the column holds")


def sqlite_insert_values(conn: Connection, table: Table, names: list[str], values: list[list], or_ignore: bool) -> int:
    """executemany of prepared column lists (from `sqlite_values`); returns how many rows were added."""
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    sql = (f'{verb} INTO "{table.name}" ({", ".join(chr(34) + n + chr(34) for n in names)}) '
           f'VALUES ({", ".join("?" for _ in names)})')
    dbapi = conn.connection.driver_connection
    before = dbapi.total_changes
    cur = dbapi.cursor()
    cur.executemany(sql, zip(*values))
    cur.close()
    return dbapi.total_changes - before


def _sqlite_insert(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int, or_ignore: bool) -> int:
    """Bulk insert through the driver's executemany: about 10x faster than row dicts through SQLAlchemy."""
    added = 0
    for start in range(0, len(df), batch_rows):
        names, values = sqlite_values(table, df if len(df) <= batch_rows else df.iloc[start:start + batch_rows])
        added += sqlite_insert_values(conn, table, names, values, or_ignore)
    return added


# --- reading --------------------------------------------------------------------------------------------

def read_frame(conn: Connection, stmt, table: Table | None = None) -> pd.DataFrame:
    """Run a SELECT and return a DataFrame with pandas types that match the table's column types."""
    cols = {c.name: c for c in (table.columns if table is not None else [])}
    if has_copy(conn) and isinstance(stmt, Select):
        names = list(stmt.selected_columns.keys())
        if len(set(names)) == len(names) and all(n in cols for n in names):
            return postgres_read(conn, stmt, names, [cols[n] for n in names])
    result = conn.execute(stmt)
    names = list(result.keys())
    if len(set(names)) == len(names) and all(n in cols for n in names):
        # Every column typed by the table: build the frame column by column (a frame built from a list
        # of row objects costs microseconds per row). SQLite's raw values need no result processing here
        # (dates come as ISO text, which the typing below parses), so skip building row objects too.
        if conn.dialect.name == "sqlite":
            rows = result.cursor.fetchall()
            result.close()
            # Rows of plain tuples: numpy transposes them in C, several times faster than zip(*rows).
            grid = np.array(rows, dtype=object) if rows else np.empty((0, len(names)), dtype=object)
            columns = [grid[:, i] for i in range(len(names))]
        else:
            rows = result.fetchall()
            columns = [np.array(v, dtype=object) for v in zip(*rows)] if rows else \
                [np.array([], dtype=object)] * len(names)
        return pd.DataFrame({n: typed_column(v, cols[n]) for n, v in zip(names, columns)},
                            index=pd.RangeIndex(len(columns[0]) if columns else len(rows)))
    df = pd.DataFrame(result.fetchall(), columns=names)
    for col in cols.values():
        if col.name in df.columns:
            df[col.name] = typed_column(df[col.name].to_numpy(dtype=object), col)
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


def start_run(engine: Engine, run_id: str, step: str, as_of: date, overrides: str | None = None) -> None:
    """Record that a step started (its own transaction, so a crash leaves a visible 'running' row).

    `overrides`: the run's --set KEY=VALUE list as JSON text (None without any), so a what-if is never mistaken
    for the configured run. The run records the code's version, so a number in gold can be traced to the release.
    """
    with engine.begin() as conn:
        conn.execute(insert(tables.pipeline_runs).values(
            run_id=run_id, step=step, as_of=as_of, started_at=utc_now(), status="running", overrides=overrides,
            pipeline_version=__version__))


def finish_run(engine: Engine, run_id: str, status: str, rows_written: int | None, message: str | None) -> None:
    """Close a step's pipeline_runs row with its outcome."""
    with engine.begin() as conn:
        conn.execute(update(tables.pipeline_runs).where(tables.pipeline_runs.c.run_id == run_id).values(
            finished_at=utc_now(), status=status, rows_written=rows_written, message=(message or "")[:4000]))

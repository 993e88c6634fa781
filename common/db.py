"""Database I/O: engines, schema, fast inserts, typed reads, run bookkeeping.

Everything that touches SQL apart from the table declarations (`tables.py`).
Steps write inside `engine.begin()` so a crash leaves the previous good state.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean, Date, DateTime, Engine, Float, Integer, String, Table, create_engine, event, insert, select, type_coerce, update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql import Select

from common import __version__, tables
from common.errors import DataError
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


def safe_url(engine_or_url: Engine | str) -> str:
    """The URL with its password masked, for logs: everything between the user name and the LAST `@` (a raw `@`
    in a password leaves its tail in the parsed host)."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return mask_url(url.render_as_string(hide_password=False))


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
    """Insert all rows of `df` into `table` inside the caller's transaction: the driver's executemany on SQLite,
    COPY on PostgreSQL (psycopg 3), SQLAlchemy's executemany elsewhere (fast_executemany on SQL Server)."""
    if df.empty:
        return 0
    if conn.dialect.name == "sqlite":
        _sqlite_insert(conn, table, df, batch_rows, or_ignore=False)
        return len(df)
    with _naming_over_long_values(table, df):
        if _has_copy(conn):
            return _postgres_copy(conn, table, df, batch_rows, conflict_key=None)
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
    if _has_copy(conn):
        with _naming_over_long_values(table, df):
            return _postgres_copy(conn, table, df, batch_rows, conflict_key=key)
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


# --- PostgreSQL: COPY ------------------------------------------------------------------------------------

def _has_copy(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _postgres_copy(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int, conflict_key: str | None) -> int:
    """Rows of `df` into `table` through psycopg 3's COPY (about 5x its executemany); returns how many were added.

    Values go as text in the caller's transaction, prepared like SQLite's (`sqlite_values`: ISO timestamps,
    plain Python scalars, None for missing), which PostgreSQL parses into the column types. With
    `conflict_key` they go into a temporary table first, then INSERT ... SELECT ... ON CONFLICT (key) DO
    NOTHING in the frame's order, so ids follow it (bronze relies on that) and a row whose key is in `table`
    already adds nothing.
    """
    quote = conn.dialect.identifier_preparer.quote
    names = [c.name for c in table.columns if c.name in df.columns]
    columns = ", ".join(quote(n) for n in names)
    target = quote(table.name) if conflict_key is None else quote(f"wfm_copy_{table.name}")
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conflict_key is not None:
            # Column types without constraints (no NOT NULL id), plus the frame's row order.
            cursor.execute(f"CREATE TEMPORARY TABLE {target} ON COMMIT DROP AS SELECT {columns}, 0::bigint AS wfm_row "
                           f"FROM {quote(table.name)} WITH NO DATA")
        order = ", wfm_row" if conflict_key is not None else ""
        with cursor.copy(f"COPY {target} ({columns}{order}) FROM STDIN") as copy:
            for start in range(0, len(df), batch_rows):
                _, values = sqlite_values(table, df.iloc[start:start + batch_rows])
                if conflict_key is not None:
                    values.append(range(start, start + len(values[0])))
                for row in zip(*values):
                    copy.write_row(row)
        if conflict_key is None:
            return len(df)
        cursor.execute(f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} FROM {target} ORDER BY wfm_row "
                       f"ON CONFLICT ({quote(conflict_key)}) DO NOTHING")
        added = cursor.rowcount
        cursor.execute(f"DROP TABLE {target}")
        return added
    finally:
        cursor.close()


# Each second of a day as SQLAlchemy's SQLite DATETIME text; built on first use.
_CLOCK: list[np.ndarray] = []


def _datetime_text(ts: np.ndarray) -> np.ndarray:
    """datetime64 values as "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's SQLite storage format), None for NaT.

    Assembled from a per-day and a per-second lookup: np.datetime_as_string is slow per value.
    """
    if not _CLOCK:
        _CLOCK.append(np.array([f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000" for s in range(86_400)],
                               dtype=object))
    ts = ts.astype("datetime64[us]")
    nat = np.isnat(ts)
    us = np.where(nat, 0, ts.view(np.int64))
    days, rem = np.divmod(us, 86_400_000_000)
    seconds, micro = np.divmod(rem, 1_000_000)
    codes, unique_days = pd.factorize(days)
    day_text = np.datetime_as_string(unique_days.astype("datetime64[D]")).astype(object)
    text = day_text[codes] + _CLOCK[0][seconds]
    odd = np.flatnonzero(nat | (micro != 0) | (days < -719162) | (days > 2932896))  # NaT, sub-second, years outside 1..9999
    if len(odd):
        exact = np.datetime_as_string(ts[odd], unit="us")
        text[odd] = [None if t == "NaT" else t.replace("T", " ") for t in exact.tolist()]
    return text


def _sqlite_column_values(s: pd.Series, col) -> list:
    """One column as a list of values the sqlite3 driver stores the way SQLAlchemy reads them back."""
    if isinstance(col.type, DateTime):
        return _datetime_text(pd.to_datetime(s).to_numpy(dtype="datetime64[us]")).tolist()
    if isinstance(col.type, Date):
        ts = pd.to_datetime(s).to_numpy(dtype="datetime64[D]")
        codes, days = pd.factorize(ts.view(np.int64))  # few distinct days: each formatted once
        text = np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)
        text[np.isnat(days.astype("datetime64[D]"))] = None
        return text[codes].tolist()
    if isinstance(col.type, Boolean | Integer | Float):
        kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else "?"  # nullable extension dtypes: general path
        if (isinstance(col.type, Float) and kind == "f") or (isinstance(col.type, Integer) and kind in "iu") \
                or (isinstance(col.type, Boolean) and kind == "b"):
            values = s.to_numpy().astype(object)  # Python scalars
            if kind == "f":
                values[np.isnan(s.to_numpy())] = None
            return values.tolist()
        kind = "boolean" if isinstance(col.type, Boolean) else "Int64" if isinstance(col.type, Integer) else "Float64"
        return pd.array(s, dtype=kind).to_numpy(dtype=object, na_value=None).tolist()
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        return s.to_numpy(dtype=object, na_value=None).tolist()
    return s.astype(object).where(s.notna(), None).tolist()


def sqlite_values(table: Table, df: pd.DataFrame) -> tuple[list[str], list[list]]:
    """The columns of `table` that `df` has, and each as the list of values sqlite3 stores for it.

    Separate from the insert so another process can prepare them (see `bronze`).
    """
    cols = [c for c in table.columns if c.name in df.columns]
    return [c.name for c in cols], [_sqlite_column_values(df[c.name], c) for c in cols]


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

def _typed_column(values: np.ndarray, col) -> pd.Series | np.ndarray:
    """One result column (object array) in the pandas type that matches the table column's type."""
    if isinstance(col.type, DateTime) or isinstance(col.type, Date):
        return pd.to_datetime(values, format="ISO8601").astype("datetime64[ns]")
    if isinstance(col.type, Boolean):
        s = pd.Series(values, dtype=object)
        return s.astype("boolean").astype(bool) if s.notna().all() else s.astype("boolean")
    if isinstance(col.type, Float):
        return np.asarray(pd.to_numeric(values), dtype="float64")
    if isinstance(col.type, Integer):
        s = pd.to_numeric(pd.Series(values, dtype=object))
        return s.astype("int64") if s.notna().all() else s.astype("Int64")
    return pd.array(values, dtype="str")


_PG_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_PG_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_PG_BOOLEAN = {"t": True, "f": False, "1": True, "0": False}  # a boolean column, or 0/1 computed into one


def _pg_unescape(value: object) -> object:
    return _PG_ESCAPE.sub(lambda m: _PG_ESCAPED.get(m.group(1), m.group(1)), value) if isinstance(value, str) else value


def _postgres_read(conn: Connection, stmt, names: list[str], cols: list) -> pd.DataFrame:
    """A SELECT through COPY ... TO STDOUT, parsed by pandas' C reader: about 3x psycopg's row-by-row fetch.

    COPY's text format: tab-separated, NULL as \\N, and backslash escapes inside values (undone here for
    the few text values that have one), so NULL, "" and "\\N" stay apart. Typed like the other backends.
    """
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    buffer = io.BytesIO()
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY ({compiled.string}) TO STDOUT", compiled.params) as copy:
            for block in copy:
                buffer.write(block)
    floats = {n for n, c in zip(names, cols) if isinstance(c.type, Float)}
    escapes = b"\\" in buffer.getvalue().replace(b"\\N", b"")  # any backslash besides NULL markers
    if buffer.tell() == 0:
        raw = pd.DataFrame({n: np.array([], dtype="float64" if n in floats else object) for n in names})
    else:
        buffer.seek(0)
        raw = pd.read_csv(buffer, sep="\t", header=None, names=names, quoting=csv.QUOTE_NONE, encoding="utf-8",
                          dtype={n: "float64" if n in floats else object for n in names}, keep_default_na=False,
                          na_values={n: ["\\N", "NaN"] if n in floats else ["\\N"] for n in names},
                          skip_blank_lines=False)
    out = {}
    for name, col in zip(names, cols):
        values = raw[name].to_numpy()
        if isinstance(col.type, Boolean):
            values = pd.Series(values, dtype=object).map(_PG_BOOLEAN).to_numpy(dtype=object)
        elif escapes and not isinstance(col.type, Float | Integer | Date | DateTime):
            escaped = np.array([isinstance(v, str) and "\\" in v for v in values.tolist()], dtype=bool)
            if escaped.any():
                values = values.copy()
                values[escaped] = [_pg_unescape(v) for v in values[escaped]]
        out[name] = values if name in floats else _typed_column(values, col)
    return pd.DataFrame(out, index=pd.RangeIndex(len(raw)))


def read_frame(conn: Connection, stmt, table: Table | None = None) -> pd.DataFrame:
    """Run a SELECT and return a DataFrame with pandas types that match the table's column types."""
    cols = {c.name: c for c in (table.columns if table is not None else [])}
    if _has_copy(conn) and isinstance(stmt, Select):
        names = list(stmt.selected_columns.keys())
        if len(set(names)) == len(names) and all(n in cols for n in names):
            return _postgres_read(conn, stmt, names, [cols[n] for n in names])
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
        return pd.DataFrame({n: _typed_column(v, cols[n]) for n, v in zip(names, columns)},
                            index=pd.RangeIndex(len(columns[0]) if columns else len(rows)))
    df = pd.DataFrame(result.fetchall(), columns=names)
    for col in cols.values():
        if col.name in df.columns:
            df[col.name] = _typed_column(df[col.name].to_numpy(dtype=object), col)
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

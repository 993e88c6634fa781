"""PostgreSQL's fast path (psycopg 3): COPY rows in (about 5x its executemany) and SELECT results out (about 3x its
row-by-row fetch), in the caller's transaction, typed like the other backends.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table
from sqlalchemy.engine import Connection

from common.db_values import sqlite_values, typed_column


def has_copy(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def postgres_copy(conn: Connection, table: Table, df: pd.DataFrame, batch_rows: int, conflict_key: str | None) -> int:
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


_PG_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_PG_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_PG_BOOLEAN = {"t": True, "f": False, "1": True, "0": False}  # a boolean column, or 0/1 computed into one


def _pg_unescape(value: object) -> object:
    return _PG_ESCAPE.sub(lambda m: _PG_ESCAPED.get(m.group(1), m.group(1)), value) if isinstance(value, str) else value


def postgres_read(conn: Connection, stmt, names: list[str], cols: list) -> pd.DataFrame:
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
        out[name] = values if name in floats else typed_column(values, col)
    return pd.DataFrame(out, index=pd.RangeIndex(len(raw)))

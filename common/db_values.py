"""Values between pandas and SQL: rows as plain Python for SQLAlchemy, columns as the sqlite3 driver stores them,
and result columns back in the pandas type that matches the table column's type.

Pure (no connection): `db` and `db_postgres` use these for every backend; another process can prepare values with
`sqlite_values` while one writes (see `bronze`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table


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


def typed_column(values: np.ndarray, col) -> pd.Series | np.ndarray:
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

"""Write demo legs where the loader finds them: a drop folder of nightly CSV exports, or a source database.

The legs come from `common.demo_model.demo_legs` (any frame with `EXPORT_COLUMNS` does).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from common.demo_model import _DAY_S, EXPORT_COLUMNS
from common.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_TIME_COLUMNS = ("StartTime", "AnswerTime", "EndTime")
_INT_COLUMNS = ("WaitTime", "HandleTime")
_TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text_columns(legs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each export column as an object array of str: times "YYYY-MM-DD HH:MM:SS",
    "" where missing. Times join a per-day and a per-second lookup, which is much
    faster than strftime on millions of values."""
    missing = [c for c in EXPORT_COLUMNS if c not in legs.columns]
    if missing:
        raise DataError(f"legs: missing columns {missing}; expected the columns of demo_legs {list(EXPORT_COLUMNS)}")
    clock = np.array([f" {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in range(_DAY_S)], dtype=object)
    text = {}
    for column in EXPORT_COLUMNS:
        values = legs[column]
        if column in _TIME_COLUMNS:
            seconds = values.to_numpy("datetime64[s]")
            missing_time = np.isnat(seconds)
            ticks = np.where(missing_time, 0, seconds.astype(np.int64))
            day, day_index = np.unique(ticks // _DAY_S, return_inverse=True)
            day_text = np.datetime_as_string(day.astype("datetime64[D]")).astype(object)
            text[column] = np.where(missing_time, "", day_text[day_index] + clock[ticks % _DAY_S])
        elif column in _INT_COLUMNS:
            text[column] = np.array(list(map(str, values.to_numpy(np.int64).tolist())), dtype=object)
        else:
            text[column] = values.fillna("").to_numpy(dtype=object)
    return text


def _malformed_row(fields: dict[str, str], kind: int, call_id: str) -> list[str]:
    """One export row broken in one of five ways a real drop folder shows."""
    fields = dict(fields, CallID=call_id)
    if kind == 0:
        fields["StartTime"] = "2025-13-45 25:61:00"
    elif kind == 1:
        fields["HandleTime"] = str(-max(1, abs(int(fields["HandleTime"]))))
    elif kind == 2:
        fields["Result"] = "XYZ"
    elif kind == 3:
        fields["Queue"] = ""
    else:
        fields["WaitTime"] = "abc"
    return [fields[c] for c in EXPORT_COLUMNS]


def _write_if_changed(path: Path, content: bytes) -> bool:
    """Write atomically unless the file already holds exactly `content`; True if written."""
    if path.exists() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return False
    # A temp name outside the *.csv glob, so a loader never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True


def _day_columns(legs: pd.DataFrame, first=None, last=None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(days, bounds, text columns sorted by day): day d's rows are bounds[d]:bounds[d + 1]. Days run from
    `first` (else the first leg's date) to `last` (else the last leg's); legs outside them are left out."""
    text = _text_columns(legs)
    if legs["StartTime"].isna().any():
        raise DataError("legs.StartTime: missing values; every leg needs a start time to pick its file")
    day = legs["StartTime"].to_numpy("datetime64[D]")
    order = np.argsort(day, kind="stable")
    day = day[order]  # an empty frame needs `first` and `last`
    first = day[0] if first is None else np.datetime64(first, "D")
    last = day[-1] if last is None else np.datetime64(last, "D")
    all_days = np.arange(first, last + 1)
    bounds = np.searchsorted(day, np.append(all_days, last + 1))
    return all_days, bounds, [text[c][order] for c in EXPORT_COLUMNS]


def _write_day_files(inbox: Path, all_days, bounds, columns, extra: dict[int, list[list[str]]]
                     ) -> tuple[list[Path], int]:
    """One `acd_export_YYYY-MM-DD.csv` per day (header, its rows, then its broken rows); (paths, files written)."""
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    paths, written = [], 0
    for d, file_day in enumerate(all_days):
        path = inbox / f"acd_export_{file_day}.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")  # quotes a field only when it needs it
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(zip(*(column[bounds[d]:bounds[d + 1]] for column in columns)))
        writer.writerows(extra.get(d, []))
        written += _write_if_changed(path, buffer.getvalue().encode("utf-8"))
        paths.append(path)
    return paths, written


def write_demo_csvs(legs: pd.DataFrame, inbox: Path, malformed_rows: int = 5, seed: int = 42) -> list[Path]:
    """Write the legs as nightly ACD exports: `inbox/acd_export_YYYY-MM-DD.csv`, one
    per day from the first to the last StartTime date (header only on a day
    without calls), one row per leg, plus `malformed_rows` broken rows spread
    over a few files (chosen by `seed` among the frame's days: another frame,
    other files; the living demo uses `write_demo_inbox`).

    A file that already holds identical content is left alone (its mtime too).
    Returns every file of the data set in date order, written now or already identical.
    """
    if isinstance(malformed_rows, bool) or not isinstance(malformed_rows, int) or malformed_rows < 0:
        raise ConfigError(f"malformed_rows == {malformed_rows!r}, must be an integer >= 0")
    _text_columns(legs)  # checks the columns, also of an empty frame
    if len(legs) == 0:
        return []
    all_days, bounds, columns = _day_columns(legs)
    rng = np.random.default_rng(seed)
    with_rows = np.flatnonzero(np.diff(bounds) > 0)
    n_files = min(len(with_rows), math.ceil(malformed_rows / 2))
    bad_days = np.sort(rng.choice(with_rows, size=n_files, replace=False))
    extra: dict[int, list[list[str]]] = {}
    for i in range(malformed_rows):
        d = int(bad_days[i % n_files])
        row = int(rng.integers(bounds[d], bounds[d + 1]))
        fields = {c: column[row] for c, column in zip(EXPORT_COLUMNS, columns)}
        call_id = f"{str(all_days[d]).replace('-', '')}-X{i:05d}"  # cannot collide with a leg's id
        extra.setdefault(d, []).append(_malformed_row(fields, i % 5, call_id))
    paths, written = _write_day_files(inbox, all_days, bounds, columns, extra)
    log.info("demo csv: %d files (%d written, %d unchanged), %d legs, %d malformed rows, %s",
             len(paths), written, len(paths) - written, len(legs), malformed_rows, inbox)
    return paths


MALFORMED_EVERY_DAYS = 30  # the living demo: one broken row on every 30th day, the five kinds in turn


def write_demo_inbox(legs: pd.DataFrame, inbox: Path, first, last, seed: int = 42) -> tuple[list[Path], int]:
    """Write the days `first`..`last` of the legs as nightly exports, each file a function of its own day
    only, so a later night adds files and never rewrites one: legs on other days are left out, a day
    without calls gets a header-only file, and a day whose date ordinal + seed is a multiple of
    `MALFORMED_EVERY_DAYS` gets one broken row (the row picked by that day's own generator).

    A file that already holds identical content is left alone. Returns (every file in date order, files written).
    """
    if np.datetime64(last, "D") < np.datetime64(first, "D"):
        raise ConfigError(f"last: {last} is before first {first}; give last >= first")
    all_days, bounds, columns = _day_columns(legs, first, last)
    extra: dict[int, list[list[str]]] = {}
    for d, file_day in enumerate(all_days):
        ordinal = int(file_day.astype(np.int64)) + 719_163  # days since 0001-01-01, as in demo_model
        if (ordinal + seed) % MALFORMED_EVERY_DAYS or bounds[d] == bounds[d + 1]:
            continue
        rng = np.random.default_rng([seed, ordinal, 1])  # 1: not the stream demo_model draws the day's calls from
        row = int(rng.integers(bounds[d], bounds[d + 1]))
        fields = {c: column[row] for c, column in zip(EXPORT_COLUMNS, columns)}
        kind = ordinal // MALFORMED_EVERY_DAYS % 5
        extra[d] = [_malformed_row(fields, kind, f"{str(file_day).replace('-', '')}-X{kind:05d}")]
    paths, written = _write_day_files(inbox, all_days, bounds, columns, extra)
    log.info("demo csv: %d files %s..%s (%d written, %d unchanged), %d broken rows, %s",
             len(paths), all_days[0], all_days[-1], written, len(paths) - written, len(extra), inbox)
    return paths, written


def write_demo_sqlite_source(legs: pd.DataFrame, path: Path, table: str = "acd_calls") -> None:
    """Replace `table` in the SQLite file `path` with the legs, one row per leg, as a
    source ACD database: times as "YYYY-MM-DD HH:MM:SS" text, NULL where missing,
    WaitTime/HandleTime as integers, an index on StartTime for watermark queries."""
    if not _TABLE_RE.fullmatch(table):
        raise ConfigError(f"table: {table!r} is not a plain SQL identifier; use letters, digits and _")
    text = _text_columns(legs)
    columns = []
    for column in EXPORT_COLUMNS:
        if column in _INT_COLUMNS:
            columns.append(legs[column].to_numpy(np.int64).tolist())
        else:
            values = text[column]
            columns.append(np.where(values == "", None, values).tolist())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    types = ", ".join(f'"{c}" {"INTEGER" if c in _INT_COLUMNS else "TEXT"}' for c in EXPORT_COLUMNS)
    con = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN: DDL inside the transaction too
    try:
        con.execute("BEGIN")
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
        con.execute(f'CREATE TABLE "{table}" ({types})')
        con.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(EXPORT_COLUMNS))})', zip(*columns))
        con.execute(f'CREATE INDEX "ix_{table}_StartTime" ON "{table}" ("StartTime")')
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    log.info("demo sqlite source: %d legs -> %s table %s", len(legs), path, table)

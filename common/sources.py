"""Read a user's export (CSV files or a SQL query) and map it onto canonical bronze columns.

Reading yields raw text chunks (every value a string, so nothing is lost to type
guessing); `parse_cdr_chunk` / `parse_interval_chunk` turn one chunk into typed
canonical rows plus rejects, each reject with the reason a person can act on.
Column names of the export come from `source.columns`; outcome values from
`source.outcome_map`. A new ACD export needs config, not code.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.calendar import localize, to_local
from common.config import SourceConfig, TimestampSpec
from common.errors import DataError

MAX_DURATION_SECONDS = 24 * 3600  # a single call leg longer than a day is a broken record, not a long call
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
_BAD_LINE = re.compile(r"Skipping line (\d+): (.*)")


@dataclass(frozen=True)
class RawChunk:
    """Text values of consecutive source rows; `first_row` is the 1-based data row number of the first one."""

    frame: pd.DataFrame
    first_row: int
    bad_lines: tuple[tuple[int, str], ...] = ()  # (data row number, parser message) of lines pandas could not split


# --- reading --------------------------------------------------------------------------------------------

def source_export_columns(spec: SourceConfig) -> list[str]:
    """Every export column the mapping needs, in mapping order."""
    needed: list[str] = []
    for value in spec.columns.values():
        if isinstance(value, str):
            needed.append(value)
        elif isinstance(value, list):
            needed.extend(value)
        else:
            needed.extend(c for c in (value.column, value.date, value.time) if c)
    return list(dict.fromkeys(needed))


def _csv_encoding(encoding: str) -> str:
    # Excel writes a byte-order mark; utf-8-sig reads files with and without one alike.
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def check_csv_header(path: Path, spec: SourceConfig) -> list[str]:
    """The file's header; DataError naming the file, the missing export column and its config key."""
    try:
        header = pd.read_csv(path, sep=spec.delimiter, encoding=_csv_encoding(spec.encoding), nrows=0, dtype=str)
    except pd.errors.EmptyDataError:
        return []
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {spec.encoding} text ({exc.reason} at byte {exc.start}); "
                        "set source.encoding (e.g. cp1252 or latin-1)") from None
    columns = [str(c).strip() for c in header.columns]
    missing = []
    for key, value in spec.columns.items():
        wanted = [value] if isinstance(value, str) else value if isinstance(value, list) else \
            [c for c in (value.column, value.date, value.time) if c]
        missing += [f"{col!r} (source.columns.{key})" for col in wanted if col not in columns]
    if missing:
        hint = " (is source.delimiter right?)" if len(columns) == 1 else ""
        raise DataError(f"{path}: column {', '.join(missing)} not in the header{hint}; "
                        f"the header has: {', '.join(columns[:30])}")
    return columns


def iter_csv_chunks(path: Path, spec: SourceConfig) -> Iterator[RawChunk]:
    """Stream a CSV export as raw text chunks of `source.chunk_rows` rows (a multi-GB file is never read whole)."""
    columns = check_csv_header(path, spec)
    if not columns:
        return
    first = 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pd.read_csv(
                    path, sep=spec.delimiter, encoding=_csv_encoding(spec.encoding), dtype=str, keep_default_na=False,
                    na_filter=False, chunksize=spec.chunk_rows, on_bad_lines="warn", encoding_errors="strict") as reader:
                for frame in reader:
                    frame.columns = [str(c).strip() for c in frame.columns]
                    bad = tuple(_bad_lines(caught))
                    caught.clear()
                    yield RawChunk(frame, first, bad)
                    first += len(frame)
            bad = tuple(_bad_lines(caught))
            if bad:
                yield RawChunk(pd.DataFrame(columns=columns, dtype=str), first, bad)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {spec.encoding} text near data row {first} ({exc.reason}); "
                        "set source.encoding (e.g. cp1252 or latin-1)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot be read as CSV near data row {first}: {str(exc).strip()}") from None


def _bad_lines(caught: list) -> Iterator[tuple[int, str]]:
    for w in caught:
        for line in str(w.message).strip().splitlines():
            m = _BAD_LINE.search(line)
            if m:
                yield int(m.group(1)) - 1, m.group(2)  # physical line 2 is data row 1


def iter_sql_chunks(url: str, query: str, spec: SourceConfig, watermark: str | None) -> Iterator[RawChunk]:
    """Stream rows of a SQL source as text chunks; `:watermark` in the query is bound to the newest start_time loaded."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    params = {"watermark": watermark or "1900-01-01 00:00:00"} if ":watermark" in query else {}
    first = 1
    try:
        with engine.connect() as conn:
            for frame in pd.read_sql(text(query), conn, params=params, chunksize=spec.chunk_rows):
                yield RawChunk(_as_text(frame, spec), first)
                first += len(frame)
    except Exception as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"source.sql_query failed: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _as_text(frame: pd.DataFrame, spec: SourceConfig) -> pd.DataFrame:
    """A SQL result as the same text a CSV export would hold, so one parser serves both."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            fmt = spec.timestamp_format or "%Y-%m-%d %H:%M:%S"
            out[str(col)] = s.dt.strftime(fmt).fillna("")
        else:
            out[str(col)] = s.astype(object).where(s.notna(), "").astype(str)
    return pd.DataFrame(out, index=frame.index)


# --- mapping and parsing ---------------------------------------------------------------------------------

def _mapped_text(raw: pd.DataFrame, spec: SourceConfig) -> pd.DataFrame:
    """Canonical columns as stripped text (joined ids and date+time pairs assembled), '' where missing."""
    out: dict[str, pd.Series] = {}
    for name, value in spec.columns.items():
        if isinstance(value, str):
            s = raw[value].str.strip()
        elif isinstance(value, list):
            parts = [raw[c].str.strip() for c in value]
            s = parts[0]
            for p in parts[1:]:
                s = s + "|" + p
        else:
            s = raw[value.column].str.strip() if value.column else raw[value.date].str.strip()
            if value.time:
                s = s + " " + raw[value.time].str.strip()
        missing = spec.missing_values.get(name, [])
        if missing:
            s = s.where(~s.isin(missing), "")
        out[name] = s
    return pd.DataFrame(out, index=raw.index)


def row_hashes(text: pd.DataFrame) -> pd.Series:
    """A 128-bit content hash per row (two independent 64-bit hashes): same values -> same hash, across files and runs."""
    a = pd.util.hash_pandas_object(text, index=False, hash_key="wfm-forecast-k01")
    b = pd.util.hash_pandas_object(text, index=False, hash_key="wfm-forecast-k02")
    return pd.Series([f"{x:016x}{y:016x}" for x, y in zip(a.to_numpy(), b.to_numpy())], index=text.index, dtype="str")


class _Rejects:
    """Collects the first reason each row fails for; a row is rejected once, with its first problem."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series(pd.NA, index=index, dtype="object")

    def add(self, mask: pd.Series, reasons: pd.Series | str) -> None:
        mask = mask.fillna(False).astype(bool) & self.reason.isna()
        if not mask.any():
            return
        self.reason = self.reason.copy()
        self.reason[mask] = reasons[mask] if isinstance(reasons, pd.Series) else reasons

    @property
    def mask(self) -> pd.Series:
        return self.reason.notna()


def _parse_timestamps(text: pd.Series, fmt: str | None, tz: str) -> tuple[pd.Series, pd.Series]:
    """Local and UTC naive timestamps; values with an explicit offset are converted, naive ones are local."""
    has_tz = text.str.contains(_TZ_SUFFIX, regex=True) & (text != "")
    local = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    utc = local.copy()
    naive = (~has_tz) & (text != "")
    if naive.any():
        parsed = pd.to_datetime(text[naive], format=fmt or "ISO8601", errors="coerce").astype("datetime64[ns]")
        local[naive] = parsed
        ok = naive & local.notna()
        utc[ok] = localize(local[ok], tz)
    if has_tz.any():
        parsed = pd.to_datetime(text[has_tz], format="ISO8601", errors="coerce", utc=True)
        utc[has_tz] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        ok = has_tz & utc.notna()
        local[ok] = to_local(utc[ok], tz)
    return local, utc


def _parse_number(text: pd.Series, decimal: str) -> pd.Series:
    if decimal != ".":
        text = text.str.replace(".", "", regex=False).str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text.where(text != "", None), errors="coerce").astype("float64")


def _timestamp_reasons(name: str, text: pd.Series, fmt: str | None) -> pd.Series:
    expected = f"format {fmt}" if fmt else "ISO 8601, e.g. 2025-03-10 08:30:00"
    return name + ": cannot parse " + text.map(repr) + f" (expected {expected}; set source.timestamp_format)"


def _spec_format(spec: SourceConfig, name: str) -> str | None:
    value = spec.columns.get(name)
    if isinstance(value, TimestampSpec) and value.format:
        return value.format
    return spec.timestamp_format


def _raw_lines(raw: pd.DataFrame, delimiter: str) -> pd.Series:
    if raw.empty:
        return pd.Series([], dtype="str", index=raw.index)
    joined = raw.iloc[:, 0].astype(str)
    for c in raw.columns[1:]:
        joined = joined + delimiter + raw[c].astype(str)
    return joined


def parse_cdr_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg) and rejects (one row per unusable source row, with the reason)."""
    raw = chunk.frame
    text = _mapped_text(raw, spec)
    rej = _Rejects(text.index)
    for name in ("call_id", "queue", "start_time", "outcome"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")

    start, start_utc = _parse_timestamps(text["start_time"], _spec_format(spec, "start_time"), tz)
    rej.add(start.isna() & (text["start_time"] != ""), _timestamp_reasons("start_time", text["start_time"],
                                                                        _spec_format(spec, "start_time")))
    optional_times = {}
    for name in ("answer_time", "end_time"):
        if name in text:
            local, _ = _parse_timestamps(text[name], _spec_format(spec, name), tz)
            rej.add(local.isna() & (text[name] != ""), _timestamp_reasons(name, text[name], _spec_format(spec, name)))
            optional_times[name] = local
        else:
            optional_times[name] = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")

    outcome_lookup = {v.strip().casefold(): k for k, values in spec.outcome_map.items() for v in values}
    outcome = text["outcome"].str.casefold().map(outcome_lookup)
    rej.add(outcome.isna() & (text["outcome"] != ""),
            "outcome: " + text["outcome"].map(repr) + " is not in source.outcome_map "
            "(add it under answered, abandoned, short_abandon or other)")

    durations = {}
    for name in ("handle_seconds", "talk_seconds", "hold_seconds", "wrap_seconds", "wait_seconds"):
        if name not in text:
            continue
        value = _parse_number(text[name], spec.decimal)
        rej.add(value.isna() & (text[name] != ""), name + ": " + text[name].map(repr) + " is not a number")
        rej.add(value < 0, name + ": " + text[name] + " is negative")
        rej.add(value > MAX_DURATION_SECONDS, name + ": " + text[name] + f" is longer than a day ({MAX_DURATION_SECONDS} s)")
        durations[name] = value
    if "handle_seconds" in durations:
        handle = durations["handle_seconds"]
    else:
        parts = [durations[p] for p in ("talk_seconds", "hold_seconds", "wrap_seconds") if p in durations]
        stacked = pd.concat(parts, axis=1)
        handle = stacked.sum(axis=1, min_count=1)
    wait = durations.get("wait_seconds")
    if wait is None:
        # No wait column: derive it from answer/end times, the way an ACD computes it.
        answered = outcome == "answered"
        derived = np.where(answered, (optional_times["answer_time"] - start).dt.total_seconds(),
                           (optional_times["end_time"] - start).dt.total_seconds())
        wait = pd.Series(derived, index=text.index, dtype="float64").where(lambda s: s >= 0)

    legs = pd.DataFrame({
        "call_id": text["call_id"],
        "queue": text["queue"],
        "start_time": start,
        "start_time_utc": start_utc,
        "start_date": start.dt.normalize(),
        "answer_time": optional_times["answer_time"],
        "end_time": optional_times["end_time"],
        "outcome": outcome.astype("str"),
        "outcome_raw": text["outcome"],
        "handle_seconds": handle,
        "wait_seconds": wait,
    }, index=text.index)
    for name in ("customer_id", "caller_id", "agent_id", "parent_call_id", "channel"):
        legs[name] = text[name].where(text[name] != "", None) if name in text else None
    legs["source_row"] = np.arange(chunk.first_row, chunk.first_row + len(text), dtype="int64")
    legs["row_hash"] = row_hashes(text) if len(text) else pd.Series([], dtype="str")
    return _split(legs, rej, raw, chunk, spec, source_name)


def parse_interval_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per reported interval) and rejects."""
    raw = chunk.frame
    text = _mapped_text(raw, spec)
    rej = _Rejects(text.index)
    for name in ("queue", "interval_start", "offered"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    start, start_utc = _parse_timestamps(text["interval_start"], _spec_format(spec, "interval_start"), tz)
    rej.add(start.isna() & (text["interval_start"] != ""),
            _timestamp_reasons("interval_start", text["interval_start"], _spec_format(spec, "interval_start")))
    rows = pd.DataFrame({
        "queue": text["queue"], "interval_start": start, "interval_start_utc": start_utc,
        "start_date": start.dt.normalize()}, index=text.index)
    for name in ("offered", "handled", "abandoned", "aht_seconds"):
        if name not in text:
            rows[name] = np.nan
            continue
        value = _parse_number(text[name], spec.decimal)
        rej.add(value.isna() & (text[name] != ""), name + ": " + text[name].map(repr) + " is not a number")
        rej.add(value < 0, name + ": " + text[name] + " is negative")
        rows[name] = value
    rows["source_row"] = np.arange(chunk.first_row, chunk.first_row + len(text), dtype="int64")
    rows["row_hash"] = row_hashes(text) if len(text) else pd.Series([], dtype="str")
    return _split(rows, rej, raw, chunk, spec, source_name)


def _split(rows: pd.DataFrame, rej: _Rejects, raw: pd.DataFrame, chunk: RawChunk, spec: SourceConfig,
           source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    bad = rej.mask
    rejects = pd.DataFrame({
        "source_row": rows["source_row"][bad],
        "reason": rej.reason[bad].astype("str"),
        "raw": _raw_lines(raw[bad], spec.delimiter),
    })
    if chunk.bad_lines:
        rejects = pd.concat([rejects, pd.DataFrame({
            "source_row": [r for r, _ in chunk.bad_lines],
            "reason": [f"cannot split the line into the header's columns: {msg}" for _, msg in chunk.bad_lines],
            "raw": [None] * len(chunk.bad_lines),
        })], ignore_index=True)
    rejects["source_name"] = source_name
    key = rejects["source_name"] + "|" + rejects["source_row"].astype(str) + "|" + rejects["reason"] + "|" + \
        rejects["raw"].fillna("")
    rejects["row_hash"] = row_hashes(key.to_frame()) if len(rejects) else pd.Series([], dtype="str")
    return rows[~bad].reset_index(drop=True), rejects.reset_index(drop=True)

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
# Columns are handled as numpy object arrays of str: a pandas string method runs a Python lambda per value
# plus per-call overhead, which made parsing the slowest part of a load. Reasons for rejects are built only
# for the rejected rows.

def _stripped(values: np.ndarray) -> np.ndarray:
    # str.strip returns the very same object when there is nothing to strip, so clean exports cost little.
    return np.array([v.strip() for v in values.tolist()], dtype=object)


def _mapped_text(raw: dict[str, np.ndarray], spec: SourceConfig) -> dict[str, np.ndarray]:
    """Canonical columns as stripped text (joined ids and date+time pairs assembled), '' where missing."""
    stripped: dict[str, np.ndarray] = {}

    def col(name: str) -> np.ndarray:
        if name not in stripped:
            stripped[name] = _stripped(raw[name])
        return stripped[name]

    out: dict[str, np.ndarray] = {}
    for name, value in spec.columns.items():
        if isinstance(value, str):
            s = col(value)
        elif isinstance(value, list):
            s = col(value[0])
            for c in value[1:]:
                s = s + "|" + col(c)
        else:
            s = col(value.column) if value.column else col(value.date)
            if value.time:
                s = s + " " + col(value.time)
        missing = spec.missing_values.get(name, [])
        if missing and len(s):
            s = np.where(np.isin(s, np.array(missing, dtype=object)), "", s)
        out[name] = s
    return out


def _combine_hashes(hashes: list[np.ndarray], n: int) -> np.ndarray:
    """pandas' combine_hash_arrays (CPython's tuple hash), so rows hash exactly as hash_pandas_object hashes them."""
    out = np.full(n, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i, h in enumerate(hashes):
        inverse_i = len(hashes) - i
        out ^= h
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    return out + np.uint64(97531)


def _column_hashes(values: np.ndarray, keys: tuple[str, ...]) -> list[np.ndarray]:
    """hash_array of one text column under each key; the distinct values are found once and hashed once per key."""
    sample = values[:2000].tolist()
    if len(set(sample)) > len(sample) // 2:  # mostly distinct (ids, times): factorizing would not pay
        return [pd.util.hash_array(values, hash_key=k, categorize=False) for k in keys]
    codes, uniques = pd.factorize(values)
    return [pd.util.hash_array(np.asarray(uniques, dtype=object), hash_key=k, categorize=False)[codes] for k in keys]


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hash_strings(columns: list[np.ndarray], n: int) -> np.ndarray:
    """The 32-hex-digit row hash of `row_hashes`, as an object array of str."""
    if n == 0:
        return np.array([], dtype=object)
    per_column = [_column_hashes(c, _HASH_KEYS) for c in columns]
    a, b = (_combine_hashes([h[k] for h in per_column], n) for k in range(len(_HASH_KEYS)))
    nibbles = np.stack([a, b], axis=1).astype(">u8").view(np.uint8).reshape(n, 16)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = _HEX_DIGITS[nibbles >> 4]
    chars[:, 1::2] = _HEX_DIGITS[nibbles & 15]
    return chars.view("S32").ravel().astype("U32").astype(object)


_HASH_KEYS = ("wfm-forecast-k01", "wfm-forecast-k02")


def row_hashes(text: pd.DataFrame) -> pd.Series:
    """A 128-bit content hash per row (two independent 64-bit hashes): same values -> same hash, across files and runs.

    Equal to `hash_pandas_object(text, index=False, hash_key=k)` for the two keys, as hex (the bronze
    unique key depends on it staying so).
    """
    columns = [text[c].to_numpy(dtype=object) for c in text.columns]
    return pd.Series(_hash_strings(columns, len(text)), index=text.index, dtype="str")


class _Rejects:
    """Collects the first reason each row fails for; a row is rejected once, with its first problem."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.mask = np.zeros(n, dtype=bool)

    def add(self, mask: np.ndarray, reason) -> None:
        """`reason`: a str, or a function of the rows' positions returning their reasons (built only if needed)."""
        rows = np.flatnonzero(mask & ~self.mask)
        if not len(rows):
            return
        self.reason[rows] = reason if isinstance(reason, str) else list(reason(rows))
        self.mask[rows] = True


def _tz_suffix(values: np.ndarray) -> np.ndarray:
    """Which values match `_TZ_SUFFIX` (end in Z or a UTC offset), without a regex call per value.

    The last six characters are compared as code points; values the comparison cannot settle exactly
    (non-ASCII, which the regex's digit class may match, a trailing newline, very long values) ask the regex.
    """
    n = len(values)
    out = np.zeros(n, dtype=bool)
    if not n:
        return out
    lengths = np.fromiter(map(len, values.tolist()), dtype=np.int64, count=n)
    idx = np.flatnonzero((lengths > 0) & (lengths <= 64))
    unsure = np.flatnonzero(lengths > 64)
    if len(idx):
        lens = lengths[idx]
        codes = np.array(values[idx].tolist(), dtype=f"U{int(lens.max())}").view(np.uint32).reshape(len(idx), -1)
        pos = lens[:, None] - 6 + np.arange(6)
        tail = np.where(pos >= 0, np.take_along_axis(codes, np.maximum(pos, 0), axis=1), 0)
        digit = (tail >= 48) & (tail <= 57)
        sign = (tail == 43) | (tail == 45)
        out[idx] = ((tail[:, 5] == 90)
                    | (sign[:, 1] & digit[:, 2:].all(axis=1))
                    | (sign[:, 0] & digit[:, 1] & digit[:, 2] & (tail[:, 3] == 58) & digit[:, 4] & digit[:, 5]))
        unsure = np.concatenate([unsure, idx[(tail > 127).any(axis=1) | (tail[:, 5] == 10)]])
    if len(unsure):
        out[unsure] = [_TZ_SUFFIX.search(v) is not None for v in values[unsure].tolist()]
    return out


def _parse_timestamps(text: np.ndarray, fmt: str | None, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local and UTC naive timestamps (datetime64[ns]); values with an explicit offset are converted, naive ones
    are local."""
    local = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    utc = local.copy()
    filled = text != ""
    has_tz = _tz_suffix(text) & filled
    naive = filled & ~has_tz
    if naive.any():
        subset = text if naive.all() else text[naive]
        local[naive] = pd.to_datetime(subset, format=fmt or "ISO8601", errors="coerce").to_numpy("datetime64[ns]")
        ok = naive & ~np.isnat(local)
        utc[ok] = localize(pd.Series(local[ok]), tz).to_numpy()
    if has_tz.any():
        parsed = pd.to_datetime(text[has_tz], format="ISO8601", errors="coerce", utc=True)
        utc[has_tz] = parsed.tz_localize(None).to_numpy("datetime64[ns]")
        ok = has_tz & ~np.isnat(utc)
        local[ok] = to_local(pd.Series(utc[ok]), tz).to_numpy()
    return local, utc


def _parse_number(text: np.ndarray, decimal: str) -> np.ndarray:
    if decimal != ".":
        text = np.array([v.replace(".", "").replace(decimal, ".") for v in text.tolist()], dtype=object)
    # "" (no value) coerces to NaN like any other non-number; callers tell the two apart by the text.
    return np.asarray(pd.to_numeric(text, errors="coerce"), dtype="float64")


def _timestamp_reasons(name: str, text: np.ndarray, fmt: str | None):
    expected = f"format {fmt}" if fmt else "ISO 8601, e.g. 2025-03-10 08:30:00"
    return lambda rows: (f"{name}: cannot parse {v!r} (expected {expected}; set source.timestamp_format)"
                         for v in text[rows])


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


@dataclass(frozen=True)
class _Batch:
    """Raw chunks of one or more sources side by side: their mapped text and where each row came from."""

    chunks: list[tuple[RawChunk, str]]
    text: dict[str, np.ndarray]
    source_row: np.ndarray
    part: np.ndarray  # index into `chunks` per row
    n: int


def _batch(chunks: list[tuple[RawChunk, str]], spec: SourceConfig) -> _Batch:
    needed = source_export_columns(spec)
    frames = [c.frame for c, _ in chunks]
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    raw = {col: np.concatenate([f[col].to_numpy(dtype=object) for f in frames]) if frames else np.array([], dtype=object)
           for col in needed}
    source_row = np.concatenate([np.arange(c.first_row, c.first_row + len(c.frame), dtype=np.int64) for c, _ in chunks]
                                or [np.array([], dtype=np.int64)])
    part = np.repeat(np.arange(len(chunks)), lengths)
    return _Batch(chunks, _mapped_text(raw, spec), source_row, part, int(lengths.sum()))


def _optional_text(text: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return np.where(text[name] != "", text[name], None) if name in text else None


def parse_cdr_chunks(chunks: list[tuple[RawChunk, str]], spec: SourceConfig, tz: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg, with its `source_name`) and rejects of (chunk, source name) pairs.

    Parsing many small files' chunks at once costs the per-call overhead once; the result is the
    concatenation of what `parse_cdr_chunk` gives for each pair.
    """
    b = _batch(chunks, spec)
    text, n = b.text, b.n
    rej = _Rejects(n)
    for name in ("call_id", "queue", "start_time", "outcome"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")

    fmt = _spec_format(spec, "start_time")
    start, start_utc = _parse_timestamps(text["start_time"], fmt, tz)
    rej.add(np.isnat(start) & (text["start_time"] != ""), _timestamp_reasons("start_time", text["start_time"], fmt))
    optional_times = {}
    for name in ("answer_time", "end_time"):
        if name in text:
            fmt = _spec_format(spec, name)
            local, _ = _parse_timestamps(text[name], fmt, tz)
            rej.add(np.isnat(local) & (text[name] != ""), _timestamp_reasons(name, text[name], fmt))
            optional_times[name] = local
        else:
            optional_times[name] = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")

    outcome_lookup = {v.strip().casefold(): k for k, values in spec.outcome_map.items() for v in values}
    # Few distinct values: map each once.
    codes, uniques = pd.factorize(text["outcome"])
    mapped = [outcome_lookup.get(v.casefold()) for v in uniques]
    outcome = np.array(mapped, dtype=object)[codes] if len(uniques) else np.array([], dtype=object)
    unmapped = np.array([m is None for m in mapped], dtype=bool)[codes] if len(uniques) else np.zeros(0, dtype=bool)
    raw_outcome = text["outcome"]
    rej.add(unmapped & (raw_outcome != ""),
            lambda rows: (f"outcome: {v!r} is not in source.outcome_map "
                          "(add it under answered, abandoned, short_abandon or other)" for v in raw_outcome[rows]))

    durations = {}
    for name in ("handle_seconds", "talk_seconds", "hold_seconds", "wrap_seconds", "wait_seconds"):
        if name not in text:
            continue
        raw_value = text[name]
        value = _parse_number(raw_value, spec.decimal)
        rej.add(np.isnan(value) & (raw_value != ""), lambda rows, s=raw_value, k=name: (
            f"{k}: {v!r} is not a number" for v in s[rows]))
        rej.add(value < 0, lambda rows, s=raw_value, k=name: (f"{k}: {v} is negative" for v in s[rows]))
        rej.add(value > MAX_DURATION_SECONDS, lambda rows, s=raw_value, k=name: (
            f"{k}: {v} is longer than a day ({MAX_DURATION_SECONDS} s)" for v in s[rows]))
        durations[name] = value
    if "handle_seconds" in durations:
        handle = durations["handle_seconds"]
    else:
        parts = np.stack([durations[p] for p in ("talk_seconds", "hold_seconds", "wrap_seconds") if p in durations])
        handle = np.where(np.isnan(parts).all(axis=0), np.nan, np.nansum(parts, axis=0))
    wait = durations.get("wait_seconds")
    if wait is None:
        # No wait column: derive it from answer/end times, the way an ACD computes it.
        until = np.where(outcome == "answered", optional_times["answer_time"], optional_times["end_time"])
        wait = (until - start) / np.timedelta64(1, "s")
        wait = np.where(wait >= 0, wait, np.nan)

    columns = {
        "call_id": text["call_id"],
        "queue": text["queue"],
        "start_time": start,
        "start_time_utc": start_utc,
        "start_date": start.astype("datetime64[D]").astype("datetime64[ns]"),
        "answer_time": optional_times["answer_time"],
        "end_time": optional_times["end_time"],
        "outcome": outcome,
        "outcome_raw": text["outcome"],
        "handle_seconds": handle.astype("float64"),
        "wait_seconds": np.asarray(wait, dtype="float64"),
    }
    for name in ("customer_id", "caller_id", "agent_id", "parent_call_id", "channel"):
        columns[name] = _optional_text(text, name)
    return _split(columns, rej, b, spec)


def parse_interval_chunks(chunks: list[tuple[RawChunk, str]], spec: SourceConfig,
                          tz: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per interval, with `source_name`) and rejects of chunks."""
    b = _batch(chunks, spec)
    text, n = b.text, b.n
    rej = _Rejects(n)
    for name in ("queue", "interval_start", "offered"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    fmt = _spec_format(spec, "interval_start")
    start, start_utc = _parse_timestamps(text["interval_start"], fmt, tz)
    rej.add(np.isnat(start) & (text["interval_start"] != ""),
            _timestamp_reasons("interval_start", text["interval_start"], fmt))
    columns = {"queue": text["queue"], "interval_start": start, "interval_start_utc": start_utc,
               "start_date": start.astype("datetime64[D]").astype("datetime64[ns]")}
    for name in ("offered", "handled", "abandoned", "aht_seconds"):
        if name not in text:
            columns[name] = np.full(n, np.nan)
            continue
        raw_value = text[name]
        value = _parse_number(raw_value, spec.decimal)
        rej.add(np.isnan(value) & (raw_value != ""), lambda rows, s=raw_value, k=name: (
            f"{k}: {v!r} is not a number" for v in s[rows]))
        rej.add(value < 0, lambda rows, s=raw_value, k=name: (f"{k}: {v} is negative" for v in s[rows]))
        columns[name] = value
    return _split(columns, rej, b, spec)


def parse_cdr_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg) and rejects (one row per unusable source row, with the reason)."""
    rows, rejects = parse_cdr_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def parse_interval_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per reported interval) and rejects."""
    rows, rejects = parse_interval_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def _split(columns: dict[str, np.ndarray | None], rej: _Rejects, b: _Batch,
           spec: SourceConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Good rows (typed, hashed, with source_row and source_name) and rejects, each in source order."""
    names = np.array([name for _, name in b.chunks], dtype=object)
    good = ~rej.mask
    keep = None if good.all() else np.flatnonzero(good)
    pick = (lambda a: a) if keep is None else (lambda a: a[keep])
    data = {k: (None if v is None else pick(v)) for k, v in columns.items()}
    data["source_row"] = pick(b.source_row)
    data["row_hash"] = pick(_hash_strings(list(b.text.values()), b.n)) if b.n else np.array([], dtype=object)
    data["source_name"] = names[pick(b.part)] if b.n else np.array([], dtype=object)
    rows = pd.DataFrame({k: pd.array(v, dtype="str") if v.dtype == object else v
                         for k, v in data.items() if v is not None})
    for k, v in data.items():
        if v is None:
            rows[k] = None
    rows = rows[list(data)]

    bad = np.flatnonzero(rej.mask)
    raw_lines = np.empty(len(bad), dtype=object)
    for p in np.unique(b.part[bad]):
        chunk = b.chunks[p][0]
        mine = b.part[bad] == p
        offsets = b.source_row[bad[mine]] - chunk.first_row
        raw_lines[mine] = _raw_lines(chunk.frame.iloc[offsets], spec.delimiter).to_numpy(dtype=object)
    rejects = pd.DataFrame({
        "source_row": b.source_row[bad],
        "reason": pd.array(rej.reason[bad], dtype="str"),
        "raw": pd.array(raw_lines, dtype="str"),
        "source_name": pd.array(names[b.part[bad]], dtype="str"),
    })
    lines = [(chunk, name) for chunk, name in b.chunks if chunk.bad_lines]
    if lines:
        rejects = pd.concat([rejects, pd.DataFrame({
            "source_row": [r for chunk, _ in lines for r, _ in chunk.bad_lines],
            "reason": [f"cannot split the line into the header's columns: {msg}" for chunk, _ in lines
                       for _, msg in chunk.bad_lines],
            "raw": [None for chunk, _ in lines for _ in chunk.bad_lines],
            "source_name": [name for chunk, name in lines for _ in chunk.bad_lines],
        })], ignore_index=True)
    rejects = rejects[["source_row", "reason", "raw", "source_name"]]
    key = rejects["source_name"] + "|" + rejects["source_row"].astype(str) + "|" + rejects["reason"] + "|" + \
        rejects["raw"].fillna("")
    rejects["row_hash"] = row_hashes(key.to_frame()) if len(rejects) else pd.Series([], dtype="str")
    return rows, rejects.reset_index(drop=True)

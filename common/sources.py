"""Map raw export chunks (`common.readers`) onto canonical bronze columns.

`parse_cdr_chunk` / `parse_interval_chunk` turn one chunk into typed canonical rows plus rejects, each reject with the
reason a person can act on. Column names of the export come from `source.columns`; outcome values from
`source.outcome_map`. A new ACD export needs config, not code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from common import report_times, tables
from common.calendar import localize, to_local
from common.config import SourceConfig, TimestampSpec
from common.pseudonym import Pseudonymizer
from common.readers import RawChunk, source_export_columns

MAX_DURATION_SECONDS = 24 * 3600  # a single call leg longer than a day is a broken record, not a long call
FUTURE_SLACK = timedelta(days=1)  # a start later than this after the wall clock is a wrong clock or date format
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2}|(?<=:\d{2})[+-]\d{2})$")
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
                    | (sign[:, 0] & digit[:, 1] & digit[:, 2] & (tail[:, 3] == 58) & digit[:, 4] & digit[:, 5])
                    | ((tail[:, 0] == 58) & digit[:, 1] & digit[:, 2] & sign[:, 3] & digit[:, 4] & digit[:, 5]))
        unsure = np.concatenate([unsure, idx[(tail > 127).any(axis=1) | (tail[:, 5] == 10)]])
    if len(unsure):
        out[unsure] = [_TZ_SUFFIX.search(v) is not None for v in values[unsure].tolist()]
    return out


# Parsed times outside this range cannot be held as datetime64[ns] (1677..2262): they are flagged as out of
# range (and rejected by the caller) instead of wrapping around (0001-01-01 became 1754-08-30) or crashing.
_NS_SAFE = (np.datetime64("1700-01-01", "us"), np.datetime64("2200-01-01", "us"))


def _in_ns(parsed: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Naive parsed times as datetime64[ns] (NaT where out of range) and -1/+1 where too early/late, else 0."""
    values = parsed.to_numpy()
    if values.dtype != np.dtype("datetime64[ns]"):
        values = values.astype("datetime64[us]")
    side = np.where(values < _NS_SAFE[0], -1, np.where(values > _NS_SAFE[1], 1, 0))
    if side.any():
        values = np.where(side != 0, np.datetime64("NaT"), values)
    return values.astype("datetime64[ns]"), side


def _to_datetime(text: np.ndarray, fmt: str, utc: bool) -> pd.DatetimeIndex:
    """pd.to_datetime, unparseable values NaT; a mixture it refuses as a whole (naive and offset values, one of
    them in a form the offset check did not catch) is parsed value by value, so one odd value never stops a load."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce", utc=utc))
    except (ValueError, TypeError, OverflowError):
        out = []
        for v in text.tolist():
            try:
                t = pd.to_datetime(v, format=fmt, errors="coerce", utc=utc)
            except (ValueError, TypeError, OverflowError):
                t = pd.NaT
            out.append(pd.NaT if t is pd.NaT or (not utc and t.tzinfo is not None) else t)
        return pd.DatetimeIndex(out, dtype="datetime64[us, UTC]" if utc else "datetime64[us]")


def _parse_timestamps(text: np.ndarray, fmt: str | None, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local and UTC naive timestamps (datetime64[ns]); values with an explicit offset are converted, naive ones
    are local. Also -1/+1 where a value parsed but lies before 1700 / after 2200 (left NaT), else 0."""
    local = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    utc = local.copy()
    side = np.zeros(len(text), dtype=np.int64)
    filled = text != ""
    has_tz = _tz_suffix(text) & filled
    naive = filled & ~has_tz
    if naive.any():
        subset = text if naive.all() else text[naive]
        local[naive], side[naive] = _in_ns(_to_datetime(subset, fmt or "ISO8601", utc=False))
        ok = naive & ~np.isnat(local)
        utc[ok] = localize(pd.Series(local[ok]), tz).to_numpy()
    if has_tz.any():
        utc[has_tz], side[has_tz] = _in_ns(_to_datetime(text[has_tz], "ISO8601", utc=True).tz_localize(None))
        ok = has_tz & ~np.isnat(utc)
        local[ok] = to_local(pd.Series(utc[ok]), tz).to_numpy()
    return local, utc, side


def _parse_number(text: np.ndarray, decimal: str) -> np.ndarray:
    if decimal != ".":
        text = np.array([v.replace(".", "").replace(decimal, ".") for v in text.tolist()], dtype=object)
    # "" (no value) coerces to NaN like any other non-number; callers tell the two apart by the text.
    return np.asarray(pd.to_numeric(text, errors="coerce"), dtype="float64")


def _timestamp_reasons(name: str, text: np.ndarray, fmt: str | None):
    expected = f"format {fmt}" if fmt else "ISO 8601, e.g. 2025-03-10 08:30:00"
    return lambda rows: (f"{name}: cannot parse {v!r} (expected {expected}; set source.timestamp_format)"
                         for v in text[rows])


def _future_reasons(name: str, local: np.ndarray, text: np.ndarray, now_utc: datetime):
    return lambda rows: (f"{name}: {pd.Timestamp(v) if not np.isnat(v) else t} is in the future (more than a day "
                         f"after now, {now_utc:%Y-%m-%d %H:%M} UTC): a wrong clock or date format in the export"
                         for v, t in zip(local[rows], text[rows]))


def _early_reasons(name: str, text: np.ndarray, earliest) -> object:
    return lambda rows: (f"{name}: {t!r} is before source.earliest_date ({earliest}): a placeholder date or a wrong "
                         f"date format in the export; if it means \"no value\", list it under "
                         f"source.missing_values.{name}" for t in text[rows])


def _future(utc: np.ndarray, now_utc: datetime | None) -> tuple[np.ndarray, datetime]:
    """Which naive-UTC times lie more than FUTURE_SLACK after `now_utc` (default: the wall clock, never --as-of)."""
    now_utc = now_utc or datetime.now(timezone.utc).replace(tzinfo=None)
    return utc > np.datetime64(now_utc + FUTURE_SLACK, "ns"), now_utc


def _timestamps(rej: _Rejects, text: dict[str, np.ndarray], name: str, spec: SourceConfig, tz: str,
                now_utc: datetime | None) -> tuple[np.ndarray, np.ndarray, datetime]:
    """Parse one timestamp column (local, UTC, the `now` used) and reject its values that cannot be parsed or lie
    outside the plausible window: before source.earliest_date, or more than a day after now."""
    fmt = _spec_format(spec, name)
    raw = text[name]
    local, utc, side = _parse_timestamps(raw, fmt, tz)
    rej.add(np.isnat(local) & (raw != "") & (side == 0), _timestamp_reasons(name, raw, fmt))
    earliest = np.datetime64(spec.earliest_date, "ns")
    rej.add((side < 0) | (local < earliest), _early_reasons(name, raw, spec.earliest_date))
    future, now_utc = _future(utc, now_utc)
    rej.add(future | (side > 0), _future_reasons(name, local, raw, now_utc))
    return local, utc, now_utc


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
    position: np.ndarray  # row position within its chunk's frame
    n: int


def _batch(chunks: list[tuple[RawChunk, str]], spec: SourceConfig) -> _Batch:
    needed = source_export_columns(spec)
    frames = [c.frame for c, _ in chunks]
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    raw = {col: np.concatenate([f[col].to_numpy(dtype=object) for f in frames]) if frames else np.array([], dtype=object)
           for col in needed}
    source_row = np.concatenate([c.rows if c.rows is not None else
                                 np.arange(c.first_row, c.first_row + len(c.frame), dtype=np.int64) for c, _ in chunks]
                                or [np.array([], dtype=np.int64)])
    part = np.repeat(np.arange(len(chunks)), lengths)
    position = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return _Batch(chunks, _mapped_text(raw, spec), source_row, part, position, int(lengths.sum()))


def _optional_text(text: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return np.where(text[name] != "", text[name], None) if name in text else None


def _reject_too_long(rej: _Rejects, text: dict[str, np.ndarray], table) -> None:
    """Reject values longer than their bronze column holds: PostgreSQL and SQL Server refuse them (SQLite would not)."""
    for name, values in text.items():
        column = table.c.get("outcome_raw" if name == "outcome" else name)
        limit = getattr(column.type, "length", None) if column is not None else None
        if limit is None or not len(values):
            continue
        lengths = np.fromiter(map(len, values.tolist()), dtype=np.int64, count=len(values))
        rej.add(lengths > limit, lambda rows, s=values, k=name, n=limit, c=column: (
            f"{k}: {len(v)} characters, longer than the {n} {table.name}.{c.name} holds" for v in s[rows]))


# NUL anywhere (PostgreSQL cannot store it in text; it is a broken export); in a queue name, any control character
# but tab and line breaks ("Sup\x00port" would be a queue of its own).
_NUL = re.compile("\x00")
_QUEUE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _reject_control_characters(rej: _Rejects, text: dict[str, np.ndarray],
                               pseudonyms: Pseudonymizer | None = None) -> None:
    """Reject values holding a NUL byte, and queue names holding a control character (a personal id's reason
    shows its pseudonym)."""
    for name, values in text.items():
        shown = pseudonyms.one if pseudonyms and name in pseudonyms.columns else repr
        pattern = _QUEUE_CONTROL if name == "queue" else _NUL
        # One search over the joined column first: clean exports (nearly all) cost one C-level pass.
        if not len(values) or not pattern.search("".join(values.tolist())):
            continue
        bad = np.fromiter((pattern.search(v) is not None for v in values.tolist()), dtype=bool, count=len(values))
        rej.add(bad, lambda rows, s=values, k=name, show=shown: (
            f"{k}: {show(v)} contains a control character ({_control_char(v)}): a broken export; fix the value in the "
            "source system" for v in s[rows]))


def _control_char(value: str) -> str:
    """The first control character of `value`, written as an escape (\\x00)."""
    m = _QUEUE_CONTROL.search(value)
    return f"\\x{ord(m.group()):02x}" if m else "?"


def _reject_time_order(rej: _Rejects, utc: dict[str, np.ndarray], text: dict[str, np.ndarray]) -> None:
    """Reject legs whose answer or end lies before their start (or end before answer): the wait cannot be known."""
    for later, earlier in (("answer_time", "start_time"), ("end_time", "start_time"), ("end_time", "answer_time")):
        rej.add(utc[later] < utc[earlier], lambda rows, a=later, b=earlier: (
            f"{a} {text[a][r]} is before {b} {text[b][r]}: the leg's times are inconsistent (wait and duration "
            "unknown); fix them in the export" for r in rows))


def parse_cdr_chunks(chunks: list[tuple[RawChunk, str]], spec: SourceConfig, tz: str, now_utc: datetime | None = None,
                     pseudonyms: Pseudonymizer | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg, with its `source_name`) and rejects of (chunk, source name) pairs.

    Parsing many small files' chunks at once costs the per-call overhead once; the result is the
    concatenation of what `parse_cdr_chunk` gives for each pair. A leg starting more than a day after
    `now_utc` (default: the wall clock) is rejected. `pseudonyms`: personal ids are replaced by their pseudonyms
    (in the rows, the row hash and the rejects' raw text) after the checks, so the same rows load as without.
    """
    b = _batch(chunks, spec)
    text, n = b.text, b.n
    rej = _Rejects(n)
    for name in ("call_id", "queue", "start_time", "outcome"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    _reject_too_long(rej, text, tables.bronze_cdr)
    _reject_control_characters(rej, text, pseudonyms)
    if pseudonyms:
        pseudonyms.apply(text)  # before the row hash is taken: a hash of a clear number could be searched for

    start, start_utc, now_utc = _timestamps(rej, text, "start_time", spec, tz, now_utc)
    optional_times, optional_utc = {}, {"start_time": start_utc}
    for name in ("answer_time", "end_time"):
        if name in text:
            optional_times[name], optional_utc[name], _ = _timestamps(rej, text, name, spec, tz, now_utc)
        else:
            optional_times[name] = optional_utc[name] = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    _reject_time_order(rej, optional_utc, text)

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
    return _split(columns, rej, b, spec, pseudonyms)


def parse_interval_chunks(chunks: list[tuple[RawChunk, str]], spec: SourceConfig, tz: str,
                          now_utc: datetime | None = None, repeats: dict | None = None,
                          pseudonyms: Pseudonymizer | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per interval, with `source_name`) and rejects of chunks.

    An interval starting more than a day after `now_utc` (default: the wall clock) is rejected. In the
    repeated hour of a fall-back night, a source's second row of a queue at one wall-clock time is the later
    instant and a third is rejected (`report_times.fall_back_repeats`; `repeats` carries its counts from one
    batch of a source to the next). A report holds no personal ids; `pseudonyms` only covers its
    `raw_columns` in the rejects' raw text.
    """
    b = _batch(chunks, spec)
    text, n = b.text, b.n
    rej = _Rejects(n)
    for name in ("queue", "interval_start", "offered"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    _reject_too_long(rej, text, tables.bronze_interval)
    _reject_control_characters(rej, text)
    start, start_utc, now_utc = _timestamps(rej, text, "interval_start", spec, tz, now_utc)
    names = np.array([name for _, name in b.chunks] or [""], dtype=object)[b.part] if n else np.array([], dtype=object)
    start_utc, second, extra = report_times.fall_back_repeats(
        start, start_utc, ~_tz_suffix(text["interval_start"]), names + "|" + text["queue"], tz,
        {} if repeats is None else repeats)
    rej.add(extra, lambda rows: (
        f"interval_start: {v} is in the hour the clocks go back, and queue {q!r} already has two rows at that time "
        "in this file (the first is summer time, the second winter time); a third cannot be placed: remove it, or "
        "export interval_start with its UTC offset (e.g. +02:00 / +01:00)"
        for v, q in zip(start[rows], text["queue"][rows])))
    if second.any():  # the second 02:00 is its own bronze row even when its numbers equal the first's
        text["interval_start"] = np.where(second, text["interval_start"] + report_times.SECOND_MARK,
                                          text["interval_start"])
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
    return _split(columns, rej, b, spec, pseudonyms)


def parse_cdr_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg) and rejects (one row per unusable source row, with the reason)."""
    rows, rejects = parse_cdr_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def parse_interval_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per reported interval) and rejects."""
    rows, rejects = parse_interval_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def _split(columns: dict[str, np.ndarray | None], rej: _Rejects, b: _Batch, spec: SourceConfig,
           pseudonyms: Pseudonymizer | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        offsets = b.position[bad[mine]]
        frame = chunk.frame.iloc[offsets]
        frame = pseudonyms.raw_frame(frame) if pseudonyms else frame
        raw_lines[mine] = _raw_lines(frame, spec.delimiter).to_numpy(dtype=object)
    rejects = pd.DataFrame({
        "source_row": b.source_row[bad],
        "reason": pd.array(rej.reason[bad], dtype="str"),
        "raw": pd.array(raw_lines, dtype="str"),
        "source_name": pd.array(names[b.part[bad]], dtype="str"),
    })
    lines = [(chunk, name) for chunk, name in b.chunks if chunk.bad_lines]
    if lines:
        rejects = pd.concat([rejects, pd.DataFrame({
            "source_row": [r for chunk, _ in lines for r, _, _ in chunk.bad_lines],
            "reason": [reason for chunk, _ in lines for _, reason, _ in chunk.bad_lines],
            "raw": [pseudonyms.raw_line(raw, chunk.frame.columns, spec.delimiter) if pseudonyms else raw
                    for chunk, _ in lines for _, _, raw in chunk.bad_lines],
            "source_name": [name for chunk, name in lines for _ in chunk.bad_lines],
        })], ignore_index=True)
    rejects = rejects[["source_row", "reason", "raw", "source_name"]]
    # A NUL byte cannot be stored in PostgreSQL text: the raw line keeps it as the escape "\x00".
    rejects["raw"] = rejects["raw"].str.replace("\x00", "\\x00", regex=False)
    key = rejects["source_name"] + "|" + rejects["source_row"].astype(str) + "|" + rejects["reason"] + "|" + \
        rejects["raw"].fillna("")
    rejects["row_hash"] = row_hashes(key.to_frame()) if len(rejects) else pd.Series([], dtype="str")
    return rows, rejects.reset_index(drop=True)

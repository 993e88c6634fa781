"""Map raw export chunks (`common.readers`) onto canonical bronze columns.

`parse_cdr_chunk` / `parse_interval_chunk` (and `parse_daily_chunks` for daily totals) turn one chunk into typed canonical rows plus rejects, each reject with the
reason a person can act on. Column names of the export come from `source.columns`; outcome values from
`source.outcome_map`. A new ACD export needs config, not code. Text becomes typed values in `source_values`, the
checks and their reasons are `source_rejects`, the row hashes (the bronze unique key) `row_hash`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from common import report_times, tables
from common.config_source import SourceConfig
from common.pseudonym import Pseudonymizer
from common.readers import RawChunk, source_export_columns
from common.row_hash import hash_strings, row_hashes
from common.source_rejects import (
    Rejects,
    checked_timestamps,
    reject_control_characters,
    reject_time_order,
    reject_too_long,
)
from common.source_values import parse_number, tz_suffix

MAX_DURATION_SECONDS = 24 * 3600  # a single call leg longer than a day is a broken record, not a long call

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
    rej = Rejects(n)
    for name in ("call_id", "queue", "start_time", "outcome"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    reject_too_long(rej, text, tables.bronze_cdr)
    reject_control_characters(rej, text, pseudonyms)
    if pseudonyms:
        pseudonyms.apply(text)  # before the row hash is taken: a hash of a clear number could be searched for

    start, start_utc, now_utc = checked_timestamps(rej, text, "start_time", spec, tz, now_utc)
    optional_times, optional_utc = {}, {"start_time": start_utc}
    for name in ("answer_time", "end_time"):
        if name in text:
            optional_times[name], optional_utc[name], _ = checked_timestamps(rej, text, name, spec, tz, now_utc)
        else:
            optional_times[name] = optional_utc[name] = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    reject_time_order(rej, optional_utc, text)

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
        value = parse_number(raw_value, spec.decimal)
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
    rej = Rejects(n)
    for name in ("queue", "interval_start", "offered"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    reject_too_long(rej, text, tables.bronze_interval)
    reject_control_characters(rej, text)
    start, start_utc, now_utc = checked_timestamps(rej, text, "interval_start", spec, tz, now_utc)
    names = np.array([name for _, name in b.chunks] or [""], dtype=object)[b.part] if n else np.array([], dtype=object)
    start_utc, second, extra = report_times.fall_back_repeats(
        start, start_utc, ~tz_suffix(text["interval_start"]), names + "|" + text["queue"], tz,
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
    columns |= _report_counts(text, n, rej, spec)
    return _split(columns, rej, b, spec, pseudonyms)


def _report_counts(text: dict[str, np.ndarray], n: int, rej: Rejects, spec: SourceConfig) -> dict[str, np.ndarray]:
    """offered, handled, abandoned, aht_seconds of a report (interval or daily) as numbers (NaN when the column is
    not mapped or the cell is empty); a cell that is not a number, or is negative, rejects its row."""
    columns = {}
    for name in ("offered", "handled", "abandoned", "aht_seconds"):
        if name not in text:
            columns[name] = np.full(n, np.nan)
            continue
        raw_value = text[name]
        value = parse_number(raw_value, spec.decimal)
        rej.add(np.isnan(value) & (raw_value != ""), lambda rows, s=raw_value, k=name: (
            f"{k}: {v!r} is not a number" for v in s[rows]))
        rej.add(value < 0, lambda rows, s=raw_value, k=name: (f"{k}: {v} is negative" for v in s[rows]))
        columns[name] = value
    return columns


def parse_daily_chunks(chunks: list[tuple[RawChunk, str]], spec: SourceConfig, tz: str,
                       now_utc: datetime | None = None, pseudonyms: Pseudonymizer | None = None,
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical daily totals (one row per queue per local date, with `source_name`) and rejects of chunks.

    The date is parsed like a timestamp (source.columns.date may be {column, format}, else source.timestamp_format,
    else ISO 8601) and must be a whole day; a day more than a day after `now_utc` is rejected. offered is required
    and not negative; a report holds no personal ids (`pseudonyms` only covers its raw_columns in the rejects).
    """
    b = _batch(chunks, spec)
    text, n = b.text, b.n
    rej = Rejects(n)
    for name in ("queue", "date", "offered"):
        rej.add(text[name] == "", f"{name}: empty (source.columns.{name} = {spec.columns[name]!r})")
    reject_too_long(rej, text, tables.bronze_daily)
    reject_control_characters(rej, text)
    day, _, _ = checked_timestamps(rej, text, "date", spec, tz, now_utc)
    whole = day.astype("datetime64[D]").astype("datetime64[ns]")
    rej.add(~np.isnat(day) & (day != whole), lambda rows: (
        f"date: {v!r} has a time of day; a daily export has one row per queue per date (set the format of "
        "source.columns.date to the date alone)" for v in text["date"][rows]))
    columns = {"queue": text["queue"], "date": whole}
    columns |= _report_counts(text, n, rej, spec)
    return _split(columns, rej, b, spec, pseudonyms)


def parse_cdr_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical call legs (one row per leg) and rejects (one row per unusable source row, with the reason)."""
    rows, rejects = parse_cdr_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def parse_interval_chunk(chunk: RawChunk, spec: SourceConfig, tz: str, source_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed canonical interval-report rows (one per queue per reported interval) and rejects."""
    rows, rejects = parse_interval_chunks([(chunk, source_name)], spec, tz)
    return rows.drop(columns="source_name"), rejects


def _split(columns: dict[str, np.ndarray | None], rej: Rejects, b: _Batch, spec: SourceConfig,
           pseudonyms: Pseudonymizer | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Good rows (typed, hashed, with source_row and source_name) and rejects, each in source order."""
    names = np.array([name for _, name in b.chunks], dtype=object)
    good = ~rej.mask
    keep = None if good.all() else np.flatnonzero(good)
    pick = (lambda a: a) if keep is None else (lambda a: a[keep])
    data = {k: (None if v is None else pick(v)) for k, v in columns.items()}
    data["source_row"] = pick(b.source_row)
    data["row_hash"] = pick(hash_strings(list(b.text.values()), b.n)) if b.n else np.array([], dtype=object)
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

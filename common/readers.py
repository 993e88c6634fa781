"""Read a user's export, CSV files or a SQL query, as raw text chunks: every value a string, nothing lost to type
guessing. File-level problems (not CSV text, a wrong encoding, a mapped column missing from the header, a quote that
never closes) are one-line `DataError`s naming the file, line and setting to change. `common.sources` maps the chunks
onto canonical bronze columns.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.config_source import SourceConfig
from common.errors import DataError

# An offset: Z, +01:00, +0100, or +01 right after a time's minutes or seconds (":00+01"; "2025-03-10" is no offset).
_BAD_LINE = re.compile(r"Skipping line (\d+): (.*)")


@dataclass(frozen=True)
class RawChunk:
    """Text values of source rows; `first_row` is the 1-based data row number of the first one and the others
    follow it, unless `rows` numbers each row (when lines between them were skipped)."""

    frame: pd.DataFrame
    first_row: int
    bad_lines: tuple[tuple[int, str, str | None], ...] = ()  # (data row, reason, raw text if known): not rows
    rows: np.ndarray | None = None


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


# A file that is not text of the configured encoding at all: its first bytes, and what to do.
_SAVE_AS_CSV = "not CSV text; open it in Excel and save it as CSV"
_NOT_CSV = ((b"PK\x03\x04", f"an Excel workbook (.xlsx) or another zip file, {_SAVE_AS_CSV}"),
            (b"\xd0\xcf\x11\xe0", f"an Excel 97-2003 workbook (.xls), {_SAVE_AS_CSV}"))


def _sniff(path: Path, spec: SourceConfig) -> None:
    """DataError for a workbook saved under a .csv name, or UTF-16 text read as an 8-bit encoding."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    for magic, what in _NOT_CSV:
        if head.startswith(magic):
            raise DataError(f"{path}: this is {what}")
    utf16 = spec.encoding.lower().replace("_", "-").startswith(("utf-16", "utf16"))
    # UTF-16 text without a byte-order mark has a NUL in about every other byte; one NUL in a field (a broken
    # value, rejected with its row) does not make a file UTF-16.
    start = head[:512]
    if not utf16 and (head.startswith((b"\xff\xfe", b"\xfe\xff")) or start.count(b"\x00") * 4 >= len(start) > 0):
        raise DataError(f"{path}: the file is UTF-16 text (Excel's \"Unicode text\"), not {spec.encoding}; set "
                        "source.encoding: utf-16 (and source.delimiter: \"\\t\" for Excel's tab-separated text)")


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(line, column, byte value) of the first byte that is not `encoding` text; None if there is none."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line, column = 1, 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                good = exc.object[:exc.start].decode(encoding, errors="replace")
                breaks = good.count("\n")
                column = len(good) - good.rfind("\n") - 1 if breaks else column + len(good)
                return line + breaks, column + 1, exc.object[exc.start]
            breaks = text.count("\n")
            column = len(text) - text.rfind("\n") - 1 if breaks else column + len(text)
            line += breaks
    return None


def _encoding_error(path: Path, spec: SourceConfig) -> DataError:
    where = _first_undecodable(path, _csv_encoding(spec.encoding))
    at = f"line {where[0]}, column {where[1]}: byte 0x{where[2]:02x}" if where else "some bytes"
    return DataError(f"{path}: {at} is not valid {spec.encoding} text; set source.encoding to the file's encoding "
                     "(cp1252 or latin-1 for most Nordic Excel exports)")


def check_csv_header(path: Path, spec: SourceConfig) -> list[str]:
    """The file's header; DataError naming the file, the missing (or repeated) export column and its config key."""
    _sniff(path, spec)
    try:
        # header=None: the names exactly as written (pandas would rename a repeated "Queue" to "Queue.1").
        first = pd.read_csv(path, sep=spec.delimiter, encoding=_csv_encoding(spec.encoding), header=None, nrows=1,
                            dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        return []
    except UnicodeDecodeError:
        raise _encoding_error(path, spec) from None
    if first.empty:
        return []
    columns = [str(c).strip() for c in first.iloc[0].tolist()]
    missing, repeated = [], []
    for key, value in spec.columns.items():
        wanted = [value] if isinstance(value, str) else value if isinstance(value, list) else \
            [c for c in (value.column, value.date, value.time) if c]
        missing += [f"{col!r} (source.columns.{key})" for col in wanted if col not in columns]
        repeated += [f"{col!r} (source.columns.{key}) appears {columns.count(col)} times" for col in wanted
                     if columns.count(col) > 1]
    if missing:
        hint = " (is source.delimiter right?)" if len(columns) == 1 else ""
        raise DataError(f"{path}: column {', '.join(missing)} not in the header{hint}; "
                        f"the header has: {', '.join(columns[:30])}")
    if repeated:
        raise DataError(f"{path}: column {', '.join(repeated)} in the header; which one is meant cannot be told: "
                        "rename or drop the others in the export")
    return columns


class _Head(io.RawIOBase):
    """The first `limit` bytes of a file, as a readable binary stream."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__()
        self._fh = path.open("rb")
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._fh.readinto(memoryview(buffer)[:n])
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def _cut_off_tail(path: Path, spec: SourceConfig, n_fields: int) -> tuple[int, str] | None:
    """(bytes before the last line, the last line) when the file ends inside a row: no line break at its end and
    fewer fields on the last line than the header has (an export copied while still being written); else None.

    A last line with an open quote is left to the parser: it is either the end of a quoted field that spans
    lines (a valid row) or a quote that never closes (an error naming the row).
    """
    if _csv_encoding(spec.encoding).lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32")):
        return None  # line breaks are not single bytes there
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(size - 1, 0))
        if size == 0 or fh.read(1) in (b"\n", b"\r"):
            return None
        pos, tail = size, b""
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
            cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
            if cut >= 0:
                break
        else:
            return None  # a single line: the header
    text = tail[cut + 1:].decode(_csv_encoding(spec.encoding), errors="replace")
    if not text.strip() or text.count('"') % 2:
        return None
    fields = next(csv.reader([text], delimiter=spec.delimiter), [])
    return (pos + cut + 1, text) if len(fields) < n_fields else None


def _blank_rows(frame: pd.DataFrame) -> np.ndarray | None:
    """Which rows are blank lines (every field empty or spaces); None when there are none (the usual case)."""
    candidates = np.arange(len(frame))
    for col in range(frame.shape[1]):  # most rows drop out at the first column
        values = frame.iloc[candidates, col].to_numpy(dtype=object).tolist()
        candidates = candidates[np.array([not v.strip() for v in values], dtype=bool)] if values else candidates
        if not len(candidates):
            return None
    blank = np.zeros(len(frame), dtype=bool)
    blank[candidates] = True
    return blank


def _numbered(frame: pd.DataFrame, first: int, bad: tuple) -> tuple[RawChunk, int]:
    """A chunk whose rows carry their data row numbers (after `bad` lines the parser skipped, and blank lines
    dropped); also the number of the row after it."""
    rows = np.arange(first, first + len(frame), dtype=np.int64)
    for row in sorted(r for r, _, _ in bad):
        rows[rows >= row] += 1  # the parser skipped that line: the rows after it come one later
    after = max([int(rows[-1]) + 1 if len(rows) else first] + [r + 1 for r, _, _ in bad])
    blank = _blank_rows(frame) if len(frame) else None
    if blank is not None:
        frame, rows = frame[~blank].reset_index(drop=True), rows[~blank]
    consecutive = not len(rows) or int(rows[-1] - rows[0]) == len(rows) - 1
    return RawChunk(frame, int(rows[0]) if len(rows) else first, bad, None if consecutive else rows), after


def _parser_error(path: Path, exc: pd.errors.ParserError, row: int) -> DataError:
    text = str(exc).strip()
    m = re.search(r"EOF inside string starting at row (\d+)", text)
    if m:
        return DataError(f"{path}: a quoted field starting in data row {m.group(1)} is never closed (a stray \" in "
                         "the export, or the file was cut off); fix that row, or export with every quote doubled")
    return DataError(f"{path}: cannot be read as CSV near data row {row}: {text.splitlines()[0] if text else exc}")


def iter_csv_chunks(path: Path, spec: SourceConfig) -> Iterator[RawChunk]:
    """Stream a CSV export as raw text chunks of `source.chunk_rows` rows (a multi-GB file is never read whole).

    Data rows are numbered from 1 after the header, blank lines included (a row's line in the file minus 1,
    unless an earlier quoted field spans lines); blank lines are not rows. Lines the parser cannot split,
    and a last line cut off before its last field, come back as `bad_lines` with the reason.
    """
    columns = check_csv_header(path, spec)
    if not columns:
        return
    tail = _cut_off_tail(path, spec, len(columns))
    source = path if tail is None else io.BufferedReader(_Head(path, tail[0]))
    row = 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pd.read_csv(
                    source, sep=spec.delimiter, encoding=_csv_encoding(spec.encoding), dtype=str, keep_default_na=False,
                    na_filter=False, chunksize=spec.chunk_rows, on_bad_lines="warn", encoding_errors="strict",
                    skip_blank_lines=False) as reader:
                for frame in reader:
                    frame.columns = [str(c).strip() for c in frame.columns]
                    bad = tuple(_bad_lines(caught))
                    caught.clear()
                    chunk, row = _numbered(frame, row, bad)
                    yield chunk
            bad = tuple(_bad_lines(caught))
            row = max([row] + [r + 1 for r, _, _ in bad])
            if tail is not None:
                fields = len(next(csv.reader([tail[1]], delimiter=spec.delimiter), []))
                bad += ((row, f"the file ends inside this row ({fields} of {len(columns)} fields): it was cut off, "
                              "e.g. copied while still being written; the row loads once the complete file is "
                              "dropped again", tail[1]),)
            if bad:
                yield RawChunk(pd.DataFrame(columns=columns, dtype=str), row, bad)
    except UnicodeDecodeError:
        raise _encoding_error(path, spec) from None
    except pd.errors.ParserError as exc:
        raise _parser_error(path, exc, row) from None
    finally:
        if source is not path:
            source.close()


def _bad_lines(caught: list) -> Iterator[tuple[int, str, None]]:
    for w in caught:
        for line in str(w.message).strip().splitlines():
            m = _BAD_LINE.search(line)
            if m:  # physical line 2 is data row 1
                yield int(m.group(1)) - 1, f"cannot split the line into the header's columns: {m.group(2)}", None


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

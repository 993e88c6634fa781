"""Export text to typed values: timestamps (naive local time or with a UTC offset, DST-correct, out-of-range values
flagged, never wrapped) and numbers with the configured decimal mark.

Values are numpy object arrays of str: a pandas string method runs a Python lambda per value plus per-call overhead,
which made parsing the slowest part of a load.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from common.calendar import localize, to_local

TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2}|(?<=:\d{2})[+-]\d{2})$")


def tz_suffix(values: np.ndarray) -> np.ndarray:
    """Which values match `TZ_SUFFIX` (end in Z or a UTC offset), without a regex call per value.

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
        out[unsure] = [TZ_SUFFIX.search(v) is not None for v in values[unsure].tolist()]
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


def parse_timestamps(text: np.ndarray, fmt: str | None, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local and UTC naive timestamps (datetime64[ns]); values with an explicit offset are converted, naive ones
    are local. Also -1/+1 where a value parsed but lies before 1700 / after 2200 (left NaT), else 0."""
    local = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    utc = local.copy()
    side = np.zeros(len(text), dtype=np.int64)
    filled = text != ""
    has_tz = tz_suffix(text) & filled
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


def parse_number(text: np.ndarray, decimal: str) -> np.ndarray:
    if decimal != ".":
        text = np.array([v.replace(".", "").replace(decimal, ".") for v in text.tolist()], dtype=object)
    # "" (no value) coerces to NaN like any other non-number; callers tell the two apart by the text.
    return np.asarray(pd.to_numeric(text, errors="coerce"), dtype="float64")

"""Which rows of a source chunk are unusable, and why, in words a person can act on.

`Rejects` keeps each row's first problem; the checks here add to it: timestamps that do not parse or lie outside
the plausible window (before `source.earliest_date`, more than a day after the wall clock), values longer than their
bronze column, control characters, a leg's times out of order. Reasons are built only for the rejected rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from common.config_source import SourceConfig, TimestampSpec
from common.pseudonym import Pseudonymizer
from common.source_values import parse_timestamps

FUTURE_SLACK = timedelta(days=1)  # a start later than this after the wall clock is a wrong clock or date format


class Rejects:
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


def checked_timestamps(rej: Rejects, text: dict[str, np.ndarray], name: str, spec: SourceConfig, tz: str,
                now_utc: datetime | None) -> tuple[np.ndarray, np.ndarray, datetime]:
    """Parse one timestamp column (local, UTC, the `now` used) and reject its values that cannot be parsed or lie
    outside the plausible window: before source.earliest_date, or more than a day after now."""
    fmt = _spec_format(spec, name)
    raw = text[name]
    local, utc, side = parse_timestamps(raw, fmt, tz)
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


def reject_too_long(rej: Rejects, text: dict[str, np.ndarray], table) -> None:
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


def reject_control_characters(rej: Rejects, text: dict[str, np.ndarray],
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


def reject_time_order(rej: Rejects, utc: dict[str, np.ndarray], text: dict[str, np.ndarray]) -> None:
    """Reject legs whose answer or end lies before their start (or end before answer): the wait cannot be known."""
    for later, earlier in (("answer_time", "start_time"), ("end_time", "start_time"), ("end_time", "answer_time")):
        rej.add(utc[later] < utc[earlier], lambda rows, a=later, b=earlier: (
            f"{a} {text[a][r]} is before {b} {text[b][r]}: the leg's times are inconsistent (wait and duration "
            "unknown); fix them in the export" for r in rows))

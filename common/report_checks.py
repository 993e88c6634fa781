"""Checks on interval-report rows before they are placed on the interval calendar (interval sources only).

- `check_restated`: two rows for one (queue, interval) with different numbers. `intervals_from_report` keeps the
  newest load's row (the last one within a file); this says which intervals were restated and from what to what.
- `check_alignment`: rows whose report interval spans two grid intervals (a 30-minute report whose intervals
  start at :15 and :45 on a 30-minute grid). They are counted, as before, in the grid interval they start in
  (the day's totals stay right, its shape moves by up to one interval); this names them and the fix. Refusing
  them instead would leave whole days empty, which the completeness check would then stop the night for.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from common.validation import WARNING, CheckResult

SHOWN = 5  # intervals listed per queue
_VALUES = ("offered", "handled", "abandoned", "aht_seconds")


def restated_intervals(report: pd.DataFrame) -> pd.DataFrame:
    """One row per (queue, interval_start_utc) reported more than once with different numbers.

    Columns: queue, interval_start (local), kept and replaced (the numbers that differ, as text, e.g.
    "offered 6"), same_load (the replaced row came in the same load, i.e. the same file). `report` is in
    `read_bronze` order (load by load, each in export order): the last row of a key is the one
    `intervals_from_report` keeps; the row shown as replaced is the one just before it.
    """
    columns = ["queue", "interval_start", "kept", "replaced", "same_load"]
    values = [c for c in _VALUES if c in report.columns]
    key = ["queue", "interval_start_utc"]
    ordered = report.assign(_order=np.arange(len(report))).sort_values([*key, "load_id", "_order"], kind="stable")
    repeated = ordered[ordered.duplicated(key, keep=False)]
    if repeated.empty:
        return pd.DataFrame(columns=columns)
    last = ~repeated.duplicated(key, keep="last")
    kept = repeated[last].set_index(key)
    before = repeated[~last].groupby(key, sort=False).tail(1).set_index(key)
    new = kept.loc[before.index, values].astype("float64")
    old = before[values].astype("float64")
    differ = ~((new == old) | (new.isna() & old.isna()))
    rows = []
    for i in np.flatnonzero(differ.any(axis=1).to_numpy()):
        cols = [c for c in values if differ.iloc[i][c]]
        rows.append({"queue": before.index[i][0], "interval_start": before["interval_start"].iloc[i],
                     "kept": ", ".join(f"{c} {_num(new.iloc[i][c])}" for c in cols),
                     "replaced": ", ".join(f"{c} {_num(old.iloc[i][c])}" for c in cols),
                     "same_load": bool(before["load_id"].iloc[i] == kept.loc[before.index[i], "load_id"])})
    return pd.DataFrame(rows, columns=columns)


def _num(value: float) -> str:
    return "blank" if np.isnan(value) else f"{value:g}"


def check_restated(restated: pd.DataFrame) -> list[CheckResult]:
    """One warning per queue with restated intervals (restated_intervals output), naming them."""
    results = []
    for queue, group in restated.groupby("queue", sort=True):
        shown = "; ".join(f"{r.interval_start:%Y-%m-%d %H:%M} {r.replaced} -> {r.kept}"
                          f" ({'twice in one file' if r.same_load else 'by a newer export'})"
                          for r in group.head(SHOWN).itertuples())
        more = f"; and {len(group) - SHOWN} more" if len(group) > SHOWN else ""
        results.append(CheckResult(
            "report_restated", WARNING, False,
            f"queue {queue}: {len(group)} interval(s) reported twice with different numbers: {shown}{more}; "
            "the newest export's row is kept (within one file, its last row). If the other one was right, drop a "
            "corrected export for that day",
            queue=str(queue), value=float(len(group)), threshold=0))
    return results


def misaligned_rows(report: pd.DataFrame, interval_minutes: int) -> pd.DataFrame:
    """One row per report row whose interval spans two grid intervals of `interval_minutes`.

    A report's interval length, per load and queue, is the gcd of the gaps between its distinct UTC starts
    (a load with one row of a queue, or whose rows lie further apart than a grid interval, is let be). A row
    starting `s` minutes into a grid interval spans two when s + length > interval_minutes.
    Columns: queue, interval_start, length.
    """
    columns = ["queue", "interval_start", "length"]
    if report.empty:
        return pd.DataFrame(columns=columns)
    group = pd.MultiIndex.from_arrays([report["load_id"], report["queue"].astype("str")]).factorize()[0]
    utc = report["interval_start_utc"].to_numpy("datetime64[ns]")
    order = np.lexsort((utc, group))
    g, t = group[order], (utc[order] - np.datetime64(0, "ns")) // np.timedelta64(1, "m")
    same = np.r_[False, g[1:] == g[:-1]]
    # gcd(0, x) = x: a group's first row adds nothing.
    gaps = np.where(same, np.diff(t, prepend=t[:1]), 0).astype("int64")
    starts = np.flatnonzero(~same)
    length = np.zeros(group.max() + 1, dtype="int64")
    length[g[starts]] = np.gcd.reduceat(gaps, starts)
    local = report["interval_start"]
    into = ((local - local.dt.normalize()) // pd.Timedelta(minutes=1)).to_numpy("int64") % interval_minutes
    row_length = length[group]
    # A load whose rows lie further apart than a grid interval (a correction of a few intervals, a sparse
    # report) does not show its length: let it be.
    spans = (row_length > 0) & (row_length <= interval_minutes) & (into + row_length > interval_minutes)
    return pd.DataFrame({"queue": report["queue"].astype("str").to_numpy()[spans],
                         "interval_start": local.to_numpy()[spans], "length": row_length[spans]}, columns=columns)


def check_alignment(rows: pd.DataFrame, interval_minutes: int) -> list[CheckResult]:
    """One warning per queue with rows that span two grid intervals (misaligned_rows output), naming the fix."""
    results = []
    for queue, group in rows.groupby("queue", sort=True):
        length = int(group["length"].iloc[0])
        first = pd.Timestamp(group["interval_start"].min())
        minutes = sorted({f":{t.minute:02d}" for t in pd.to_datetime(group["interval_start"])})
        fits = [m for m in (5, 10, 15, 20, 30, 60) if m >= length and m % length == 0 and first.minute % m +
                length <= m] if length <= 60 else []
        hint = (f"export intervals that start on multiples of {interval_minutes} minutes "
                f"(:00{', :30' if interval_minutes == 30 else ''}), or a report of {math.gcd(interval_minutes, 15)}-"
                f"minute intervals, which sums into rules.interval_minutes exactly"
                + (f"; or set rules.interval_minutes to {fits[0]}" if fits and fits[0] != interval_minutes else ""))
        results.append(CheckResult(
            "report_alignment", WARNING, False,
            f"queue {queue}: {len(group)} report row(s) of {length} minutes start at {', '.join(minutes[:4])} "
            f"(first {first:%Y-%m-%d %H:%M}), so each spans two of the {interval_minutes}-minute intervals of "
            f"rules.interval_minutes; they are counted in the interval they start in ({first.minute % interval_minutes}"
            f" minutes early). Fix: {hint}",
            queue=str(queue), value=float(len(group)), threshold=0))
    return results

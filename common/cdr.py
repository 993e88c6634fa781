"""Clean call legs into customer contacts and aggregate them onto the interval calendar.

Bronze holds one row per call *leg* as the ACD exported it. Workforce planning
needs one row per customer *contact*: a re-exported leg is the same leg, a
transferred call is one contact (first touch: the first leg's queue and time),
and a caller who hangs up and rings back within a few minutes is one demand
(a "true redial"). This module turns legs into `silver_calls` and aggregates
those onto the complete interval calendar (`silver_interval`, `silver_daily`);
`intervals_from_report` gives the same `silver_interval` from interval-report
sources. Every function is pure: it returns a new frame and never modifies its input.

Time columns are naive local wall clock unless the name ends in `_utc`
(naive UTC). Grouping, ordering and joins use the `_utc` columns so the
repeated 02:00-03:00 hour of a DST fall-back day is never merged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from common import calendar as cal
from common.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ABANDONS = ("abandoned", "short_abandon")
DEMAND_OUTCOMES = ("answered", "abandoned")  # short abandons and `other` are not demand to staff for
REDIAL_MATCHES = ("customer_or_caller", "customer", "caller", "none")

SILVER_CALLS_COLUMNS = [
    "contact_id", "queue", "start_time", "start_time_utc", "date", "interval_start", "interval_start_utc",
    "outcome", "handle_seconds", "wait_seconds", "customer_id", "caller_id", "legs", "attempts",
    "is_open_hours", "is_holiday", "holiday_name", "counts_as_offered",
]
INTERVAL_COLUMNS = [
    "queue", "date", "interval_start", "interval_start_utc", "offered", "handled", "abandoned",
    "short_abandoned", "offered_outside_hours", "aht_seconds", "is_open",
]
DAILY_COLUMNS = [
    "queue", "date", "offered", "handled", "abandoned", "short_abandoned", "offered_outside_hours",
    "aht_seconds", "is_open", "is_holiday", "holiday_name",
]
_COUNT_COLUMNS = ["offered", "handled", "abandoned", "short_abandoned", "offered_outside_hours"]
# Columns a leg or contact may lack entirely (an export without them): treated as all unknown.
_OPTIONAL_COLUMNS = {
    "end_time": "datetime64[ns]", "handle_seconds": "float64", "wait_seconds": "float64",
    "customer_id": "str", "caller_id": "str", "parent_call_id": "str",
}


@dataclass(frozen=True)
class ContactRules:
    """The `rules:` settings that turn legs into contacts (a step passes only these, not the whole config)."""

    redial_window_minutes: int
    redial_match: str
    short_abandon_seconds: float
    interval_minutes: int
    tz: str
    hours: cal.OpeningHours  # parse_opening_hours(rules.opening_hours)
    closed_dates: pd.DataFrame  # holiday_calendar(...): public holidays plus rules.holidays.extra_closed_dates


# --- helpers ---------------------------------------------------------------------------------------------

def _require(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")


def _with_optional(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """`frame` with each of `columns` present (all unknown where the export had none)."""
    extra = {c: pd.Series(np.nan, index=frame.index).astype(_OPTIONAL_COLUMNS[c])
             for c in columns if c not in frame.columns}
    return frame.assign(**extra) if extra else frame


def _id_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer code per id (-1 where missing or blank: CSV exports write "" for no value) and the distinct ids.

    Ids are factorised once and then handled as integers: hashing strings is
    cheap, sorting millions of them is not.
    """
    codes, uniques = pd.factorize(values.to_numpy(dtype=object, na_value=None), use_na_sentinel=True)
    uniques = pd.Index(uniques, dtype="str")
    blank = np.flatnonzero(uniques.str.strip() == "")
    if len(blank):
        codes = np.where(np.isin(codes, blank), -1, codes)
    return codes, uniques


def _seconds(values: pd.Series) -> pd.Series:
    return pd.to_timedelta(values, unit="s")


# --- legs -> contacts ------------------------------------------------------------------------------------

def dedup_legs(legs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one row per call_id: the newest export (highest load_id, then highest source_row).

    Grain of the result: one row per call leg (`call_id` unique), in input order,
    fresh RangeIndex. Returns the frame and how many rows were removed.
    """
    _require(legs, ("call_id", "load_id", "source_row"), "legs")
    codes, uniques = _id_codes(legs["call_id"])
    if (codes < 0).any():
        raise DataError(f"legs.call_id is missing or blank in {int((codes < 0).sum())} row(s); "
                        "the loader must reject such rows into bronze_rejects")
    if len(uniques) == len(legs):
        return legs.reset_index(drop=True), 0
    # Sorted by call, then by age; the last row of each call is its newest export.
    order = np.lexsort((legs["source_row"].to_numpy(), legs["load_id"].to_numpy(), codes))
    last = np.append(codes[order][1:] != codes[order][:-1], True)
    keep = np.sort(order[last])
    return legs.iloc[keep].reset_index(drop=True), len(legs) - len(keep)


def _roots(parent_pos: np.ndarray, call_ids: np.ndarray) -> np.ndarray:
    """Root leg position of every leg, by pointer jumping: each pass doubles the distance followed,
    so a chain of depth d converges in log2(d) passes. A cycle never reaches a leg that is its own parent."""
    root = parent_pos
    for _ in range(max(2, math.ceil(math.log2(max(len(root), 2))) + 2)):
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    in_cycle = parent_pos[root] != root
    if in_cycle.any():
        start = int(np.flatnonzero(in_cycle)[0])
        path, seen = [start], {start}
        while (nxt_pos := int(parent_pos[path[-1]])) not in seen and len(path) < 10:
            path.append(nxt_pos)
            seen.add(nxt_pos)
        path.append(nxt_pos)
        chain = " -> ".join(repr(str(call_ids[p])) for p in path)
        raise DataError(f"legs.parent_call_id forms a cycle ({chain}): {int(in_cycle.sum())} leg(s) have no first "
                        "leg to attribute them to; fix parent_call_id in the source export for these call_ids")
    return root


def attribute_transfers(legs: pd.DataFrame) -> pd.DataFrame:
    """Merge transfer legs into their first leg (first-touch attribution).

    Grain of the result: one row per contact (= root leg: the leg reached by
    following parent_call_id until a leg without a parent in the frame), in the
    order of the root legs. Columns: contact_id (root call_id), queue, start_time, start_time_utc,
    customer_id, caller_id and wait_seconds of the root; end_time = latest end of any leg; handle_seconds =
    sum over the legs not abandoned (an abandon handled nothing; NaN if none is known); outcome = answered
    if any leg was answered, else the root's; legs = number of legs; parent_missing = the root leg names
    a parent that is not in the frame (an "orphan": its own contact; the caller
    reports `parent_missing.sum()`). A leg whose parent is itself is a root.
    call_id must be unique (run `dedup_legs` first).
    """
    _require(legs, ("call_id", "queue", "start_time", "start_time_utc", "outcome"), "legs")
    legs = _with_optional(legs, tuple(_OPTIONAL_COLUMNS))
    ids = pd.Index(legs["call_id"].to_numpy())
    if not ids.is_unique:
        dupes = ids[ids.duplicated()].unique()[:3].tolist()
        raise DataError(f"legs.call_id has duplicate call_id values (e.g. {dupes}); run dedup_legs first")
    n = len(legs)
    own = np.arange(n)
    parent_codes, parents = _id_codes(legs["parent_call_id"])
    has_parent = parent_codes >= 0
    found = np.append(ids.get_indexer(parents), -1)[parent_codes]  # code -1 (no parent) picks the -1 at the end
    orphan = has_parent & (found < 0)
    parent_pos = np.where(has_parent & (found >= 0), found, own)
    root = _roots(parent_pos, legs["call_id"].to_numpy())

    roots = np.flatnonzero(root == own)
    handle = legs["handle_seconds"].to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(handle) & ~legs["outcome"].isin(ABANDONS).to_numpy()  # whatever a sloppy ACD wrote there
    handle_sum = np.bincount(root, weights=np.where(known, handle, 0.0), minlength=n)[roots]
    handle_known = np.bincount(root, weights=known, minlength=n)[roots]
    answered = np.bincount(root, weights=(legs["outcome"] == "answered").to_numpy(), minlength=n)[roots] > 0
    end = legs["end_time"].groupby(root).max()  # NaT-skipping; index = root positions, sorted like `roots`

    base = legs.iloc[roots]
    return pd.DataFrame({
        "contact_id": base["call_id"].to_numpy(),
        "queue": base["queue"].to_numpy(),
        "start_time": base["start_time"].to_numpy(),
        "start_time_utc": base["start_time_utc"].to_numpy(),
        "end_time": end.to_numpy(),
        "outcome": np.where(answered, "answered", base["outcome"].to_numpy(dtype=object)),
        "handle_seconds": np.where(handle_known > 0, handle_sum, np.nan),
        "wait_seconds": base["wait_seconds"].to_numpy(dtype="float64", na_value=np.nan),
        "customer_id": base["customer_id"].to_numpy(),
        "caller_id": base["caller_id"].to_numpy(),
        "legs": np.bincount(root, minlength=n)[roots].astype("int64"),
        "parent_missing": orphan[roots],
    }).astype({"contact_id": "str", "queue": "str", "outcome": "str", "customer_id": "str", "caller_id": "str"})


def _redial_key(contacts: pd.DataFrame, match: str) -> np.ndarray:
    """Who called, as an integer (-1 unknown); customer and caller codes never collide."""
    customer, customers = _id_codes(contacts["customer_id"])
    caller, _ = _id_codes(contacts["caller_id"])
    if match == "customer":
        return customer
    caller = np.where(caller >= 0, caller + len(customers), -1)
    if match == "caller":
        return caller
    return np.where(customer >= 0, customer, caller)


def collapse_redials(contacts: pd.DataFrame, window_minutes: int, match: str = "customer_or_caller") -> pd.DataFrame:
    """Collapse true redials: a caller who abandons and calls again within `window_minutes` is one contact.

    Grain of the result: one row per redial chain (a chain of one for most
    contacts). A contact continues the chain of the same caller's previous
    contact when that one was abandoned/short_abandon and this one starts at
    most `window_minutes` after its abandon time (end_time if known, else
    start + wait_seconds, else start; measured on the UTC clock; starting
    while the previous one was still waiting counts too). Time, queue,
    contact_id, customer/caller of the first attempt; outcome, wait_seconds and
    end_time of the last; handle_seconds summed over attempts not abandoned (NaN if
    none), legs summed; `attempts` = contacts in the chain (summed if the input has it).
    Ordered by start_time_utc (ties: input order; chains break ties by contact_id). `match`: "customer_or_caller"
    (customer_id when present, else caller_id), "customer", "caller" or
    "none". Window 0 or "none" disables collapsing.
    """
    if match not in REDIAL_MATCHES:
        raise ConfigError(f"rules.redial_match: {match!r} is not one of {list(REDIAL_MATCHES)}")
    if window_minutes < 0:
        raise ConfigError(f"rules.redial_window_minutes: {window_minutes}, must be >= 0 (0 disables redial collapsing)")
    _require(contacts, ("contact_id", "start_time", "start_time_utc", "outcome"), "contacts")
    contacts = _with_optional(contacts, ("end_time", "handle_seconds", "wait_seconds", "customer_id", "caller_id"))
    ones = pd.Series(1, index=contacts.index)
    work = contacts.assign(attempts=contacts.get("attempts", ones).astype("int64"),
                           legs=contacts.get("legs", ones).astype("int64")).reset_index(drop=True)
    start_utc = work["start_time_utc"].to_numpy().astype("datetime64[ns]").astype("int64")
    if window_minutes == 0 or match == "none" or work.empty:
        return work.iloc[np.argsort(start_utc, kind="stable")].reset_index(drop=True)

    duration = (work["end_time"] - work["start_time"]).fillna(_seconds(work["wait_seconds"])).fillna(pd.Timedelta(0))
    abandon_utc = start_utc + duration.to_numpy().astype("timedelta64[ns]").astype("int64")
    key = _redial_key(work, match)
    # By caller, then time; equal times by contact_id, so the chains never depend on the order rows arrive in.
    tie, _ = pd.factorize(work["contact_id"].to_numpy(dtype=object), sort=True)
    order = np.lexsort((tie, start_utc, key))
    key, start_utc, abandon_utc = key[order], start_utc[order], abandon_utc[order]
    was_abandon = work["outcome"].isin(ABANDONS).to_numpy()[order]
    continues = np.zeros(len(work), dtype=bool)
    continues[1:] = ((key[1:] >= 0) & (key[1:] == key[:-1]) & was_abandon[:-1]
                     & (start_utc[1:] - abandon_utc[:-1] <= window_minutes * 60 * 10**9))
    starts = np.flatnonzero(~continues)
    ends = np.append(starts[1:], len(work)) - 1

    # An abandoned attempt handled nothing, so only the chain's answer (or other end) adds handle time.
    handle = np.where(was_abandon, np.nan, work["handle_seconds"].to_numpy(dtype="float64", na_value=np.nan)[order])
    handle_sum = np.add.reduceat(np.nan_to_num(handle), starts)
    handle_known = np.add.reduceat((~np.isnan(handle)).astype("int64"), starts)
    first, last = order[starts], order[ends]
    result = work.iloc[first].assign(
        outcome=work["outcome"].to_numpy()[last],
        wait_seconds=work["wait_seconds"].to_numpy()[last],
        end_time=work["end_time"].to_numpy()[last],
        handle_seconds=np.where(handle_known > 0, handle_sum, np.nan),
        legs=np.add.reduceat(work["legs"].to_numpy()[order], starts),
        attempts=np.add.reduceat(work["attempts"].to_numpy()[order], starts),
    )
    return result.iloc[np.lexsort((first, start_utc[starts]))].reset_index(drop=True)


def mark_short_abandons(contacts: pd.DataFrame, short_abandon_seconds: float) -> pd.DataFrame:
    """Relabel `abandoned` contacts that waited less than `short_abandon_seconds` as `short_abandon`.

    Grain unchanged (one row per contact). Callers who hang up within a few
    seconds (misdials, IVR drop-outs) are not demand. Unknown wait: unchanged.
    """
    if short_abandon_seconds < 0:
        raise ConfigError(f"rules.short_abandon_seconds: {short_abandon_seconds}, must be >= 0 (0 disables it)")
    short = (contacts["outcome"] == "abandoned") & (contacts["wait_seconds"] < short_abandon_seconds)
    return contacts.assign(outcome=contacts["outcome"].mask(short, "short_abandon"))


# --- calendar flags and the whole chain ------------------------------------------------------------------

def _holiday_names(dates: pd.Series, closed_dates: pd.DataFrame | None) -> pd.Series:
    """Name of the closed date each date falls on (missing where it is an ordinary day)."""
    if closed_dates is None or len(closed_dates) == 0:
        return pd.Series(np.nan, index=dates.index, dtype="str")
    names = pd.Series(closed_dates["holiday_name"].astype("str").to_numpy(),
                      index=pd.to_datetime(closed_dates["date"]).dt.normalize().astype("datetime64[ns]"))
    names = names[~names.index.duplicated(keep="first")]
    return pd.Series(names.reindex(dates.to_numpy()).to_numpy(), index=dates.index, dtype="str")


def flag_calendar(contacts: pd.DataFrame, hours: cal.OpeningHours, closed_dates: pd.DataFrame | None,
                  interval_minutes: int, tz: str) -> pd.DataFrame:
    """Add the interval and opening-hours flags to each contact (grain unchanged: one row per contact).

    interval_start_utc is the contact's interval on the `interval_grid` of `tz`,
    taken from start_time_utc (so the two 02:xx hours of a fall-back day land in
    different intervals); interval_start is its local wall clock and `date` its
    local day (datetime64 midnight, like the grid). is_open_hours: the queue is
    open at start_time and the date is not in `closed_dates` (holiday_calendar
    output: public holidays plus configured closures); is_holiday/holiday_name:
    the date is in `closed_dates`. counts_as_offered = is_open_hours and outcome
    is answered or abandoned. Datetime columns come back as datetime64[ns], like
    common.calendar's.
    """
    _require(contacts, ("queue", "start_time", "start_time_utc", "outcome"), "contacts")
    utc = contacts["start_time_utc"].astype("datetime64[ns]")
    if utc.isna().any():
        raise DataError(f"contacts.start_time_utc is missing in {int(utc.isna().sum())} row(s); "
                        "every contact needs its start time (the loader rejects rows without one)")
    interval_utc = cal.floor_to_interval_utc(utc, None, interval_minutes, tz)
    interval_local = cal.to_local(interval_utc, tz)
    date = interval_local.dt.normalize()
    local = contacts["start_time"].astype("datetime64[ns]")
    drift = (cal.to_local(utc, tz) != local) & local.notna()
    if drift.any():
        # The UTC column is the join key; a disagreeing wall clock (e.g. 02:30 in a spring-forward gap) is logged only.
        log.warning("%d contact(s) have start_time that is not start_time_utc seen in %s (first: contact %s); "
                    "their interval comes from start_time_utc", int(drift.sum()), tz,
                    contacts["contact_id"].iloc[int(np.flatnonzero(drift.to_numpy())[0])]
                    if "contact_id" in contacts.columns else "?")
    is_open = cal.is_open_at(contacts["queue"], local, hours, closed_dates)
    names = _holiday_names(date, closed_dates)
    return contacts.assign(
        start_time=local,
        start_time_utc=utc,
        date=date,
        interval_start=interval_local,
        interval_start_utc=interval_utc,
        is_open_hours=is_open.to_numpy(),
        is_holiday=names.notna().to_numpy(),
        holiday_name=names.to_numpy(),
        counts_as_offered=is_open.to_numpy() & contacts["outcome"].isin(DEMAND_OUTCOMES).to_numpy(),
    )


def contacts_from_legs(legs: pd.DataFrame, rules: ContactRules) -> tuple[pd.DataFrame, dict[str, int]]:
    """Legs -> silver_calls: dedup, transfers, redials, short abandons, calendar flags, in that order.

    Grain of the result: one row per customer contact (`contact_id` = call_id
    of its first leg of its first attempt), columns SILVER_CALLS_COLUMNS,
    ordered by start_time_utc. Also returns row counts of each stage for the log.
    """
    unique, duplicates = dedup_legs(legs)
    attributed = attribute_transfers(unique)
    collapsed = collapse_redials(attributed, rules.redial_window_minutes, rules.redial_match)
    marked = mark_short_abandons(collapsed, rules.short_abandon_seconds)
    calls = flag_calendar(marked, rules.hours, rules.closed_dates, rules.interval_minutes, rules.tz)
    calls = calls[SILVER_CALLS_COLUMNS].reset_index(drop=True)
    counts = {
        "legs_in": len(legs),
        "duplicates_removed": duplicates,
        "orphan_transfer_legs": int(attributed["parent_missing"].sum()),
        "transfer_legs_merged": len(unique) - len(attributed),
        "redials_collapsed": len(attributed) - len(collapsed),
        "short_abandons": int((calls["outcome"] == "short_abandon").sum()),
        "outside_hours": int((~calls["is_open_hours"]).sum()),
        "contacts_out": len(calls),
    }
    return calls, counts


# --- aggregation onto the interval calendar --------------------------------------------------------------

def _grid_positions(grid: pd.DataFrame, queues: pd.Series, interval_utc: pd.Series, what: str) -> np.ndarray:
    """Row position in `grid` of each (queue, interval_start_utc); DataError for any that is not there."""
    _require(grid, ("queue", "date", "interval_start", "interval_start_utc", "is_open"), "grid")
    unknown = sorted(set(queues.dropna().unique()) - set(grid["queue"].unique()))
    if unknown:
        raise DataError(f"{what} have queue(s) {unknown[:5]} that the interval grid lacks; "
                        "build interval_grid for every queue in the data (and its opening hours)")
    keys = pd.MultiIndex.from_arrays([grid["queue"].astype("str"), grid["interval_start_utc"].astype("datetime64[ns]")])
    if not keys.is_unique:
        raise DataError("grid has repeated (queue, interval_start_utc) rows; pass interval_grid(...) output as is")
    pos = keys.get_indexer(pd.MultiIndex.from_arrays([queues.astype("str"), interval_utc.astype("datetime64[ns]")]))
    if (pos < 0).any():
        missing = interval_utc[pos < 0]
        raise DataError(f"{int((pos < 0).sum())} {what} fall outside the interval grid "
                        f"(interval_start_utc {missing.min()} .. {missing.max()}, grid "
                        f"{grid['interval_start_utc'].min()} .. {grid['interval_start_utc'].max()}); "
                        "build the grid over every date of the data")
    return pos


def _count_at(pos: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pos[mask], minlength=n).astype("float64")


def aggregate_intervals(contacts: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    """silver_interval from silver_calls: one row per grid row (queue x interval, closed ones too).

    Counts are float64 (as in the table, and so the interval-report path can
    hold unknowns). offered = contacts that count as offered; handled/abandoned
    = offered ones answered/abandoned; short_abandoned = every short abandon
    that started in the interval (open or not); offered_outside_hours =
    answered/abandoned contacts outside opening hours or on closed dates;
    aht_seconds = mean handle_seconds of handled contacts whose handle is
    known (NaN when none). Intervals without contacts are 0.
    """
    _require(contacts, ("queue", "interval_start_utc", "outcome", "handle_seconds", "is_open_hours",
                        "counts_as_offered"), "contacts")
    n = len(grid)
    pos = _grid_positions(grid, contacts["queue"], contacts["interval_start_utc"], "contacts")
    outcome = contacts["outcome"]
    offered = contacts["counts_as_offered"].to_numpy(dtype=bool)
    answered = (outcome == "answered").to_numpy()
    handled = offered & answered
    handle = contacts["handle_seconds"].to_numpy(dtype="float64", na_value=np.nan)
    timed = handled & ~np.isnan(handle)
    handle_sum = np.bincount(pos[timed], weights=handle[timed], minlength=n)
    timed_n = np.bincount(pos[timed], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        aht = np.where(timed_n > 0, handle_sum / np.maximum(timed_n, 1), np.nan)
    outside = ~contacts["is_open_hours"].to_numpy(dtype=bool) & outcome.isin(DEMAND_OUTCOMES).to_numpy()
    return pd.DataFrame({
        "queue": grid["queue"].astype("str").to_numpy(),
        "date": grid["date"].to_numpy(),
        "interval_start": grid["interval_start"].to_numpy(),
        "interval_start_utc": grid["interval_start_utc"].to_numpy(),
        "offered": _count_at(pos, offered, n),
        "handled": _count_at(pos, handled, n),
        "abandoned": _count_at(pos, offered & (outcome == "abandoned").to_numpy(), n),
        "short_abandoned": _count_at(pos, (outcome == "short_abandon").to_numpy(), n),
        "offered_outside_hours": _count_at(pos, outside, n),
        "aht_seconds": aht,
        "is_open": grid["is_open"].to_numpy(dtype=bool),
    }).astype({"queue": "str"})


def _sum_unknown_wins(values: pd.Series, groups: list) -> pd.Series:
    """Group sums that stay NaN when any member is unknown: a partial sum would look like a real count."""
    return values.groupby(groups, sort=False).sum(skipna=False)


def _weighted_aht(aht: pd.Series, weight: pd.Series, groups: list) -> pd.Series:
    """sum(aht * weight) / sum(weight) over rows with a known aht and weight > 0; NaN where none."""
    use = aht.notna() & weight.notna() & (weight > 0)
    num = (aht * weight).where(use, 0.0).groupby(groups, sort=False).sum()
    den = weight.where(use, 0.0).groupby(groups, sort=False).sum()
    return (num / den).where(den > 0)


def aggregate_daily(intervals: pd.DataFrame, closed_dates: pd.DataFrame | None) -> pd.DataFrame:
    """silver_daily from silver_interval: one row per queue per local date (closed days too).

    Counts are day sums (NaN if any interval's is unknown, which only the
    interval-report path produces); aht_seconds is weighted by handled;
    is_open = any open interval; is_holiday/holiday_name from `closed_dates`
    (holiday_calendar output). Ordered by queue, date.
    """
    _require(intervals, INTERVAL_COLUMNS, "intervals")
    groups = [intervals["queue"], intervals["date"]]
    sums = {c: _sum_unknown_wins(intervals[c].astype("float64"), groups) for c in _COUNT_COLUMNS}
    daily = pd.DataFrame(sums)
    daily["aht_seconds"] = _weighted_aht(intervals["aht_seconds"], intervals["handled"], groups)
    daily["is_open"] = intervals["is_open"].groupby(groups, sort=False).any()
    daily = daily.reset_index(names=["queue", "date"]).sort_values(["queue", "date"], kind="stable")
    names = _holiday_names(daily["date"], closed_dates)
    daily = daily.assign(is_holiday=names.notna(), holiday_name=names, queue=daily["queue"].astype("str"))
    return daily[DAILY_COLUMNS].reset_index(drop=True)


# --- renamed queues ----------------------------------------------------------------------------------------

def apply_queue_aliases(rows: pd.DataFrame, aliases: dict[str, str]) -> pd.DataFrame:
    """Bronze rows with old queue names replaced by current ones (`rules.queue_aliases`, chains already resolved).

    Grain unchanged for call legs (one row per leg): a renamed queue's history and its new name become one
    series, and a redial across the rename is one contact. Interval-report rows (no `call_id`; one row per
    queue per reported interval) are first reduced to the newest export of each (old queue, interval), as
    `intervals_from_report` would, and the rows that now share (queue, interval_start_utc) are summed into
    one (both names reported calls in that interval): counts summed (unknown if any part is unknown, a
    blank beside offered 0 is 0), aht_seconds weighted by handled (by offered where handled is unknown).
    """
    if not aliases or rows.empty or not rows["queue"].isin(list(aliases)).any():
        return rows
    renamed = rows.assign(queue=rows["queue"].replace(aliases).astype("str"))
    if "call_id" in rows.columns or "interval_start_utc" not in rows.columns:
        return renamed
    order = np.arange(len(rows))
    newest = rows.assign(_order=order).sort_values(["queue", "interval_start_utc", "load_id", "_order"], kind="stable")
    keep = np.sort(newest.loc[~newest.duplicated(["queue", "interval_start_utc"], keep="last"), "_order"].to_numpy())
    renamed = renamed.iloc[keep].reset_index(drop=True)
    key = ["queue", "interval_start_utc"]
    shared = renamed.duplicated(key, keep=False)
    if not shared.any():
        return renamed
    both = renamed[shared]
    groups = [both["queue"], both["interval_start_utc"]]
    offered = both["offered"].astype("float64")
    parts = {c: both[c].astype("float64").mask((offered == 0) & both[c].isna(), 0.0) if c in both.columns
             else pd.Series(np.nan, index=both.index) for c in ("handled", "abandoned")}
    merged = both.groupby(groups, sort=False).first()  # names, timestamps and dates are the same within a group
    merged["offered"] = offered.groupby(groups, sort=False).sum()
    for c, values in parts.items():
        if c in both.columns:
            merged[c] = _sum_unknown_wins(values, groups)
    if "aht_seconds" in both.columns:
        merged["aht_seconds"] = _weighted_aht(both["aht_seconds"].astype("float64"),
                                              parts["handled"].fillna(offered), groups)
    merged["load_id"] = both["load_id"].groupby(groups, sort=False).max()
    merged = merged.drop(columns=key, errors="ignore").reset_index()
    out = pd.concat([renamed[~shared], merged[renamed.columns]], ignore_index=True)
    return out.astype(renamed.dtypes.to_dict())


# --- interval-report sources -----------------------------------------------------------------------------

def _report_minutes(local_starts: pd.Series) -> int:
    """The report's interval length, inferred as the gcd of its start times' minutes since midnight (and 1440)."""
    since_midnight = (local_starts - local_starts.dt.normalize()) / pd.Timedelta(minutes=1)
    if (since_midnight % 1 != 0).any():
        raise DataError("report.interval_start has times that are not whole minutes; "
                        "interval reports start on whole minutes (e.g. 08:00, 08:15)")
    return int(reduce(math.gcd, since_midnight.astype("int64").unique().tolist(), 1440))


def intervals_from_report(report: pd.DataFrame, grid: pd.DataFrame, interval_minutes: int,
                          with_source_rows: bool = False) -> pd.DataFrame:
    """silver_interval from an interval-report source: one row per grid row, same columns as aggregate_intervals.

    With `with_source_rows`, also `source_rows`: how many report rows (after dedup) fell in the interval, so a
    row that reports 0 calls still shows the export covered it (0: the export had no row for it). It is for
    the completeness check and is not stored in silver_interval.

    Decisions (so the two source kinds mean the same downstream):
    - a repeated (queue, interval_start_utc) keeps the row of the highest load_id (the newest export);
    - rows finer than `interval_minutes` (5/15 min) are summed into the configured interval;
      the report's length is the gcd of its start times' minutes after midnight, so a report whose
      every row falls on whole hours reads as hourly; a coarser report is a DataError;
    - offered in a closed grid interval moves to offered_outside_hours; offered, handled and abandoned
      are 0 there and aht NaN (CDR meaning: handled is a part of offered);
    - handled/abandoned left blank (or absent) in a row that has calls are unknown: NaN, and an interval
      with any unknown part is NaN (a blank in a row with offered 0 is 0). short_abandoned is NaN
      throughout: a report does not separate short abandons (its offered is the ACD's own count);
    - aht_seconds is weighted by handled (by offered where handled is unknown); NaN where no weight.
    """
    _require(report, ("queue", "interval_start", "interval_start_utc", "offered", "load_id"), "report")
    if interval_minutes not in cal.INTERVAL_MINUTES:
        raise ConfigError(f"rules.interval_minutes: {interval_minutes!r} is not allowed; "
                          f"use one of {', '.join(map(str, cal.INTERVAL_MINUTES))}")
    rows = report.assign(**{c: np.nan for c in ("handled", "abandoned", "aht_seconds") if c not in report.columns})
    if rows["offered"].isna().any():
        raise DataError(f"report.offered is missing in {int(rows['offered'].isna().sum())} row(s); "
                        "offered is required in an interval report")
    local = rows["interval_start"].astype("datetime64[ns]")
    utc = rows["interval_start_utc"].astype("datetime64[ns]")
    if len(rows):
        minutes = _report_minutes(local)
        if interval_minutes % minutes:
            fits = [m for m in cal.INTERVAL_MINUTES if m % minutes == 0]
            hint = (f"set rules.interval_minutes to {' or '.join(map(str, fits))}" if fits
                    else "it is too coarse for interval forecasting (rules.interval_minutes is at most 60)")
            raise DataError(f"report intervals are {minutes} minutes long (their starts fall on multiples of "
                            f"{minutes} minutes) but rules.interval_minutes is {interval_minutes}; "
                            f"they cannot be summed into it; {hint}")
    rows = rows.assign(_local=local, _utc=utc, _order=np.arange(len(rows)))
    rows = rows.sort_values(["queue", "_utc", "load_id", "_order"], kind="stable")
    rows = rows[~rows.duplicated(["queue", "_utc"], keep="last")]

    # The bucket's UTC start: the row's UTC minus its wall-clock distance into the bucket (DST-safe).
    floored = cal.floor_to_interval(rows["_local"], interval_minutes)
    bucket_utc = rows["_utc"] - (rows["_local"] - floored)
    n = len(grid)
    pos = pd.Series(_grid_positions(grid, rows["queue"], bucket_utc, "report rows"), index=rows.index)
    offered = rows["offered"].astype("float64")
    no_calls = offered == 0
    handled = rows["handled"].astype("float64").mask(no_calls & rows["handled"].isna(), 0.0)
    abandoned = rows["abandoned"].astype("float64").mask(no_calls & rows["abandoned"].isna(), 0.0)
    weight = handled.fillna(offered)

    per = pd.DataFrame({
        "offered": offered.groupby(pos).sum(),
        "handled": _sum_unknown_wins(handled, [pos]),
        "abandoned": _sum_unknown_wins(abandoned, [pos]),
        "aht_seconds": _weighted_aht(rows["aht_seconds"].astype("float64"), weight, [pos]),
    }).reindex(np.arange(n))
    is_open = grid["is_open"].to_numpy(dtype=bool)
    reported = is_open & per["offered"].notna().to_numpy()
    offered_all = per["offered"].fillna(0.0).to_numpy()
    # An open interval without a report row had no calls (0, not unknown); closed ones hold no offered demand.
    out = pd.DataFrame({
        "queue": grid["queue"].astype("str").to_numpy(),
        "date": grid["date"].to_numpy(),
        "interval_start": grid["interval_start"].to_numpy(),
        "interval_start_utc": grid["interval_start_utc"].to_numpy(),
        "offered": np.where(is_open, offered_all, 0.0),
        "handled": np.where(reported, per["handled"].to_numpy(), 0.0),
        "abandoned": np.where(reported, per["abandoned"].to_numpy(), 0.0),
        "short_abandoned": np.full(n, np.nan),
        "offered_outside_hours": np.where(is_open, 0.0, offered_all),
        "aht_seconds": np.where(reported, per["aht_seconds"].to_numpy(), np.nan),
        "is_open": is_open,
    }).astype({"queue": "str"})
    if with_source_rows:
        out["source_rows"] = np.bincount(pos.to_numpy(), minlength=n).astype("int64")
    return out


def clip_aht(frame: pd.DataFrame, low: float, high: float) -> tuple[pd.DataFrame, int]:
    """aht_seconds clipped into [low, high] (grain unchanged); also returns how many values were clipped.

    NaN stays NaN (no handled contacts is not an AHT of `low`).
    """
    if low > high:
        raise ConfigError(f"validation.aht_min_seconds ({low}) is above validation.aht_max_seconds ({high}); "
                          "the minimum must be below the maximum")
    aht = frame["aht_seconds"].astype("float64")
    outside = int(((aht < low) | (aht > high)).sum())
    return frame.assign(aht_seconds=aht.clip(low, high)), outside

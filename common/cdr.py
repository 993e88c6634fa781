"""Clean call legs into customer contacts (`silver_calls`); `common.aggregate` puts them on the interval calendar.

Bronze holds one row per call *leg* as the ACD exported it. Workforce planning
needs one row per customer *contact*: a re-exported leg is the same leg, a
transferred call is one contact (first touch: the first leg's queue and time),
and a caller who hangs up and rings back within a few minutes is one demand
(a "true redial"). This module turns legs into `silver_calls`; `common.aggregate`
counts those onto the complete interval calendar (`silver_interval`, `silver_daily`)
and gives the same `silver_interval` from interval-report sources. Every function
is pure: it returns a new frame and never modifies its input.

Time columns are naive local wall clock unless the name ends in `_utc`
(naive UTC). Grouping, ordering and joins use the `_utc` columns so the
repeated 02:00-03:00 hour of a DST fall-back day is never merged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common import calendar as cal
from common.errors import ConfigError, DataError
from common.opening_hours import OpeningHours

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
    hours: OpeningHours  # parse_opening_hours(rules.opening_hours)
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


def flag_calendar(contacts: pd.DataFrame, hours: OpeningHours, closed_dates: pd.DataFrame | None,
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

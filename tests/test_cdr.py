"""common.cdr: legs -> contacts -> silver_interval / silver_daily, checked against hand-worked answers.

Fixture rules everywhere: Europe/Stockholm, country SE, open 08:00-18:00
Mon-Fri, Sat/Sun closed, 30-minute intervals, redial window 10 min, short
abandon < 5 s. May 2025 is CEST (UTC+2); 2025-05-01 (Thu) is "Första maj".
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import calendar as cal
from common.aggregate import aggregate_daily, aggregate_intervals, clip_aht, intervals_from_report
from common.cdr import (
    DAILY_COLUMNS,
    INTERVAL_COLUMNS,
    SILVER_CALLS_COLUMNS,
    ContactRules,
    attribute_transfers,
    collapse_redials,
    contacts_from_legs,
    dedup_legs,
    mark_short_abandons,
)
from common.errors import ConfigError, DataError
from common.opening_hours import parse_opening_hours
from common.public_holidays import holiday_calendar

FIXTURES = Path(__file__).parent / "fixtures"
TZ = "Europe/Stockholm"
WEEK = {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": "closed", "sun": "closed"}
HOURS = parse_opening_hours({"default": WEEK})
CLOSED = holiday_calendar("SE", None, [], [2025])
RULES = ContactRules(redial_window_minutes=10, redial_match="customer_or_caller", short_abandon_seconds=5,
                     interval_minutes=30, tz=TZ, hours=HOURS, closed_dates=CLOSED)
ID_COLUMNS = ("call_id", "queue", "outcome", "customer_id", "caller_id", "parent_call_id", "agent_id", "channel")
NS = "datetime64[ns]"


def read_legs(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / name, dtype={c: "str" for c in ID_COLUMNS} | {"wait_seconds": "float64"},
                       parse_dates=["start_time", "start_time_utc", "end_time"])


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def make_legs(rows: list[dict]) -> pd.DataFrame:
    """Legs from a few dicts; unspecified columns get neutral values (no parent, unknown ids)."""
    defaults = {"queue": "sales", "end_time": pd.NaT, "outcome": "answered", "handle_seconds": np.nan,
                "wait_seconds": np.nan, "customer_id": None, "caller_id": None, "parent_call_id": None,
                "agent_id": None, "channel": "voice", "load_id": 1}
    full = [defaults | {"source_row": i + 1} | r for i, r in enumerate(rows)]
    legs = pd.DataFrame(full)
    legs["start_time"] = pd.to_datetime(legs["start_time"]).astype(NS)
    legs["end_time"] = pd.to_datetime(legs["end_time"]).astype(NS)
    legs["start_time_utc"] = cal.localize(legs["start_time"], TZ)
    return legs.astype({c: "str" for c in ID_COLUMNS} | {"handle_seconds": "float64", "wait_seconds": "float64"})


def contacts_of(legs: pd.DataFrame) -> pd.DataFrame:
    return attribute_transfers(dedup_legs(legs)[0])


# --- the tiny end-to-end fixture -------------------------------------------------------------------------
# tiny_cdr_legs.csv, 12 legs:
#   H1      support Thu 05-01 10:15 answered 150 s   -> holiday (Första maj): closed, outside hours
#   L01     sales   Fri 09:05 answered 300 s, C1
#   A1      sales   Fri 09:20 abandoned after 60 s, C1 -> previous C1 contact (L01) was answered: no redial
#   L02     sales   Fri 09:25 exported twice: load 1 says abandoned, load 2 says answered 240 s -> load 2 wins
#   T1>T2>T3 transfer chain: T1 sales 10:10 `other` (IVR, wait 5, handle unknown), T2 support answered 200 s,
#           T3 sales answered 100 s -> one contact T1: sales 10:10, answered (some leg was), handle 0+200+100=300,
#           wait 5 (root's), legs 3
#   R1, R2  caller +46700000009, no customer id: R1 support 11:00 abandoned (end 11:00:45), R2 sales 11:04 answered
#           180 s -> gap 3 min 15 s <= 10 min: one contact R1 (support, 11:00), answered (last), handle 180,
#           wait 10 (last attempt's), legs 2, attempts 2
#   S1      sales   Fri 12:00 abandoned after 3 s -> short_abandon (3 < 5), not offered
#   O1      sales   Fri 19:10 answered 200 s -> after 18:00: outside hours, not offered
CALLS_EXPECTED = [
    # contact_id, queue, start local, outcome, handle, wait, customer, caller, legs, attempts, open, holiday, offered
    ("H1", "support", "2025-05-01 10:15", "answered", 150.0, 12.0, "C9", "+46700000009", 1, 1, False, True, False),
    ("L01", "sales", "2025-05-02 09:05", "answered", 300.0, 20.0, "C1", "+46700000001", 1, 1, True, False, True),
    ("A1", "sales", "2025-05-02 09:20", "abandoned", np.nan, 60.0, "C1", "+46700000001", 1, 1, True, False, True),
    ("L02", "sales", "2025-05-02 09:25", "answered", 240.0, 15.0, "C2", "+46700000002", 1, 1, True, False, True),
    ("T1", "sales", "2025-05-02 10:10", "answered", 300.0, 5.0, "C3", "+46700000003", 3, 1, True, False, True),
    ("R1", "support", "2025-05-02 11:00", "answered", 180.0, 10.0, None, "+46700000009", 2, 2, True, False, True),
    ("S1", "sales", "2025-05-02 12:00", "short_abandon", np.nan, 3.0, "C5", "+46700000005", 1, 1, True, False, False),
    ("O1", "sales", "2025-05-02 19:10", "answered", 200.0, 30.0, "C6", "+46700000006", 1, 1, False, False, False),
]


def expected_calls() -> pd.DataFrame:
    rows = pd.DataFrame(CALLS_EXPECTED, columns=[
        "contact_id", "queue", "start_time", "outcome", "handle_seconds", "wait_seconds", "customer_id",
        "caller_id", "legs", "attempts", "is_open_hours", "is_holiday", "counts_as_offered"])
    start = pd.to_datetime(rows["start_time"]).astype(NS)
    interval = start.dt.floor("30min")
    return pd.DataFrame({
        "contact_id": rows["contact_id"], "queue": rows["queue"],
        "start_time": start, "start_time_utc": start - pd.Timedelta(hours=2),  # CEST
        "date": start.dt.normalize(), "interval_start": interval,
        "interval_start_utc": interval - pd.Timedelta(hours=2),
        "outcome": rows["outcome"], "handle_seconds": rows["handle_seconds"], "wait_seconds": rows["wait_seconds"],
        "customer_id": rows["customer_id"], "caller_id": rows["caller_id"],
        "legs": rows["legs"].astype("int64"), "attempts": rows["attempts"].astype("int64"),
        "is_open_hours": rows["is_open_hours"], "is_holiday": rows["is_holiday"],
        "holiday_name": rows["is_holiday"].map({True: "Första maj", False: None}),
        "counts_as_offered": rows["counts_as_offered"],
    }).astype({c: "str" for c in ("contact_id", "queue", "outcome", "customer_id", "caller_id", "holiday_name")})


def tiny_grid() -> pd.DataFrame:
    return cal.interval_grid(["sales", "support"], ts("2025-05-01"), ts("2025-05-02"), 30, TZ, HOURS, CLOSED)


def test_tiny_fixture_gives_the_hand_worked_silver_calls():
    calls, _ = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    assert list(calls.columns) == SILVER_CALLS_COLUMNS
    pd.testing.assert_frame_equal(calls, expected_calls())


def test_tiny_fixture_counts_every_cleaning_stage():
    _, counts = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    # 12 legs - 1 re-export = 11; T2, T3 merge into T1 (-2) = 9; R2 into R1 (-1) = 8 contacts;
    # S1 is the one short abandon; H1 (holiday) and O1 (19:10) are outside hours.
    assert counts == {"legs_in": 12, "duplicates_removed": 1, "orphan_transfer_legs": 0, "transfer_legs_merged": 2,
                      "redials_collapsed": 1, "short_abandons": 1, "outside_hours": 2, "contacts_out": 8}


def interval_row(queue, start, offered, handled, abandoned, short, outside, aht, is_open):
    local = ts(start)
    return {"queue": queue, "date": local.normalize(), "interval_start": local,
            "interval_start_utc": local - pd.Timedelta(hours=2), "offered": offered, "handled": handled,
            "abandoned": abandoned, "short_abandoned": short, "offered_outside_hours": outside,
            "aht_seconds": aht, "is_open": is_open}


def as_interval_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=INTERVAL_COLUMNS)
    counts = ["offered", "handled", "abandoned", "short_abandoned", "offered_outside_hours", "aht_seconds"]
    return frame.astype({"queue": "str", "date": NS, "interval_start": NS, "interval_start_utc": NS,
                         "is_open": bool} | {c: "float64" for c in counts})


def test_tiny_fixture_gives_the_hand_worked_silver_interval():
    calls, _ = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    intervals = aggregate_intervals(calls, tiny_grid())
    # Complete calendar: 2 queues x 2 days x 48 half-hours, closed ones included.
    assert len(intervals) == 192
    assert list(intervals.columns) == INTERVAL_COLUMNS
    busy = intervals[intervals[["offered", "short_abandoned", "offered_outside_hours"]].sum(axis=1) > 0]
    expect = as_interval_frame([
        # sales 09:00: L01 answered 300, A1 abandoned, L02 answered 240 -> offered 3, handled 2, aht (300+240)/2
        interval_row("sales", "2025-05-02 09:00", 3, 2, 1, 0, 0, 270.0, True),
        # sales 10:00: transfer contact T1, handle 300
        interval_row("sales", "2025-05-02 10:00", 1, 1, 0, 0, 0, 300.0, True),
        # sales 12:00: only the short abandon S1: not offered, no AHT
        interval_row("sales", "2025-05-02 12:00", 0, 0, 0, 1, 0, np.nan, True),
        # sales 19:00: O1 after closing -> outside hours only; the interval is closed
        interval_row("sales", "2025-05-02 19:00", 0, 0, 0, 0, 1, np.nan, False),
        # support 05-01 10:00: H1 on Första maj -> closed all day, outside hours only
        interval_row("support", "2025-05-01 10:00", 0, 0, 0, 0, 1, np.nan, False),
        # support 05-02 11:00: the redial chain R1+R2 counts once, in R1's queue and time
        interval_row("support", "2025-05-02 11:00", 1, 1, 0, 0, 0, 180.0, True),
    ])
    pd.testing.assert_frame_equal(busy.reset_index(drop=True), expect)
    # Open intervals without calls are 0, not missing: Friday has 20 open half-hours per queue.
    assert intervals.loc[intervals["is_open"], "offered"].notna().all()
    assert int(intervals["is_open"].sum()) == 2 * 20  # Thursday is a holiday, so only Friday is open


def test_tiny_fixture_gives_the_hand_worked_silver_daily():
    calls, _ = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    daily = aggregate_daily(aggregate_intervals(calls, tiny_grid()), CLOSED)
    # sales Fri: offered 3+1 = 4, handled 2+1 = 3, abandoned 1, short 1, outside 1 (O1);
    #   aht handle-weighted: (270*2 + 300*1) / 3 = 280 (an unweighted mean of intervals would say 285).
    # support Fri: the redial chain, 180 s. Thursday: holiday, closed; support's H1 is outside hours.
    expect = pd.DataFrame([
        ("sales", "2025-05-01", 0, 0, 0, 0, 0, np.nan, False, True, "Första maj"),
        ("sales", "2025-05-02", 4, 3, 1, 1, 1, 280.0, True, False, None),
        ("support", "2025-05-01", 0, 0, 0, 0, 1, np.nan, False, True, "Första maj"),
        ("support", "2025-05-02", 1, 1, 0, 0, 0, 180.0, True, False, None),
    ], columns=DAILY_COLUMNS)
    expect = expect.astype({"queue": "str", "date": NS, "holiday_name": "str"}
                           | {c: "float64" for c in DAILY_COLUMNS[2:8]})
    pd.testing.assert_frame_equal(daily, expect)


# --- redials ---------------------------------------------------------------------------------------------

def test_redial_chain_of_three_collapses_into_one_contact():
    # A abandons at 10:00:30 (start + wait 30 s, end unknown); B starts 3 min later and abandons at 10:04:00;
    # C starts 4 min after that. A->C is 7.5 min (> 5), so only chaining through B joins them.
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "outcome": "abandoned", "wait_seconds": 30,
         "caller_id": "+4670"},
        {"call_id": "B", "queue": "support", "start_time": "2025-05-02 10:03:30", "end_time": "2025-05-02 10:04:00",
         "outcome": "abandoned", "wait_seconds": 30, "caller_id": "+4670"},
        {"call_id": "C", "queue": "support", "start_time": "2025-05-02 10:08:00", "outcome": "answered",
         "handle_seconds": 240, "wait_seconds": 12, "caller_id": "+4670"},
    ])
    out = collapse_redials(contacts_of(legs), window_minutes=5)
    assert out[["contact_id", "queue", "start_time", "outcome", "handle_seconds", "wait_seconds", "attempts"]
               ].to_dict("records") == [{"contact_id": "A", "queue": "sales", "start_time": ts("2025-05-02 10:00"),
                                         "outcome": "answered", "handle_seconds": 240.0, "wait_seconds": 12.0,
                                         "attempts": 3}]


@pytest.mark.parametrize(("second_start", "expected_contacts"), [
    ("2025-05-02 10:11:00", 1),  # exactly 10 min after the 10:01 abandon: within the window
    ("2025-05-02 10:11:01", 2),  # one second more: a new contact
])
def test_redial_window_is_measured_from_the_abandon_and_inclusive(second_start, expected_contacts):
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "end_time": "2025-05-02 10:01:00",
         "outcome": "abandoned", "customer_id": "C1"},
        {"call_id": "B", "start_time": second_start, "outcome": "answered", "customer_id": "C1"},
    ])
    assert len(collapse_redials(contacts_of(legs), window_minutes=10)) == expected_contacts


def test_redial_outside_window_is_not_collapsed():
    # A abandons 10:01; B calls 10:12 (11 min later, window 10): two contacts, one attempt each.
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "end_time": "2025-05-02 10:01:00",
         "outcome": "abandoned", "caller_id": "+4670"},
        {"call_id": "B", "start_time": "2025-05-02 10:12:00", "outcome": "answered", "caller_id": "+4670"},
    ])
    out = collapse_redials(contacts_of(legs), window_minutes=10)
    assert out["contact_id"].tolist() == ["A", "B"]
    assert out["attempts"].tolist() == [1, 1]


def test_call_after_an_answered_call_is_not_a_redial():
    # A was answered; B one minute after A ended is a new need, not a retry.
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "end_time": "2025-05-02 10:05:00",
         "outcome": "answered", "customer_id": "C1"},
        {"call_id": "B", "start_time": "2025-05-02 10:06:00", "outcome": "answered", "customer_id": "C1"},
    ])
    assert collapse_redials(contacts_of(legs), window_minutes=10)["contact_id"].tolist() == ["A", "B"]


@pytest.mark.parametrize(("match", "window", "expected"), [
    ("customer_or_caller", 10, ["A", "B", "C"]),  # A, B have different customers; C's only id is a phone number
    ("caller", 10, ["A"]),                        # all three share the phone number
    ("customer", 10, ["A", "B", "C"]),            # C has no customer id: never matched
    ("none", 10, ["A", "B", "C"]),
    ("caller", 0, ["A", "B", "C"]),               # window 0 disables collapsing
])
def test_redial_match_key_decides_who_is_the_same_caller(match, window, expected):
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "outcome": "abandoned", "customer_id": "C1",
         "caller_id": "+4670"},
        {"call_id": "B", "start_time": "2025-05-02 10:02:00", "outcome": "abandoned", "customer_id": "C2",
         "caller_id": "+4670"},
        {"call_id": "C", "start_time": "2025-05-02 10:04:00", "outcome": "answered", "customer_id": "",
         "caller_id": "+4670"},
    ])
    assert collapse_redials(contacts_of(legs), window, match)["contact_id"].tolist() == expected


def test_redial_chains_match_a_plain_loop_oracle_on_random_contacts():
    rng = np.random.default_rng(11)
    n = 300
    start = ts("2025-05-02 08:00") + pd.to_timedelta(np.sort(rng.integers(0, 4 * 3600, n)), unit="s")
    customers = rng.choice(["C1", "C2", "C3", None], n)
    callers = rng.choice(["+1", "+2", "+3", "+4"], n)
    outcomes = rng.choice(["answered", "abandoned", "short_abandon", "other"], n, p=[0.4, 0.4, 0.1, 0.1])
    waits = rng.integers(1, 300, n)
    legs = make_legs([{"call_id": f"K{i:03d}", "start_time": start[i], "outcome": outcomes[i],
                       "wait_seconds": waits[i], "customer_id": customers[i], "caller_id": callers[i]}
                      for i in range(n)])

    head, last_abandon, last_head, last_outcome = {}, {}, {}, {}
    for i in range(n):  # contacts are already in time order; the key is customer, else caller
        key = customers[i] if customers[i] is not None else "caller " + callers[i]
        gap = start[i] - last_abandon.get(key, ts("2000-01-01"))
        joins = last_outcome.get(key) in ("abandoned", "short_abandon") and gap <= pd.Timedelta(minutes=10)
        head[i] = last_head[key] if joins else i
        last_head[key], last_outcome[key] = head[i], outcomes[i]
        last_abandon[key] = start[i] + pd.Timedelta(seconds=int(waits[i]))
    expect = pd.Series(list(head.values())).value_counts().sort_index()
    expect.index = [f"K{i:03d}" for i in expect.index]

    out = collapse_redials(contacts_of(legs), 10)
    assert 30 < len(out) < n - 30  # the data really has chains, and not everything collapses
    assert out.set_index("contact_id")["attempts"].sort_index().to_dict() == expect.to_dict()


def test_redial_chain_handle_time_is_the_answered_attempts_only_in_calls_intervals_and_days():
    # A sloppy ACD writes the abandoned attempt's 40 s into its handle time. C1 abandons at 10:00:40 and is
    # answered at 10:03 (2 min 20 s later, window 10): one contact, and only the answer handled anything:
    # handle 300 (not 40 + 300 = 340), so sales 10:00 has AHT 300 and so has the day (its only handled contact).
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "end_time": "2025-05-02 10:00:40",
         "outcome": "abandoned", "handle_seconds": 40, "wait_seconds": 40, "customer_id": "C1"},
        {"call_id": "B", "start_time": "2025-05-02 10:03:00", "end_time": "2025-05-02 10:08:20",
         "outcome": "answered", "handle_seconds": 300, "wait_seconds": 20, "customer_id": "C1"},
    ])
    calls, _ = contacts_from_legs(legs, RULES)
    assert calls[["contact_id", "outcome", "handle_seconds", "attempts"]].to_dict("records") == [
        {"contact_id": "A", "outcome": "answered", "handle_seconds": 300.0, "attempts": 2}]
    intervals = aggregate_intervals(calls, tiny_grid())
    busy = intervals.loc[intervals["offered"] > 0]
    assert busy[["queue", "interval_start", "handled", "aht_seconds"]].to_dict("records") == [
        {"queue": "sales", "interval_start": ts("2025-05-02 10:00"), "handled": 1.0, "aht_seconds": 300.0}]
    daily = aggregate_daily(intervals, CLOSED)
    assert daily.loc[(daily["queue"] == "sales") & daily["is_open"], "aht_seconds"].tolist() == [300.0]


def test_abandoned_contact_has_no_handle_time_whatever_the_acd_wrote():
    # A lone abandon (handle 40 in the export) and a chain of two abandons (40 + 25): no handle time.
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00:00", "outcome": "abandoned", "handle_seconds": 40,
         "wait_seconds": 40, "customer_id": "C1"},
        {"call_id": "B", "start_time": "2025-05-02 11:00:00", "outcome": "abandoned", "handle_seconds": 40,
         "wait_seconds": 40, "customer_id": "C2"},
        {"call_id": "C", "start_time": "2025-05-02 11:02:00", "outcome": "abandoned", "handle_seconds": 25,
         "wait_seconds": 25, "customer_id": "C2"},
    ])
    out = collapse_redials(contacts_of(legs), window_minutes=10)
    assert out["contact_id"].tolist() == ["A", "B"] and out["attempts"].tolist() == [1, 2]
    assert out["handle_seconds"].isna().all()


def test_unknown_redial_match_is_a_config_error():
    with pytest.raises(ConfigError, match="rules.redial_match: 'phone'"):
        collapse_redials(contacts_of(make_legs([{"call_id": "A", "start_time": "2025-05-02 10:00"}])), 10, "phone")


# --- transfers and dedup ---------------------------------------------------------------------------------

def test_transfer_cycle_is_a_data_error_naming_the_legs():
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00", "parent_call_id": "C"},
        {"call_id": "B", "start_time": "2025-05-02 10:01", "parent_call_id": "A"},
        {"call_id": "C", "start_time": "2025-05-02 10:02", "parent_call_id": "B"},
        {"call_id": "D", "start_time": "2025-05-02 10:03"},
    ])
    with pytest.raises(DataError, match=r"cycle \('A' -> 'C' -> 'B' -> 'A'\): 3 leg"):
        attribute_transfers(legs)


def test_orphan_transfer_leg_is_its_own_contact_and_counted():
    # B names parent X, which is not in the data (e.g. loaded before the window): B stands alone.
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00", "handle_seconds": 60},
        {"call_id": "B", "start_time": "2025-05-02 10:05", "parent_call_id": "X", "handle_seconds": 90},
        {"call_id": "C", "start_time": "2025-05-02 10:06", "parent_call_id": "B", "handle_seconds": 30},
    ])
    contacts = attribute_transfers(legs)
    assert contacts[["contact_id", "legs", "handle_seconds", "parent_missing"]].to_dict("records") == [
        {"contact_id": "A", "legs": 1, "handle_seconds": 60.0, "parent_missing": False},
        {"contact_id": "B", "legs": 2, "handle_seconds": 120.0, "parent_missing": True},
    ]
    assert contacts_from_legs(legs, RULES)[1]["orphan_transfer_legs"] == 1


def test_transfer_handle_time_sums_the_answered_legs_but_not_an_abandoned_one():
    # T1 answered 200 s -> T2 answered 100 s -> T3: the caller hangs up waiting in the third queue, and the ACD
    # writes that 60 s wait into T3's handle time. Handle 200 + 100 = 300, not 360.
    legs = make_legs([
        {"call_id": "T1", "start_time": "2025-05-02 10:00", "outcome": "answered", "handle_seconds": 200},
        {"call_id": "T2", "queue": "support", "start_time": "2025-05-02 10:04", "parent_call_id": "T1",
         "outcome": "answered", "handle_seconds": 100},
        {"call_id": "T3", "start_time": "2025-05-02 10:06", "parent_call_id": "T2", "outcome": "abandoned",
         "handle_seconds": 60, "wait_seconds": 60},
    ])
    contacts = attribute_transfers(legs)
    assert contacts[["contact_id", "outcome", "legs", "handle_seconds"]].to_dict("records") == [
        {"contact_id": "T1", "outcome": "answered", "legs": 3, "handle_seconds": 300.0}]


def test_transfer_roots_match_a_plain_loop_oracle_on_deep_random_chains():
    rng = np.random.default_rng(7)
    n = 400
    parents = [None] * n
    for i in range(1, n):
        if rng.random() < 0.8:  # mostly transfers, so chains get deep (one runs through most of the frame)
            parents[i] = f"L{rng.integers(max(0, i - 3), i)}"
    legs = make_legs([{"call_id": f"L{i}", "start_time": "2025-05-02 10:00", "parent_call_id": parents[i],
                       "handle_seconds": 1.0} for i in range(n)])

    def root_of(i):
        while parents[i] is not None:
            i = int(parents[i][1:])
        return i
    roots = [root_of(i) for i in range(n)]
    expect = pd.Series(roots).value_counts().sort_index()
    contacts = attribute_transfers(legs.sample(frac=1, random_state=3))  # order must not matter
    got = contacts.set_index(contacts["contact_id"].str[1:].astype(int))["legs"].sort_index()
    assert got.to_dict() == expect.to_dict()
    assert (contacts["handle_seconds"] == contacts["legs"]).all()


def test_dedup_keeps_the_highest_load_then_the_highest_source_row():
    legs = make_legs([
        {"call_id": "A", "start_time": "2025-05-02 10:00", "outcome": "abandoned", "load_id": 3, "source_row": 5},
        {"call_id": "A", "start_time": "2025-05-02 10:00", "outcome": "answered", "load_id": 3, "source_row": 9},
        {"call_id": "A", "start_time": "2025-05-02 10:00", "outcome": "other", "load_id": 2, "source_row": 99},
        {"call_id": "B", "start_time": "2025-05-02 10:01", "outcome": "answered"},
    ])
    out, removed = dedup_legs(legs)
    assert removed == 2
    assert out[["call_id", "outcome"]].to_dict("records") == [
        {"call_id": "A", "outcome": "answered"}, {"call_id": "B", "outcome": "answered"}]


def test_short_abandon_needs_a_known_wait_strictly_below_the_threshold():
    contacts = pd.DataFrame({
        "outcome": ["abandoned", "abandoned", "abandoned", "short_abandon", "answered"],
        "wait_seconds": [4.9, 5.0, np.nan, 20.0, 1.0],
    }).astype({"outcome": "str"})
    out = mark_short_abandons(contacts, 5)
    assert out["outcome"].tolist() == ["short_abandon", "abandoned", "abandoned", "short_abandon", "answered"]


# --- calendar edge cases and contract --------------------------------------------------------------------

def test_dst_fall_back_day_has_50_intervals_and_keeps_both_two_oclock_hours_apart():
    # 2025-10-26 (Sunday, closed): clocks go 03:00 CEST -> 02:00 CET, so 02:10 happens twice:
    # at 00:10 UTC (CEST) and at 01:10 UTC (CET). Each lands in its own 02:00 interval.
    legs = make_legs([
        {"call_id": "X1", "start_time": "2025-10-26 02:10", "customer_id": "C1", "handle_seconds": 100},
        {"call_id": "X2", "start_time": "2025-10-26 02:10", "customer_id": "C2", "handle_seconds": 200},
    ]).assign(start_time_utc=pd.to_datetime(["2025-10-26 00:10", "2025-10-26 01:10"]).astype(NS))
    calls, _ = contacts_from_legs(legs, RULES)
    grid = cal.interval_grid(["sales"], ts("2025-10-26"), ts("2025-10-26"), 30, TZ, HOURS, CLOSED)
    intervals = aggregate_intervals(calls, grid)
    assert len(intervals) == 50
    hit = intervals[intervals["offered_outside_hours"] > 0]
    assert hit["interval_start"].tolist() == [ts("2025-10-26 02:00")] * 2
    assert hit["interval_start_utc"].tolist() == [ts("2025-10-26 00:00"), ts("2025-10-26 01:00")]
    daily = aggregate_daily(intervals, CLOSED)
    assert daily[["offered", "offered_outside_hours", "is_open"]].to_dict("records") == [
        {"offered": 0.0, "offered_outside_hours": 2.0, "is_open": False}]


def test_no_function_modifies_its_input_frames():
    legs = read_legs("tiny_cdr_legs.csv")
    legs_copy = legs.copy(deep=True)
    grid = tiny_grid()
    grid_copy = grid.copy(deep=True)
    calls, _ = contacts_from_legs(legs, RULES)
    calls_copy = calls.copy(deep=True)
    intervals = aggregate_intervals(calls, grid)
    intervals_copy = intervals.copy(deep=True)
    aggregate_daily(intervals, CLOSED)
    clip_aht(intervals, 200, 250)
    collapse_redials(calls, 10)
    mark_short_abandons(calls, 100)
    pd.testing.assert_frame_equal(legs, legs_copy)
    pd.testing.assert_frame_equal(grid, grid_copy)
    pd.testing.assert_frame_equal(calls, calls_copy)
    pd.testing.assert_frame_equal(intervals, intervals_copy)


def test_contacts_of_a_queue_missing_from_the_grid_are_a_data_error_naming_it():
    calls, _ = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    grid = cal.interval_grid(["sales"], ts("2025-05-01"), ts("2025-05-02"), 30, TZ, HOURS, CLOSED)
    with pytest.raises(DataError, match=r"queue\(s\) \['support'\]"):
        aggregate_intervals(calls, grid)


def test_contacts_after_the_grid_end_are_a_data_error():
    calls, _ = contacts_from_legs(read_legs("tiny_cdr_legs.csv"), RULES)
    grid = cal.interval_grid(["sales", "support"], ts("2025-05-01"), ts("2025-05-01"), 30, TZ, HOURS, CLOSED)
    with pytest.raises(DataError, match="7 contacts fall outside the interval grid"):
        aggregate_intervals(calls, grid)


def test_empty_legs_give_an_empty_silver_calls_with_all_columns():
    legs = read_legs("tiny_cdr_legs.csv").iloc[0:0]
    calls, counts = contacts_from_legs(legs, RULES)
    assert list(calls.columns) == SILVER_CALLS_COLUMNS and calls.empty
    assert counts["contacts_out"] == 0


def test_clip_aht_clips_into_range_counts_and_keeps_unknown():
    frame = pd.DataFrame({"aht_seconds": [10.0, 100.0, 5000.0, np.nan]})
    out, clipped = clip_aht(frame, 30, 3600)
    assert clipped == 2
    assert out["aht_seconds"].tolist()[:3] == [30.0, 100.0, 3600.0] and np.isnan(out["aht_seconds"].iloc[3])


# --- interval-report sources -----------------------------------------------------------------------------

def report_rows(rows: list[tuple]) -> pd.DataFrame:
    report = pd.DataFrame(rows, columns=["interval_start", "offered", "handled", "abandoned", "aht_seconds",
                                         "load_id"])
    report["interval_start"] = pd.to_datetime(report["interval_start"]).astype(NS)
    report["interval_start_utc"] = report["interval_start"] - pd.Timedelta(hours=2)  # CEST
    return report.assign(queue="ALL").astype({"queue": "str"})


def test_interval_report_5min_rows_sum_into_30min_with_handled_weighted_aht():
    report = report_rows([
        ("2025-05-02 09:00", 2, 2, 0, 100.0, 1),
        ("2025-05-02 09:05", 1, 1, 0, 400.0, 1),
        ("2025-05-02 09:10", 0, np.nan, np.nan, np.nan, 1),  # blank in a row without calls means 0
        ("2025-05-02 09:15", 3, 2, 1, 250.0, 1),
        ("2025-05-02 09:20", 1, 1, 0, 300.0, 1),             # replaced by the newer export below
        ("2025-05-02 09:25", 0, 0, 0, np.nan, 1),
        ("2025-05-02 09:20", 2, 2, 0, 200.0, 2),
        ("2025-05-02 09:30", 4, np.nan, 1, 120.0, 1),        # handled unknown: aht weighted by offered instead
        ("2025-05-02 18:05", 2, 2, 0, 90.0, 1),              # after closing
    ])
    grid = cal.interval_grid(["ALL"], ts("2025-05-02"), ts("2025-05-02"), 30, TZ, HOURS, CLOSED)
    out = intervals_from_report(report, grid, 30)
    assert len(out) == 48 and list(out.columns) == INTERVAL_COLUMNS
    busy = out[(out["offered"] + out["offered_outside_hours"]) > 0].reset_index(drop=True)
    expect = as_interval_frame([
        # 09:00 = 2+1+0+3+2(load 2)+0 = 8 offered, 2+1+0+2+2+0 = 7 handled, 1 abandoned,
        # aht (2*100 + 1*400 + 2*250 + 2*200) / 7 = 1500/7
        interval_row("ALL", "2025-05-02 09:00", 8, 7, 1, np.nan, 0, 1500 / 7, True),
        interval_row("ALL", "2025-05-02 09:30", 4, np.nan, 1, np.nan, 0, 120.0, True),
        # 18:00 is closed: its 2 calls are outside hours only, nothing handled or timed there
        interval_row("ALL", "2025-05-02 18:00", 0, 0, 0, np.nan, 2, np.nan, False),
    ])
    pd.testing.assert_frame_equal(busy, expect)
    quiet = out[(out["offered"] + out["offered_outside_hours"]) == 0]
    assert (quiet["handled"] == 0).all() and quiet["short_abandoned"].isna().all()


def test_interval_report_coarser_than_the_configured_interval_is_a_data_error():
    report = report_rows([("2025-05-02 09:00", 5, 5, 0, 100.0, 1), ("2025-05-02 10:00", 6, 6, 0, 100.0, 1)])
    grid = cal.interval_grid(["ALL"], ts("2025-05-02"), ts("2025-05-02"), 30, TZ, HOURS, CLOSED)
    with pytest.raises(DataError, match="60 minutes long .* set rules.interval_minutes to 60"):
        intervals_from_report(report, grid, 30)


def test_interval_report_source_rows_count_the_rows_behind_each_interval_zero_rows_included():
    report = report_rows([
        ("2025-05-02 09:00", 0, 0, 0, np.nan, 1),    # a row saying 0 calls: the export covered 09:00
        ("2025-05-02 10:00", 2, 2, 0, 100.0, 1),     # two 15-minute rows in 10:00
        ("2025-05-02 10:15", 1, 1, 0, 100.0, 1),
        ("2025-05-02 10:15", 3, 3, 0, 100.0, 2),     # a newer export of 10:15 replaces the row, adds none
    ])
    grid = cal.interval_grid(["ALL"], ts("2025-05-02"), ts("2025-05-02"), 30, TZ, HOURS, CLOSED)
    out = intervals_from_report(report, grid, 30, with_source_rows=True).set_index("interval_start")
    assert list(out.columns) == [c for c in INTERVAL_COLUMNS if c != "interval_start"] + ["source_rows"]
    assert out.loc[ts("2025-05-02 09:00"), ["offered", "source_rows"]].tolist() == [0, 1]
    assert out.loc[ts("2025-05-02 10:00"), ["offered", "source_rows"]].tolist() == [5, 2]
    assert out["source_rows"].sum() == 3  # every other interval: no row
